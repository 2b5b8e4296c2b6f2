"""The trail's place index no longer copies where registrations and cameras stand.

`audit.index_details` (0022, 0026) copied into `audit.event_places`, for each record naming a registration or a
camera (a search that listed contact details, a live view, a footage request's targets), where that camera stood
and where that registration lay: an owner's home, to the metre. The copy outlived the owner's deletion, so an
owner who deleted their data still had their home's position in the database, beside the pseudonymous ids of
every record about them, and an auditor's place search still found those records there: the guarantee that
deletion removes personal data for real, and that the trail keeps only pseudonymous identifiers, did not hold.

From this revision the side index keeps the records' own areas (what a searcher or a footage request chose, which
the trail itself carries and its hash covers) and the ids they name (`audit.event_refs`), nothing else. A place
search finds a record by the cameras it names (or whose registration it names) through those ids, where they stand
now in the registry and only while the agency may see them (services/registry_api/oversight.py): once deleted or
no longer shared, they are found nowhere. The rows already copied are removed (every row of `audit.event_places`
that is not its record's own area).

Revision ID: 0035
Revises: 0033
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEAD = """
CREATE OR REPLACE FUNCTION audit.index_details(
    lo bigint, hi bigint, since timestamptz DEFAULT '-infinity', until timestamptz DEFAULT 'infinity'
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
BEGIN
    -- PL/pgSQL keeps this statement's plan for the session: a SQL function would plan it on every append.
    WITH e AS MATERIALIZED (
        SELECT seq, agency, action, subject_type, subject_id, details
        FROM audit.events WHERE seq BETWEEN lo AND hi AND at BETWEEN since AND until
    ),
    named(seq, agency, target, camera) AS (
        SELECT seq, agency, subject_id, true FROM e WHERE subject_type = 'camera' AND subject_id IS NOT NULL
        UNION ALL
        SELECT seq, agency, details->>'registration_id', false FROM e WHERE details ? 'registration_id'
        UNION ALL
        SELECT e.seq, e.agency, c.v, true
        FROM e, jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(e.details->'cameras') = 'array' THEN e.details->'cameras' END) AS c(v)
        UNION ALL
        SELECT e.seq, e.agency, c.v, false
        FROM e, jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(e.details->'contacts_disclosed') = 'array'
                 THEN e.details->'contacts_disclosed' END) AS c(v)
        UNION ALL
        SELECT e.seq, e.agency, t.registration_id::text, false
        FROM e JOIN requests.targets t ON t.request_id::text = e.subject_id
        WHERE e.action = 'request.create' AND e.subject_type = 'request'
        UNION ALL
        SELECT e.seq, e.agency, c->>'camera_id', true
        FROM e JOIN requests.targets t ON t.request_id::text = e.subject_id,
             jsonb_array_elements(t.cameras) AS c
        WHERE e.action = 'request.create' AND e.subject_type = 'request'
    ),
    -- Only well-formed ids are looked up: a detail is whatever its writer put there.
    ids AS (
        SELECT DISTINCT seq, agency, target, camera,
               CASE WHEN target ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    THEN target::uuid END AS id
        FROM named WHERE target IS NOT NULL AND char_length(target) <= 200
    ),
    cams AS (
        SELECT i.seq, i.agency, c.id, c.registration_id, c.geom
        FROM ids i JOIN registry.cameras c ON c.id = i.id WHERE i.camera
    ),
"""

# The ids only: each named id, and the registration of each camera named (a pseudonymous id, as the trail keeps).
_NEW_TAIL = """
    refs AS (
        SELECT seq, target FROM ids
        UNION SELECT seq, registration_id::text FROM cams
    )
    INSERT INTO audit.event_refs (seq, target) SELECT seq, target FROM refs ON CONFLICT DO NOTHING;
END $$
"""

# 0026's, for the downgrade: the positions copied as well.
_OLD_TAIL = """
    regs AS (
        SELECT i.seq, i.agency, r.location AS geom
        FROM ids i JOIN registry.registrations r ON r.id = i.id WHERE NOT i.camera
    ),
    refs AS (
        INSERT INTO audit.event_refs (seq, target)
        SELECT seq, target FROM ids
        UNION SELECT seq, registration_id::text FROM cams
        ON CONFLICT DO NOTHING
    )
    INSERT INTO audit.event_places (seq, agency, geom)
    SELECT seq, agency, geom FROM cams
    UNION ALL SELECT seq, agency, geom FROM regs WHERE geom IS NOT NULL;
END $$
"""

# Every row that is not its record's own area (the trigger indexes that one alone, as it stands in the record).
_REMOVE_COPIES = """
DELETE FROM audit.event_places p
WHERE NOT EXISTS (
    SELECT FROM audit.events e
    WHERE e.seq = p.seq AND e.area IS NOT NULL AND ST_AsEWKB(e.area) = ST_AsEWKB(p.geom)
)
"""


def upgrade() -> None:
    op.execute(_HEAD + _NEW_TAIL)
    op.execute(_REMOVE_COPIES)


def downgrade() -> None:
    op.execute(_HEAD + _OLD_TAIL)
    # The positions of the registrations and cameras that still exist, copied again as 0026 kept them.
    op.execute("SELECT audit.index_details(1, (SELECT coalesce(max(seq), 0) FROM audit.events))")
