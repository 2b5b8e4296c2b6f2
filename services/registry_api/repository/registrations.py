"""Registrations: the one-statement registration, reading and writing one, its deletion, its management
credential and the one-time codes that re-issue it, and what an agency may read of registrations (a contact,
the re-confirmations due) under the visibility rule (`registry.sees`, migrations 0025 and 0029)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry_api import abuse, idempotency
from services.registry_api.repository.agencies import OUTSIDE_SQL
from services.registry_api.repository.cameras import POINT_SQL, cameras_of
from services.registry_api.sealing import external_id_index, with_owner_texts
from services.registry_api.shapes import build_feature
from shared.auth import OwnerCredential, credential_matches
from shared.concurrency import NEXT_VERSION
from shared.errors import Problem, is_contention
from shared.geojson import Point

REGISTRATION_SQL = """
SELECT r.id, r.agency_id, a.slug AS agency, a.name AS agency_name, r.status, r.owner_kind, r.business_name_enc,
       ST_X(r.location) AS lon, ST_Y(r.location) AS lat,
       r.address_enc, r.contact_name_enc, r.contact_email_enc, r.contact_phone_enc,
       r.preferred_contact_method, r.contact_hours_enc, r.notes_for_investigators_enc,
       r.terms_version, r.terms_accepted_at, r.source, r.registered_by, r.external_id, r.credential_hash,
       r.last_confirmed_at, r.last_confirmed_at + make_interval(days => a.reconfirm_after_days) AS reconfirm_due_at,
       r.version, r.created_at, r.updated_at,
       ARRAY(SELECT sa.slug FROM registry.registration_shares s
             JOIN registry.agencies sa ON sa.id = s.agency_id
             WHERE s.registration_id = r.id ORDER BY sa.slug) AS shared_with
FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id
WHERE r.id = :id
"""


async def registration_row(
    session: AsyncSession, rid: uuid.UUID, *, lock: bool = False, texts: bool = True
) -> dict[str, Any] | None:
    """The registration with its owner texts opened (see `with_owner_texts`; `texts=False`: not opened, for a
    caller that does not show them and need not wait for the key store), or None."""
    sql = REGISTRATION_SQL + (" FOR UPDATE OF r" if lock else "")
    row = (await session.execute(text(sql), {"id": rid})).mappings().first()
    if row is None:
        return None
    return await with_owner_texts(row) if texts else dict(row)


def not_found(rid: uuid.UUID) -> Problem:
    return Problem(404, f"No registration {rid}.")


async def owned_registration(
    session: AsyncSession, rid: uuid.UUID, cred: OwnerCredential, *, lock: bool = False
) -> dict[str, Any]:
    """The registration the credential manages. Another registration's id is a 404 (a credential opens one
    registration and says nothing about others); a wrong or revoked secret is a 401, whether or not the
    registration exists, so a guessed credential learns nothing; and it counts towards the guess limits (a 429
    past the client's: see abuse)."""
    if cred.registration_id != rid:
        raise not_found(rid)
    await abuse.attempt()
    row = await registration_row(session, rid, lock=lock)
    if row is None or not credential_matches(row["credential_hash"], cred):
        raise Problem(
            401,
            "The management credential is not valid for this registration (it may have been rotated).",
            headers={"WWW-Authenticate": 'Bearer realm="canvass"'},
        )
    await abuse.succeeded()
    return row


async def registration_feature(session: AsyncSession, row: Mapping[str, Any]) -> dict[str, Any]:
    return build_feature(row, await cameras_of(session, row["id"]))


async def fresh_feature(session: AsyncSession, rid: uuid.UUID) -> tuple[dict[str, Any], int]:
    row = await registration_row(session, rid)
    assert row is not None
    return await registration_feature(session, row), row["version"]


# --- the one-statement registration ----------------------------------------------------------------------


def _positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """asyncpg's `$n` placeholders for a statement written with `:name` ones, and the names in their order."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r"(?<![:\w]):([a-z_]+)", number, sql), tuple(names)


# The first of a registration's two round trips (the second writes it): the program, every point against its
# jurisdiction, the agencies to share with, the answer stored under this Idempotency-Key if any, and the
# database's clock, which stamps the registration. One row, whatever exists.
CREATE_CHECK_SQL = f"""
SELECT now() AS now, k.request_hash, k.status, k.body, k.headers,
       a.id, a.slug, a.name, a.reconfirm_after_days, a.outside, a.share_slugs, a.share_ids
FROM (SELECT 1) one
LEFT JOIN LATERAL ({idempotency.LOOKUP_SQL}) k ON true
LEFT JOIN LATERAL (
    SELECT a.id, a.slug, a.name, a.reconfirm_after_days,
           ({OUTSIDE_SQL.format(agency="a.id")}) AS outside,
           ARRAY(SELECT s.slug FROM registry.agencies s WHERE s.slug = ANY(:shares) ORDER BY s.slug) AS share_slugs,
           ARRAY(SELECT s.id FROM registry.agencies s WHERE s.slug = ANY(:shares) ORDER BY s.slug) AS share_ids
    FROM registry.agencies a WHERE a.slug = :slug
) a ON true
"""  # noqa: S608 - composed from constants; values are bound

# One statement writes the registration, its shares, its cameras and the answer kept for its Idempotency-Key:
# on its own it is one transaction, so all of it commits or none. The cameras' visible_to is computed from the
# values written (`registry.visible_to`, the owner's half of the visibility rule: a statement does not see its
# own inserts), as `registry.sync_cameras` would; foreign keys are checked at the end of the statement, when the
# registration row exists. Its times are the check's clock (`:now`), so the answer, built and sealed before this
# statement runs, is what the row holds.
CREATE_SQL = f"""
WITH reg AS (
    INSERT INTO registry.registrations (
        id, agency_id, status, version, owner_kind, business_name_enc, location, address_enc, contact_name_enc,
        contact_email_enc, contact_phone_enc, contact_email_index, key_id, preferred_contact_method,
        contact_hours_enc, notes_for_investigators_enc, terms_version, terms_accepted_at, credential_hash,
        credential_issued_at, source, registered_by, last_confirmed_at, created_at, updated_at)
    VALUES (:id, :agency_id, :reg_status, :version, :owner_kind, :business_name,
        ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(:location)), 4326), :address_enc, :name_enc,
        :email_enc, :phone_enc, :email_index, :key_id, :preferred, :hours, :notes, :terms_version,
        :terms_at, :credential_hash, :now, :source, :registered_by, :now, :now, :now)
), shares AS (
    INSERT INTO registry.registration_shares (registration_id, agency_id, created_at)
    SELECT :id, unnest(CAST(:share_ids AS uuid[])), :now
), cams AS (
    INSERT INTO registry.cameras (
        id, registration_id, geom, owner_kind, visible_to, created_at, updated_at, label, direction_deg,
        fov_deg, range_m, placement, covers, retention_days, recording, schedule, shares_history, live_mode,
        live_endpoint_enc)
    SELECT c.id, :id, ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(c.geom)), 4326), :owner_kind,
           registry.visible_to(:reg_status, CAST(:share_ids AS uuid[])),
           clock_timestamp() + c.i * interval '1 microsecond', :now, c.label,
           c.direction_deg, c.fov_deg, c.range_m, c.placement,
           ARRAY(SELECT jsonb_array_elements_text(CAST(:covers AS jsonb) -> (c.i::int - 1))),
           c.retention_days, c.recording, c.schedule, c.shares_history, c.live_mode, c.live_endpoint_enc
    FROM unnest(CAST(:c_id AS uuid[]), CAST(:c_geom AS text[]), CAST(:c_label AS text[]),
                CAST(:c_direction AS smallint[]), CAST(:c_fov AS smallint[]), CAST(:c_range AS float8[]),
                CAST(:c_placement AS text[]), CAST(:c_retention AS smallint[]), CAST(:c_recording AS text[]),
                CAST(:c_schedule AS text[]), CAST(:c_history AS boolean[]), CAST(:c_live_mode AS text[]),
                CAST(:c_live_endpoint AS bytea[]))
         WITH ORDINALITY AS c(id, geom, label, direction_deg, fov_deg, range_m, placement, retention_days,
                              recording, schedule, shares_history, live_mode, live_endpoint_enc, i)
), {idempotency.STORE_CTES.strip()}
SELECT 1
"""  # noqa: S608 - composed from constants; values are bound

# Converted once: the statements are prepared once per connection by asyncpg and reused.
_CREATE_CHECK, _CREATE_CHECK_ARGS = _positional(CREATE_CHECK_SQL)
_CREATE, _CREATE_ARGS = _positional(CREATE_SQL)


async def check_new_registration(conn: asyncpg.Connection, args: Mapping[str, Any]) -> asyncpg.Record:
    """The first round trip of a registration (CREATE_CHECK_SQL), with its named values."""
    check = await conn.fetchrow(_CREATE_CHECK, *(args[n] for n in _CREATE_CHECK_ARGS))
    assert check is not None
    return check


async def insert_registration(conn: asyncpg.Connection, values: Mapping[str, Any]) -> None:
    """The second (CREATE_SQL), with its named values; in the caller's transaction if it opened one."""
    await conn.execute(_CREATE, *(values[n] for n in _CREATE_ARGS))


