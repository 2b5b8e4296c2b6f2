"""`community.idempotency_keys`: an alert's answer kept for a retried send by the same caller with the same body,
within the replay window (shared/idempotency.py), so a retry never sends a second alert.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "canvass_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE community.idempotency_keys (
            key text NOT NULL,
            principal text NOT NULL,
            request_hash bytea NOT NULL,
            status integer NOT NULL,
            body bytea NOT NULL,
            headers jsonb NOT NULL DEFAULT '{}',
            alert_id uuid REFERENCES community.alerts (id) ON DELETE CASCADE,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (key, principal)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_community_idempotency_keys_created ON community.idempotency_keys (created_at)"
    )
    op.execute("CREATE INDEX ix_community_idempotency_keys_alert ON community.idempotency_keys (alert_id)")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT SELECT, INSERT, UPDATE, DELETE ON community.idempotency_keys TO {APP_ROLE};
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE community.idempotency_keys")
