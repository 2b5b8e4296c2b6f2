"""What an owner writes in footage requests — an answer's note, an upload's description, file name and name as
sent — sealed under the data key of the owner's registration (shared/keystore.py), and opened for those who may
read it. When the owner deletes the registration, registry_api destroys that key (and the worker destroys it
again after erasing the rows: see worker.erase_deleted_owners), so no copy of these texts anywhere — table
files, WAL, replicas, backups — can be opened afterwards.

An answer's note is bound to its target (an owner's target carries at most one answer with a note: accepting);
an upload's texts to the evidence item and the field.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from shared.keystore import DataKey, keystore, open_with

EVIDENCE_TEXTS = ("filename", "original_filename", "description")
# The evidence columns a read selects: the sealed texts and the owner's registration (for its key), joined
# through the item's target (`t`).
EVIDENCE_SEALED_COLUMNS = "e.filename_enc, e.description_enc, t.registration_id AS owner_registration_id"


def note_context(target_id: uuid.UUID) -> str:
    return f"target:{target_id}:answer_note"


def evidence_context(evidence_id: uuid.UUID, field: str) -> str:
    return f"evidence:{evidence_id}:{field}"


async def owner_key(registration_id: uuid.UUID) -> DataKey:
    """The owner's data key, created if the registration has none yet (one round trip to the key store)."""
    return (await keystore("requests_api").ensure([registration_id]))[registration_id]


def seal_evidence_texts(
    key: DataKey, evidence_id: uuid.UUID, texts: Mapping[str, str | None]
) -> dict[str, Any]:
    """`<field>_enc` for each text given."""
    return {f"{f}_enc": key.seal(v, evidence_context(evidence_id, f)) for f, v in texts.items()}


async def _keys(registration_ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, DataKey]:
    return await keystore("requests_api").keys(rid for rid in registration_ids if rid is not None)


async def open_evidence(rows: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """Evidence rows (selected with EVIDENCE_SEALED_COLUMNS) with `filename` and `description` opened (None once
    the owner's key is destroyed): the page's keys in one round trip."""
    needed = [
        r["owner_registration_id"]
        for r in rows
        if r["filename_enc"] is not None or r["description_enc"] is not None
    ]
    keys = await _keys(needed)
    out = []
    for r in rows:
        key = keys.get(r["owner_registration_id"])
        opened = {
            k: v
            for k, v in r.items()
            if k not in ("filename_enc", "description_enc", "owner_registration_id")
        }
        for f in ("filename", "description"):
            opened[f] = open_with(key, r[f + "_enc"], evidence_context(r["id"], f))
        out.append(opened)
    return out


async def open_notes(rows: Sequence[Mapping[Any, Any]]) -> list[str | None]:
    """Each event's note: the agency's as written, an owner's opened under their key (None once destroyed). The
    rows carry `note`, `note_enc`, `target_id` and `owner_registration_id`."""
    keys = await _keys([r["owner_registration_id"] for r in rows if r["note_enc"] is not None])
    return [
        r["note"]
        if r["note_enc"] is None
        else open_with(keys.get(r["owner_registration_id"]), r["note_enc"], note_context(r["target_id"]))
        for r in rows
    ]