# --- the owner's changes ---------------------------------------------------------------------------------

# What an owner's update writes of the registration row, besides its location (given as a Point).
CHANGEABLE = frozenset(
    {
        "address_enc",
        "contact_name_enc",
        "contact_email_enc",
        "contact_phone_enc",
        "contact_email_index",
        "preferred_contact_method",
        "owner_kind",
        "status",
        "business_name_enc",
        "contact_hours_enc",
        "notes_for_investigators_enc",
        "terms_version",
        "terms_accepted_at",
        "key_id",
    }
)


async def update_registration(
    session: AsyncSession, rid: uuid.UUID, changes: Mapping[str, Any], *, location: Point | None = None
) -> None:
    """Write the changed columns (none: the version still moves, as after any change of what hangs off the
    registration)."""
    assert set(changes) <= CHANGEABLE
    sets = [f"{c} = :{c}" for c in changes]
    params: dict[str, Any] = {"id": rid, **changes}
    if location is not None:
        sets.insert(0, f"location = {POINT_SQL.format(':location')}")
        params["location"] = location.geojson()
    await session.execute(
        text(f"UPDATE registry.registrations SET {', '.join([*sets, NEXT_VERSION])} WHERE id = :id"),  # noqa: S608 - composed from constants; values are bound
        params,
    )


async def touch(session: AsyncSession, rid: uuid.UUID) -> None:
    """A change of what hangs off the registration (a camera): its version moves."""
    await update_registration(session, rid, {})


async def reconfirm(session: AsyncSession, rid: uuid.UUID) -> None:
    await session.execute(
        text(f"UPDATE registry.registrations SET last_confirmed_at = now(), {NEXT_VERSION} WHERE id = :id"),  # noqa: S608 - composed from constants; values are bound
        {"id": rid},
    )


async def record_deletion(session: AsyncSession, rid: uuid.UUID) -> None:
    """The feed from which requests_api erases what the owner wrote in its requests' histories."""
    await session.execute(text("INSERT INTO registry.deletions (registration_id) VALUES (:id)"), {"id": rid})


async def delete_registration(session: AsyncSession, row: Mapping[str, Any]) -> None:
    """Delete the registration: its cameras, shares, live windows, credential resets and stored idempotent
    replays go with it (cascade), and so does an import's credential awaiting delivery."""
    await session.execute(text("DELETE FROM registry.registrations WHERE id = :id"), {"id": row["id"]})
    if row["external_id"] is not None:
        # Imported: the integrator's next import of its list must not register this owner again.
        await session.execute(
            text(
                "INSERT INTO registry.import_tombstones (agency_id, external_id_index) VALUES (:agency, :ix)"
                " ON CONFLICT DO NOTHING"
            ),
            {"agency": row["agency_id"], "ix": external_id_index(row["agency_id"], row["external_id"])},
        )
    # An import's pending credential has no foreign key (for import speed): it goes with the registration.
    await session.execute(
        text("DELETE FROM registry.import_credentials WHERE registration_id = :id"), {"id": row["id"]}
    )


# --- the deletion feed and the notifications on another service's behalf ----------------------------------


class FeedBusy(Exception):
    """Deletions are being written for longer than a reader waits: it comes back in a moment."""


