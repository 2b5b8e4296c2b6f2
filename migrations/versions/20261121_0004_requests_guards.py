"""Footage requests' history and chain of custody refuse removal too: 0002 made `requests.events` refuse UPDATE
and `requests.custody` refuse UPDATE and DELETE; here `requests.events` also refuses DELETE (row by row, so a
cascade from a deleted request or target is refused as well) and both refuse TRUNCATE (statement triggers).

Before that, once: the notes owners gave with a decline or an 'unavailable' answer are erased. They were never
shown to the agency and are no longer stored at all (an owner's free text is personal data the owner may want
gone); only this migration, with the history's guard briefly off, may rewrite those rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGERS = {
    "events_no_delete": "BEFORE DELETE ON requests.events FOR EACH ROW",
    "events_no_truncate": "BEFORE TRUNCATE ON requests.events FOR EACH STATEMENT",
    "custody_no_truncate": "BEFORE TRUNCATE ON requests.custody FOR EACH STATEMENT",
}


def upgrade() -> None:
    op.execute("ALTER TABLE requests.events DISABLE TRIGGER events_append_only")
    op.execute(
        "UPDATE requests.events SET note = NULL"
        " WHERE actor_role = 'owner' AND action IN ('decline', 'unavailable') AND note IS NOT NULL"
    )
    op.execute("ALTER TABLE requests.events ENABLE TRIGGER events_append_only")
    for name, when in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION requests.refuse_change()")


def downgrade() -> None:
    for name, when in _TRIGGERS.items():
        table = when.split(" ON ", 1)[1].split(" ", 1)[0]
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
