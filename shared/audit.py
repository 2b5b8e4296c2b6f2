"""The audit trail: who searched, viewed or exported what, when, for which case.

Records are appended through the database function `audit.append_event`, which chains each record to the
previous one's hash (SHA-256); the table refuses UPDATE, DELETE and TRUNCATE. It is partitioned by month (`at`,
UTC), the append making each month's partition a month ahead; partitions past the retention are archived to a
file and dropped by the owner (scripts/audit_archive.py), each after an anchor (`audit.anchors`) from which
`verify_chain` then starts. `verify_chain` recomputes the chain and reports the first record that was altered or
removed. Subjects are named by pseudonymous ids (UUIDs), never by personal data, so an owner's deletion leaves
nothing personal here.

Also the one definition of what a record's hash covers (`CANONICAL_FIELDS`, in `audit.canonical`'s order) and of
a record as exported or archived (`EXPORT_FIELDS`, `EXPORT_COLUMNS`, `jsonl_line`), which the export, the archive
and the offline verification (scripts/audit_verify_export.py) share.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import Base

events = Table(
    "events",
    Base.metadata,
    # The key holds the partition key, as PostgreSQL asks; seq alone is unique, given only by the append.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", Uuid, nullable=False, server_default=func.gen_random_uuid()),
    Column("at", DateTime(timezone=True), primary_key=True, server_default=func.now()),
    Column("service", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("actor_role", Text, nullable=False),
    Column("agency", Text),
    Column("action", Text, nullable=False),
    Column("subject_type", Text),
    Column("subject_id", Text),
    Column("case_number", Text),
    Column("area", Geometry(srid=4326, spatial_index=False)),
    Column("details", JSONB, nullable=False, server_default="{}"),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    Index("ix_audit_events_agency_at", "agency", "at"),
    Index("ix_audit_events_subject", "subject_type", "subject_id"),
    Index("ix_audit_events_id", "id"),
    # An auditor's search by actor or by case number, newest first, without reading the agency's whole trail.
    Index("ix_audit_events_agency_actor", "agency", "actor", "seq"),
    Index(
        "ix_audit_events_agency_case",
        "agency",
        "case_number",
        "seq",
        postgresql_where=text("case_number IS NOT NULL"),
    ),
    schema="audit",
    postgresql_partition_by="RANGE (at)",
)

# The newest record's sequence number and hash: lets verification notice records cut from the end.
chain_head = Table(
    "chain_head",
    Base.metadata,
    Column("one", Boolean, primary_key=True, server_default=text("true")),
    Column("seq", BigInteger, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    # The upper bound of the newest month's partition: the append makes the next one when it comes within reach.
    Column("partitions_until", DateTime(timezone=True), nullable=False),
    CheckConstraint("one", name="chain_head_one_check"),
    schema="audit",
)

# One row per archived partition, written before it was dropped: the last archived record's seq and hash, which
# the first record left links to, and the archive file's name and SHA-256.
anchors = Table(
    "anchors",
    Base.metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("partition", Text, nullable=False),
    Column("archive", Text, nullable=False),
    Column("archive_sha256", LargeBinary, nullable=False),
    Column("archived_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema="audit",
)

# The values a record's hash covers, in the order `audit.canonical` joins them (absent ones as empty text).
CANONICAL_FIELDS = (
    "seq",
    "id",
    "at",
    "service",
    "actor",
    "actor_role",
    "agency",
    "action",
    "subject_type",
    "subject_id",
    "case_number",
    "area",
    "details",
)
# A record as exported and archived: those values, then its link and its hash.
EXPORT_FIELDS = (*CANONICAL_FIELDS, "prev_hash", "hash")
# The statement's columns giving `EXPORT_FIELDS` from `audit.events e`, each as the text the hash covers: `at` in
# the canonical form, the area as EWKB hex, the details as PostgreSQL writes them.
EXPORT_COLUMNS = """
    e.seq, e.id::text AS id, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
    e.service, e.actor, e.actor_role, e.agency, e.action, e.subject_type, e.subject_id, e.case_number,
    encode(ST_AsEWKB(e.area), 'hex') AS area, e.details::text AS details,
    encode(e.prev_hash, 'hex') AS prev_hash, encode(e.hash, 'hex') AS hash
"""


def jsonl_line(row: Any) -> bytes:
    """A row of `EXPORT_COLUMNS` as one JSON Lines record."""
    return orjson.dumps({k: row[k] for k in EXPORT_FIELDS}) + b"\n"


# What a record cannot hold: PostgreSQL's text and jsonb refuse NUL (U+0000), and UTF-8 cannot carry a lone
# surrogate. One such character anywhere in a record would fail its append, and with it every record appended in
# the same statement; so each is written as U+FFFD, the replacement character, whatever input it came from.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` with every string in it (dictionary keys included) made fit for a record."""
    if isinstance(value, str):
        return value if _UNSTORABLE.search(value) is None else _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [storable(v) for v in value]
    return value


@dataclass
class AuditEvent:
    service: str
    actor: str
    actor_role: str
    action: str
    agency: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    case_number: str | None = None
    area_geojson: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def params(self) -> tuple[Any, ...]:
        """The append's parameters, every string made storable (see `storable`)."""
        return (
            storable(self.service),
            storable(self.actor),
            storable(self.actor_role),
            storable(self.agency),
            storable(self.action),
            storable(self.subject_type),
            storable(self.subject_id),
            storable(self.case_number),
            storable(self.area_geojson),
            details_json(self.details),
        )


class _NotPlain(Exception):
    """A value orjson would hand to `default`: the details take the long way (see `details_json`)."""


def _not_plain(value: Any) -> Any:
    raise _NotPlain


def details_json(details: dict[str, Any]) -> str:
    """The record's details as JSON text, every string made storable (see `storable`).

    Most details are plain (string keys; strings, numbers, lists, dicts) and hold nothing unstorable: orjson then
    writes them as they are, which is the text the long way gives, in a fraction of its time (every search of
    geo_query writes one record). A NUL (which orjson writes as `\\u0000`), a lone surrogate (which it refuses),
    a key that is not a string or a value it does not know (a set, say) take the long way: `storable`, then a text
    of anything still unknown."""
    try:
        text = orjson.dumps(details, default=_not_plain)
    except (_NotPlain, TypeError):  # orjson.JSONEncodeError is a TypeError
        pass
    else:
        if b"\\u0000" not in text:
            return text.decode()
    return orjson.dumps(storable(details), default=lambda v: storable(str(v))).decode()


APPEND_SQL = "SELECT audit.append_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)"
APPEND_SQL_NAMED = (
    "SELECT audit.append_event(:service, :actor, :actor_role, :agency, :action, :subject_type, :subject_id,"
    " :case_number, :area, CAST(:details AS jsonb))"
)


async def append_asyncpg(conn: Any, event: AuditEvent) -> uuid.UUID:
    """Append through a raw asyncpg connection or pool."""
    return await conn.fetchval(APPEND_SQL, *event.params())


async def append_session(session: Any, event: AuditEvent) -> uuid.UUID:
    """Append inside a SQLAlchemy session's transaction (so the record commits with the change it audits)."""
    from sqlalchemy import text

    keys = (
        "service",
        "actor",
        "actor_role",
        "agency",
        "action",
        "subject_type",
        "subject_id",
        "case_number",
        "area",
        "details",
    )
    result = await session.execute(text(APPEND_SQL_NAMED), dict(zip(keys, event.params(), strict=True)))
    return result.scalar_one()


VERIFY_SQL = "SELECT seq, ok, reason FROM audit.verify_chain() WHERE NOT ok ORDER BY seq LIMIT 1"