async def deletions_after(session: AsyncSession, after: int, n: int) -> list[RowMapping]:
    """Up to `n` deletions after `seq` `after`, read under a SHARE lock of the feed: every deleting transaction
    in flight ends first (see deletions.py), waited for at most 2 s (then FeedBusy, the transaction rolled
    back)."""
    await session.execute(text("SET LOCAL lock_timeout = '2s'"))
    try:
        await session.execute(text("LOCK TABLE registry.deletions IN SHARE MODE"))
    except DBAPIError as exc:
        if not is_contention(exc):
            raise
        await session.rollback()
        raise FeedBusy from exc
    rows = await session.execute(
        text(
            "SELECT seq, registration_id, deleted_at FROM registry.deletions WHERE seq > :after"
            " ORDER BY seq LIMIT :n"
        ),
        {"after": after, "n": n},
    )
    return list(rows.mappings().all())


# A notification's id is claimed (status `sending`) in registry.idempotency_keys unless it is there already; the
# status it has now (the claim's, or the earlier one's).
CLAIM_NOTIFICATION_SQL = """
WITH claim AS (INSERT INTO registry.idempotency_keys (key, principal, request_hash, status, body, registration_id)
               VALUES (:key, :principal, :digest, :sending, ''::bytea, :rid) ON CONFLICT (key, principal) DO NOTHING
               RETURNING status)
SELECT status FROM claim UNION ALL
SELECT status FROM registry.idempotency_keys WHERE key = :key AND principal = :principal
"""


async def claim_notification(
    session: AsyncSession, key: Mapping[str, str], digest: bytes, rid: uuid.UUID, sending: int
) -> int:
    """Claim the notification's id (`key`: its key and principal) for registration `rid`; its status now."""
    status = await session.execute(
        text(CLAIM_NOTIFICATION_SQL), {**key, "digest": digest, "rid": rid, "sending": sending}
    )
    return int(status.scalar_one())


async def release_notification(session: AsyncSession, key: Mapping[str, str], sending: int) -> None:
    """Drop the claim of a notification not sent, so a retry sends it."""
    await session.execute(
        text(
            "DELETE FROM registry.idempotency_keys WHERE key = :key AND principal = :principal"
            " AND status = :sending"
        ),
        {**key, "sending": sending},
    )


async def notification_sent(session: AsyncSession, key: Mapping[str, str], sent: int) -> None:
    await session.execute(
        text(
            "UPDATE registry.idempotency_keys SET status = :sent WHERE key = :key AND principal = :principal"
        ),
        {**key, "sent": sent},
    )


# --- the management credential ---------------------------------------------------------------------------

RESET_TTL = "1 hour"
RESET_COOLDOWN = "2 minutes"


async def forget_resets(session: AsyncSession, rid: uuid.UUID) -> None:
    """Void the registration's pending one-time codes."""
    await session.execute(
        text("DELETE FROM registry.credential_resets WHERE registration_id = :id"), {"id": rid}
    )


async def replace_credential(session: AsyncSession, rid: uuid.UUID, secret_hash: bytes) -> datetime:
    """The registration's new credential (its old one stops working; its pending codes go); when it was issued."""
    issued_at = (
        await session.execute(
            text(
                "UPDATE registry.registrations SET credential_hash = :h, credential_issued_at = now()"
                " WHERE id = :id RETURNING credential_issued_at"
            ),
            {"h": secret_hash, "id": rid},
        )
    ).scalar_one()
    await forget_resets(session, rid)
    return issued_at  # type: ignore[no-any-return]


async def registrations_to_reset(
    session: AsyncSession, indexes: list[bytes], n: int
) -> list[tuple[uuid.UUID, str]]:
    """Up to `n` registrations using the address (its blind `indexes`) that got no code within the cool-down,
    each locked as it is found (FOR UPDATE: see credentials._reset_codes), with their agency's name."""
    rows = await session.execute(
        text(
            "SELECT r.id, a.name FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id"  # noqa: S608
            " WHERE r.contact_email_index = ANY(:ix)"
            # One code per registration per few minutes: repeated requests cannot flood an inbox.
            " AND NOT EXISTS (SELECT 1 FROM registry.credential_resets cr WHERE cr.registration_id = r.id"
            f" AND cr.created_at > now() - interval '{RESET_COOLDOWN}')"
            " ORDER BY r.created_at LIMIT :n FOR UPDATE OF r"
        ),
        {"ix": indexes, "n": n},
    )
    return [(r[0], r[1]) for r in rows]


