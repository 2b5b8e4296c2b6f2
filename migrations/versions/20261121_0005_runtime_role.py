"""The services' runtime role: they read and write their tables, append to the audit trail, and nothing more.

The role that runs migrations owns every table, and an owner can switch a table's triggers off; so the services
do not connect as the owner but as a login role in `canvass_app`, which holds only what they use: DML on the
`registry` and `requests` tables, CREATE in `registry_import` (per-job staging tables), EXECUTE on
`audit.append_event` and read access to the trail. It cannot UPDATE, DELETE or TRUNCATE the audit trail, disable a
trigger, or change the schema.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "canvass_app"
APPEND = "audit.append_event(text, text, text, text, text, text, text, text, text, jsonb)"


def upgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                BEGIN
                    CREATE ROLE {APP_ROLE} NOLOGIN;
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE NOTICE 'cannot create role {APP_ROLE}; create it and re-run the grants';
                END;
            END IF;
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT USAGE ON SCHEMA registry, requests, audit, registry_import TO {APP_ROLE};
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA registry, requests TO {APP_ROLE};
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA registry, requests TO {APP_ROLE};
                GRANT CREATE ON SCHEMA registry_import TO {APP_ROLE};
                GRANT EXECUTE ON FUNCTION {APPEND} TO {APP_ROLE};
                GRANT SELECT ON audit.events, audit.chain_head TO {APP_ROLE};
                GRANT SELECT ON public.alembic_version TO {APP_ROLE};
                ALTER DEFAULT PRIVILEGES IN SCHEMA registry, requests
                    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};
                ALTER DEFAULT PRIVILEGES IN SCHEMA registry, requests
                    GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE};
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                ALTER DEFAULT PRIVILEGES IN SCHEMA registry, requests
                    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE};
                ALTER DEFAULT PRIVILEGES IN SCHEMA registry, requests
                    REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE};
                REVOKE ALL ON ALL TABLES IN SCHEMA registry, requests FROM {APP_ROLE};
                REVOKE ALL ON ALL SEQUENCES IN SCHEMA registry, requests FROM {APP_ROLE};
                REVOKE ALL ON SCHEMA registry, requests, audit, registry_import FROM {APP_ROLE};
                REVOKE ALL ON FUNCTION {APPEND} FROM {APP_ROLE};
                REVOKE ALL ON audit.events, audit.chain_head, public.alembic_version FROM {APP_ROLE};
            END IF;
        END $$;
        """
    )
