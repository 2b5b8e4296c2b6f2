"""The free texts an owner writes that no search reads are sealed under a data key of their registration.

Business name, contact hours and notes for investigators (registry.registrations, and the import staging
template), an answer's note (requests.events, owners' events only: the agency's own notes stay as they are) and an
upload's file name, name as sent and description (requests.evidence) move to `*_enc` columns, sealed (AES-256-GCM,
bound to row and field) under the registration's data key, which lives in the key store apart from this database
(shared/keystore.py). Deleting the registration destroys the key: crypto-shredding (docs/decisions/0001).

Existing rows are re-sealed here: the key store (CANVASS_KEYSTORE_URL, CANVASS_KEYSTORE_KEY) is asked for the
keys of the registrations that hold such a text, a batch at a time, and the plain columns are dropped. A database
without such rows (a new one) never contacts the key store. The plain copies the old rows leave in table files,
WAL and backups follow decision 0001's bounds for plain columns; nothing written after this migration is plain.
Import jobs must not be running during the upgrade (their staging tables have the old columns).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REGISTRATION_TEXTS = ("business_name", "contact_hours", "notes_for_investigators")
EVIDENCE_TEXTS = ("filename", "original_filename", "description")
BATCH = 1000
T = TypeVar("T")


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """An async key-store call from the migration (which runs inside the environment's event loop)."""

    async def go() -> T:
        from shared.keystore import close_keystore

        try:
            return await make()
        finally:
            await close_keystore()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def _keys(ids: list[uuid.UUID], *, create: bool) -> dict[uuid.UUID, Any]:
    from shared.keystore import keystore

    store = keystore("migrations")
    return _run(lambda: store.ensure(ids) if create else store.keys(ids))


def _reg_context(rid: uuid.UUID, column: str) -> str:
    return f"registration:{rid}:{column}"


def _note_context(target_id: uuid.UUID) -> str:
    return f"target:{target_id}:answer_note"


def _evidence_context(evidence_id: uuid.UUID, field: str) -> str:
    return f"evidence:{evidence_id}:{field}"


def _batches(rows: Sequence[Any]) -> list[Sequence[Any]]:
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


# The history's guard (0009) allows one change: an owner's note erased. The note may now be either column.
_GUARD = """
CREATE OR REPLACE FUNCTION requests.events_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The one change history allows: an owner's note erased (plain or sealed), the event otherwise as it was.
    IF TG_OP = 'UPDATE' AND OLD.actor_role = 'owner' AND NEW.note IS NULL AND NEW.note_enc IS NULL
       AND to_jsonb(NEW) - 'note' - 'note_enc' = to_jsonb(OLD) - 'note' - 'note_enc' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""

_GUARD_0009 = """
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


def upgrade() -> None:
    bind = op.get_bind()
    for table in ("registry.registrations", "registry.import_staging"):
        for c in REGISTRATION_TEXTS:
            op.execute(f"ALTER TABLE {table} ADD COLUMN {c}_enc bytea")
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {c}_enc SET STATISTICS 0")
    op.execute("ALTER TABLE requests.events ADD COLUMN note_enc bytea")
    op.execute("ALTER TABLE requests.events ALTER COLUMN note_enc SET STATISTICS 0")
    for c in EVIDENCE_TEXTS:
        op.execute(f"ALTER TABLE requests.evidence ADD COLUMN {c}_enc bytea")
        op.execute(f"ALTER TABLE requests.evidence ALTER COLUMN {c}_enc SET STATISTICS 0")

    regs = bind.execute(
        sa.text(
            "SELECT id, business_name, contact_hours, notes_for_investigators FROM registry.registrations"
            " WHERE business_name IS NOT NULL OR contact_hours IS NOT NULL OR notes_for_investigators IS NOT NULL"
        )
    ).all()
    for batch in _batches(regs):
        keys = _keys([r.id for r in batch], create=True)
        bind.execute(
            sa.text(
                "UPDATE registry.registrations SET business_name_enc = :b, contact_hours_enc = :h,"
                " notes_for_investigators_enc = :n WHERE id = :id"
            ),
            [
                {
                    "id": r.id,
                    **{
                        k: keys[r.id].seal(getattr(r, c), _reg_context(r.id, c))
                        for k, c in zip("bhn", REGISTRATION_TEXTS, strict=True)
                    },
                }
                for r in batch
            ],
        )

    notes = bind.execute(
        sa.text(
            "SELECT e.id, e.target_id, e.note, t.registration_id FROM requests.events e"
            " JOIN requests.targets t ON t.id = e.target_id WHERE e.actor_role = 'owner' AND e.note IS NOT NULL"
        )
    ).all()
    # Only this migration, with the history's guard briefly off, rewrites those rows (as 0004 did).
    op.execute("ALTER TABLE requests.events DISABLE TRIGGER events_append_only")
    for batch in _batches(notes):
        keys = _keys(sorted({r.registration_id for r in batch}), create=True)
        bind.execute(
            sa.text("UPDATE requests.events SET note_enc = :enc, note = NULL WHERE id = :id"),
            [
                {"id": r.id, "enc": keys[r.registration_id].seal(r.note, _note_context(r.target_id))}
                for r in batch
            ],
        )

    op.execute("ALTER TABLE requests.events ENABLE TRIGGER events_append_only")
    op.execute(_GUARD)

    evidence = bind.execute(
        sa.text(
            "SELECT v.id, v.filename, v.original_filename, v.description, t.registration_id"
            " FROM requests.evidence v JOIN requests.targets t ON t.id = v.target_id"
            " WHERE v.filename IS NOT NULL OR v.original_filename IS NOT NULL OR v.description IS NOT NULL"
        )
    ).all()
    for batch in _batches(evidence):
        keys = _keys(sorted({r.registration_id for r in batch}), create=True)
        bind.execute(
            sa.text(
                "UPDATE requests.evidence SET filename_enc = :f, original_filename_enc = :o, description_enc = :d"
                " WHERE id = :id"
            ),
            [
                {
                    "id": r.id,
                    **{
                        k: keys[r.registration_id].seal(getattr(r, c), _evidence_context(r.id, c))
                        for k, c in zip("fod", EVIDENCE_TEXTS, strict=True)
                    },
                }
                for r in batch
            ],
        )

    for table in ("registry.registrations", "registry.import_staging"):
        for c in REGISTRATION_TEXTS:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {c}")
    for c in EVIDENCE_TEXTS:
        op.execute(f"ALTER TABLE requests.evidence DROP COLUMN {c}")


def downgrade() -> None:
    """The texts opened back into plain columns, where their key still exists (a deleted registration's are
    gone for good)."""
    bind = op.get_bind()
    for table in ("registry.registrations", "registry.import_staging"):
        for c in REGISTRATION_TEXTS:
            op.execute(f"ALTER TABLE {table} ADD COLUMN {c} text")
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {c} SET STATISTICS 0")
    for c in EVIDENCE_TEXTS:
        op.execute(f"ALTER TABLE requests.evidence ADD COLUMN {c} text")
        op.execute(f"ALTER TABLE requests.evidence ALTER COLUMN {c} SET STATISTICS 0")

    regs = bind.execute(
        sa.text(
            "SELECT id, business_name_enc, contact_hours_enc, notes_for_investigators_enc"
            " FROM registry.registrations WHERE business_name_enc IS NOT NULL OR contact_hours_enc IS NOT NULL"
            " OR notes_for_investigators_enc IS NOT NULL"
        )
    ).all()
    for batch in _batches(regs):
        keys = _keys([r.id for r in batch], create=False)
        bind.execute(
            sa.text(
                "UPDATE registry.registrations SET business_name = :b, contact_hours = :h,"
                " notes_for_investigators = :n WHERE id = :id"
            ),
            [
                {
                    "id": r.id,
                    **{
                        k: _open(keys.get(r.id), getattr(r, c + "_enc"), _reg_context(r.id, c))
                        for k, c in zip("bhn", REGISTRATION_TEXTS, strict=True)
                    },
                }
                for r in batch
            ],
        )
    notes = bind.execute(
        sa.text(
            "SELECT e.id, e.target_id, e.note_enc, t.registration_id FROM requests.events e"
            " JOIN requests.targets t ON t.id = e.target_id WHERE e.note_enc IS NOT NULL"
        )
    ).all()
    op.execute("ALTER TABLE requests.events DISABLE TRIGGER events_append_only")
    for batch in _batches(notes):
        keys = _keys(sorted({r.registration_id for r in batch}), create=False)
        bind.execute(
            sa.text("UPDATE requests.events SET note = :note WHERE id = :id"),
            [
                {
                    "id": r.id,
                    "note": _open(keys.get(r.registration_id), r.note_enc, _note_context(r.target_id)),
                }
                for r in batch
            ],
        )
    op.execute("ALTER TABLE requests.events ENABLE TRIGGER events_append_only")
    op.execute(_GUARD_0009)
    evidence = bind.execute(
        sa.text(
            "SELECT v.id, v.filename_enc, v.original_filename_enc, v.description_enc, t.registration_id"
            " FROM requests.evidence v JOIN requests.targets t ON t.id = v.target_id"
            " WHERE v.filename_enc IS NOT NULL OR v.original_filename_enc IS NOT NULL OR v.description_enc IS NOT NULL"
        )
    ).all()
    for batch in _batches(evidence):
        keys = _keys(sorted({r.registration_id for r in batch}), create=False)
        bind.execute(
            sa.text(
                "UPDATE requests.evidence SET filename = :f, original_filename = :o, description = :d WHERE id = :id"
            ),
            [
                {
                    "id": r.id,
                    **{
                        k: _open(
                            keys.get(r.registration_id), getattr(r, c + "_enc"), _evidence_context(r.id, c)
                        )
                        for k, c in zip("fod", EVIDENCE_TEXTS, strict=True)
                    },
                }
                for r in batch
            ],
        )
    for table in ("registry.registrations", "registry.import_staging"):
        for c in REGISTRATION_TEXTS:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {c}_enc")
    op.execute("ALTER TABLE requests.events DROP COLUMN note_enc")
    for c in EVIDENCE_TEXTS:
        op.execute(f"ALTER TABLE requests.evidence DROP COLUMN {c}_enc")


def _open(key: Any, sealed: bytes | None, context: str) -> str | None:
    return key.open(sealed, context) if key is not None and sealed is not None else None