async def add_reset(session: AsyncSession, rid: uuid.UUID, token_hash: bytes) -> None:
    await session.execute(
        text(
            "INSERT INTO registry.credential_resets (token_hash, registration_id, expires_at)"  # noqa: S608 - composed from constants; values are bound
            f" VALUES (:h, :id, now() + interval '{RESET_TTL}')"
        ),
        {"h": token_hash, "id": rid},
    )


async def use_reset(session: AsyncSession, token_hash: bytes) -> uuid.UUID | None:
    """The registration a valid, unused, unexpired code is for (the code is used up), or None."""
    rid = (
        await session.execute(
            text(
                "UPDATE registry.credential_resets SET used_at = now()"
                " WHERE token_hash = :h AND used_at IS NULL AND expires_at > now() RETURNING registration_id"
            ),
            {"h": token_hash},
        )
    ).scalar_one_or_none()
    return rid  # type: ignore[no-any-return]


# --- what an agency reads --------------------------------------------------------------------------------

# The agency's jurisdiction is read once, as a copy (ST_SetSRID copies): the stored boundary is compressed
# (TOAST) and would be decompressed again for every camera it is tested against.
ME_SQL = """me AS MATERIALIZED (
    SELECT id, ST_SetSRID(jurisdiction, 4326) AS jurisdiction FROM registry.agencies WHERE slug = :me)"""
# A registration agency `me` sees through one of its cameras (`registry.sees`, the visibility rule of migration
# 0024: active, shared with the agency, and a camera in its jurisdiction), as geo_query's searches find it.
SEEN_BY_ME = (
    "EXISTS (SELECT 1 FROM registry.cameras c WHERE c.registration_id = r.id"
    " AND registry.sees(me.id, me.jurisdiction, c.visible_to, c.geom))"
)
READABLE_SQL = f"""
WITH {ME_SQL}
SELECT r.*, a.slug AS agency
FROM registry.registrations r
JOIN me ON true
JOIN registry.agencies a ON a.id = r.agency_id
WHERE r.id = :id AND {SEEN_BY_ME}
"""  # noqa: S608 - composed from constants; values are bound

# The program's registrations due, those the agency sees only: one whose cameras all lie outside the
# jurisdiction, or that is paused, is not the agency's to see, here either.
DUE_SQL = f"""
WITH {ME_SQL}
SELECT r.id, r.status, r.owner_kind, ST_X(r.location) AS lon, ST_Y(r.location) AS lat,
       r.last_confirmed_at, r.preferred_contact_method,
       r.last_confirmed_at + make_interval(days => a.reconfirm_after_days) AS due
FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id JOIN me ON me.id = a.id
WHERE r.last_confirmed_at
      < now() + make_interval(days => :within) - make_interval(days => a.reconfirm_after_days)
  AND (CAST(:after_at AS timestamptz) IS NULL
       OR (r.last_confirmed_at, r.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
  AND {SEEN_BY_ME}
ORDER BY r.last_confirmed_at, r.id
LIMIT :n
"""  # noqa: S608 - composed from constants; values are bound


async def readable_by(session: AsyncSession, agency: str, rid: uuid.UUID) -> dict[str, Any] | None:
    """The registration with its owner texts opened, if the agency sees it; else None."""
    row = (await session.execute(text(READABLE_SQL), {"me": agency, "id": rid})).mappings().first()
    return None if row is None else await with_owner_texts(row)


async def due_for_reconfirmation(
    session: AsyncSession,
    agency: str,
    within_days: int,
    after: tuple[datetime, uuid.UUID] | None,
    n: int,
) -> list[RowMapping]:
    """Up to `n` of the program's registrations the agency sees that are due within `within_days`, oldest
    confirmation first, after the cursor's (`after`)."""
    after_at, after_id = after if after is not None else (None, None)
    rows = await session.execute(
        text(DUE_SQL),
        {"me": agency, "within": within_days, "after_at": after_at, "after_id": after_id, "n": n},
    )
    return list(rows.mappings().all())
