"""An owner's deletion sticks, in the registry and in the footage requests.

- `registry.import_tombstones`: when an owner deletes a registration an integrator imported, its (agency, external
  id) is remembered as a keyed hash, never as the id itself, so a later import of the same list does not register
  the owner again. The import reports that row instead of writing it.
- `registry.registrations.removed_import_positions`: the places, in the integrator's list, of imported cameras the
  owner removed; a re-import does not add them back.
- `registry.deletions`: a feed of deleted registrations (the random registration id and when, nothing else), read by
  requests_api to erase what the owner wrote in its requests' histories.
- `requests.feeds`: how far requests_api has read such a feed.
- `requests.events` stays append-only except for one change: an owner's note may be erased (set to NULL), with
  every other column of the event as it was.

A downgrade drops the tombstones and the removed cameras' places: imports could then register those owners, and
add those cameras, again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_tombstones",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("external_id_index", sa.LargeBinary(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["registry.agencies.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agency_id", "external_id_index"),
        schema="registry",
    )
    op.add_column(
        "registrations",
        sa.Column(
            "removed_import_positions",
            postgresql.ARRAY(sa.SmallInteger()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        schema="registry",
    )
    op.create_table(
        "deletions",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("registration_id", sa.Uuid(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        schema="registry",
    )
    op.create_table(
        "feeds",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("position", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        schema="requests",
    )
    op.execute(
        """
        CREATE FUNCTION requests.events_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- The one change history allows: an owner's note erased, the event otherwise as it was.
            IF TG_OP = 'UPDATE' AND OLD.actor_role = 'owner' AND NEW.note IS NULL
               AND (NEW.id, NEW.request_id, NEW.target_id, NEW.at, NEW.actor, NEW.actor_role, NEW.action,
                    NEW.from_state, NEW.to_state)
                   IS NOT DISTINCT FROM
                   (OLD.id, OLD.request_id, OLD.target_id, OLD.at, OLD.actor, OLD.actor_role, OLD.action,
                    OLD.from_state, OLD.to_state) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute("DROP TRIGGER events_append_only ON requests.events")
    op.execute(
        "CREATE TRIGGER events_append_only BEFORE UPDATE ON requests.events"
        " FOR EACH ROW EXECUTE FUNCTION requests.events_guard()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER events_append_only ON requests.events")
    op.execute(
        "CREATE TRIGGER events_append_only BEFORE UPDATE ON requests.events"
        " FOR EACH ROW EXECUTE FUNCTION requests.refuse_change()"
    )
    op.execute("DROP FUNCTION requests.events_guard()")
    op.drop_table("feeds", schema="requests")
    op.drop_table("deletions", schema="registry")
    op.drop_column("registrations", "removed_import_positions", schema="registry")
    op.drop_table("import_tombstones", schema="registry")
