"""The audit trail's side index, as Alembic sees it: each record's own area, and the ids each record touched.

Filled only by the database (the trigger `audit.events_indexed`, migrations 0022 and 0035) from what was appended,
read by oversight's searches; derived from the trail, so rebuilding it from the trail loses nothing. It never holds
where a registration or camera stands (an owner's home): a place search reads that from the registry, through the
ids, so an owner's deletion leaves no position behind.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, Table, Text

from shared.db import Base

event_places = Table(
    "event_places",
    Base.metadata,
    Column("seq", BigInteger, nullable=False),
    Column("agency", Text),
    Column("geom", Geometry(srid=4326, spatial_index=False), nullable=False),
    Index("ix_audit_event_places_geom", "geom", postgresql_using="gist"),
    Index("ix_audit_event_places_seq", "seq"),
    schema="audit",
)

event_refs = Table(
    "event_refs",
    Base.metadata,
    Column("target", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("target", "seq"),
    schema="audit",
)
