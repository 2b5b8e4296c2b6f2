"""`requests.events` allows an owner's note to be erased and nothing else, however many columns the table gets:
the guard compares the whole row but the note (0008 listed the columns of the day, so a column added later
could have been changed by an update that also erased a note).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GUARD = """
CREATE OR REPLACE FUNCTION requests.events_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The one change history allows: an owner's note erased, the event otherwise as it was.
    IF TG_OP = 'UPDATE' AND OLD.actor_role = 'owner' AND NEW.note IS NULL
       AND to_jsonb(NEW) - 'note' = to_jsonb(OLD) - 'note' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""

_GUARD_0008 = """
CREATE OR REPLACE FUNCTION requests.events_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
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


def upgrade() -> None:
    op.execute(_GUARD)


def downgrade() -> None:
    op.execute(_GUARD_0008)
