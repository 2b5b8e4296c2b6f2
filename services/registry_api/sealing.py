"""Sealing of registry_api's personal data: the owner's contact and address under the ring's keys, the owner's free
texts under the registration's own data key (in the key store apart from this database, shredded with the
registration), a camera's live endpoint, and the blind indexes an email or an imported external id is found by."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from shared.crypto import keyring
from shared.keystore import DataKey, keystore, open_with

SERVICE = "registry_api"


def seal(value: str | None, context: str) -> bytes | None:
    return keyring().seal(value, context)


def unseal(value: bytes | None, context: str) -> str | None:
    return keyring().open(value, context)


def reg_context(rid: uuid.UUID, column: str) -> str:
    return f"registration:{rid}:{column}"


# What an owner writes that no search reads in SQL: sealed under the registration's data key, in the key store
# apart from this database (shared/keystore.py), and shredded with it when the registration is deleted. The
# column of each is `<name>_enc`; a row read through `with_owner_texts` carries the opened text under `<name>`.
OWNER_TEXTS = ("business_name", "contact_hours", "notes_for_investigators")


async def new_registration_key() -> tuple[uuid.UUID, DataKey]:
    """The id of a new registration with owner texts, and its data key (already in the key store)."""
    return await keystore(SERVICE).fresh()


async def owner_text_key(rid: uuid.UUID) -> DataKey:
    """The registration's data key, created if it has none yet (before the first text is sealed under it)."""
    return (await keystore(SERVICE).ensure([rid]))[rid]


def seal_owner_text(key: DataKey, rid: uuid.UUID, column: str, value: str | None) -> bytes | None:
    return key.seal(value, reg_context(rid, column))


def open_owner_texts(row: Mapping[Any, Any], key: DataKey | None) -> dict[str, Any]:
    """The row with each owner text opened under the registration's key (None once the key is destroyed)."""
    rid = row["id"]
    return {**row, **{c: open_with(key, row[c + "_enc"], reg_context(rid, c)) for c in OWNER_TEXTS}}


async def with_owner_texts(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The row with its owner texts opened: one round trip to the key store, only when there is one to open."""
    if all(row[c + "_enc"] is None for c in OWNER_TEXTS):
        return open_owner_texts(row, None)
    return open_owner_texts(row, await keystore(SERVICE).key(row["id"]))


def camera_context(cid: uuid.UUID) -> str:
    return f"camera:{cid}:live_endpoint"


def email_index(email: str | None) -> bytes | None:
    return keyring().blind_index(email) if email else None


def email_indexes(email: str) -> list[bytes]:
    """What to look an email up by: its index under each key of the ring (rows indexed before a rotation too)."""
    return keyring().blind_indexes(email)


def external_id_index(agency_id: uuid.UUID, external_id: str) -> bytes:
    """How a deleted imported registration's external id is remembered (registry.import_tombstones)."""
    return keyring().exact_index(external_id, f"import-tombstone:{agency_id}")


def external_id_indexes(agency_id: uuid.UUID, external_id: str) -> list[bytes]:
    """Each form a tombstone of this external id may have been stored in: under each key of the ring."""
    return keyring().exact_indexes(external_id, f"import-tombstone:{agency_id}")
