"""The audit trail partitioned by month, and archived past its retention from an anchor.

`audit.events` becomes a table partitioned by range of `at`, one partition a calendar month (UTC), named
`audit.events_YYYY_MM`. The hash chain does not change: it is built by `audit.append_event(s)` from the chain's
head (`audit.chain_head`), whatever partition a record lands in, so it runs across partitions as it ran across
pages. A partition's primary key must hold the partition key, so the key is (seq, at); a record's seq stays unique
because only the append functions, under the head's lock, give one out.

Partitions are made ahead by the append itself: under the head's lock it checks the head's `partitions_until`
(one comparison per append) and, when the month starting within the next 31 days has no partition yet, creates it
— once a month, at the month's first append, a month before it is needed. The new table is created apart and then
attached, which takes a SHARE UPDATE EXCLUSIVE lock on the trail: it neither waits for nor blocks readers (an
export running for minutes) or appends. No default partition: attaching next to one locks it (ACCESS EXCLUSIVE)
and scans it, which would make that month's first append wait for the longest running read, and rows that fell
into it would have to be moved out later; an append always finds its month's partition already there instead.

`audit.anchors` holds one row per archive (scripts/audit_archive.py, `make audit-archive`; a month, or the months a
clock set back made the chain cross out of order): the last archived record's seq and hash, written in the
transaction that detaches and drops the partitions.
`audit.verify_chain` starts from the newest anchor: the first record left must link to the anchored hash. The
anchors are append-only like the trail; the services may read them, not write them.

Each partition refuses TRUNCATE on its own as well (a statement trigger on the parent does not fire when a
partition is truncated directly); UPDATE and DELETE are refused by the parent's row trigger, which every partition
inherits. The services' role holds SELECT on the parent only, none on the partitions.

`audit.index_details` takes the records' time range too, so the oversight index's trigger reads the one partition
its record is in instead of probing every partition's key.

The upgrade copies the trail into the partitioned table (a full rewrite of the trail, in the migration's
transaction).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "canvass_app"

_COLUMNS = """
    seq bigint NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    at timestamptz NOT NULL DEFAULT now(),
    service text NOT NULL,
    actor text NOT NULL,
    actor_role text NOT NULL,
    agency text,
    action text NOT NULL,
    subject_type text,
    subject_id text,
    case_number text,
    area geometry(Geometry, 4326),
    details jsonb NOT NULL DEFAULT '{}',
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL
"""

_CANONICAL = """
CREATE FUNCTION audit.canonical(e audit.events) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_to(concat_ws(chr(31),
        e.seq::text, e.id::text,
        to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        e.service, e.actor, e.actor_role, coalesce(e.agency, ''), e.action,
        coalesce(e.subject_type, ''), coalesce(e.subject_id, ''), coalesce(e.case_number, ''),
        coalesce(encode(ST_AsEWKB(e.area), 'hex'), ''), e.details::text), 'UTF8')
$$
"""

# The month `month` falls in (UTC), as a partition of its own; nothing when it has one. The bounds are written as
# text: the function's own TimeZone and DateStyle make that text the same instant whatever the caller's session
# says (a caller's `SET datestyle`/`timezone` would otherwise move a month's bounds and stop every append).
_CREATE_PARTITION = """
CREATE FUNCTION audit.create_partition(month timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, audit SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' AS $$
DECLARE
    lo timestamptz := date_trunc('month', month, 'UTC');
    hi timestamptz := date_trunc('month', lo + interval '32 days', 'UTC');
    name text := 'events_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF to_regclass('audit.' || name) IS NOT NULL THEN
        RETURN;
    END IF;
    -- Created apart, then attached: attaching locks the trail SHARE UPDATE EXCLUSIVE, where creating it as a
    -- partition would lock it ACCESS EXCLUSIVE and wait for every running read.
    EXECUTE format('CREATE TABLE audit.%I (LIKE audit.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.%I'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', name);
    EXECUTE format('ALTER TABLE audit.events ATTACH PARTITION audit.%I FOR VALUES FROM (%L) TO (%L)',
                   name, lo, hi);
END $$
"""

# Every month from the head's `partitions_until` through the one `upto` falls in gets its partition.
_EXTEND_PARTITIONS = """
CREATE FUNCTION audit.extend_partitions(upto timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, audit AS $$
DECLARE
    m timestamptz;
BEGIN
    SELECT partitions_until INTO m FROM audit.chain_head FOR UPDATE;
    WHILE m <= upto LOOP
        PERFORM audit.create_partition(m);
        m := date_trunc('month', m + interval '32 days', 'UTC');
    END LOOP;
    UPDATE audit.chain_head SET partitions_until = m;
END $$
"""

# Under the head's lock, before the record is made: the month starting within 31 days has its partition.
_ENSURE = """
        IF clock_timestamp() + interval '31 days' >= head.partitions_until THEN
            PERFORM audit.extend_partitions(clock_timestamp() + interval '31 days');
        END IF;"""

_APPEND_ONE = """
CREATE OR REPLACE FUNCTION audit.append_event(
    p_service text, p_actor text, p_actor_role text, p_agency text, p_action text,
    p_subject_type text, p_subject_id text, p_case_number text, p_area_geojson text, p_details jsonb
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
DECLARE
    head audit.chain_head;
    rec audit.events;
BEGIN
    -- One writer at a time extends the chain; the lock is held until the transaction ends.
    SELECT * INTO head FROM audit.chain_head FOR UPDATE;{ensure}
    rec.seq := head.seq + 1;
    rec.id := gen_random_uuid();
    rec.at := clock_timestamp();
    rec.service := p_service; rec.actor := p_actor; rec.actor_role := p_actor_role;
    rec.agency := p_agency; rec.action := p_action; rec.subject_type := p_subject_type;
    rec.subject_id := p_subject_id; rec.case_number := p_case_number;
    rec.area := CASE WHEN p_area_geojson IS NULL THEN NULL
                     ELSE ST_SetSRID(ST_GeomFromGeoJSON(p_area_geojson), 4326) END;
    rec.details := coalesce(p_details, '{{}}'::jsonb);
    rec.prev_hash := head.hash;
    rec.hash := sha256(head.hash || audit.canonical(rec));
    INSERT INTO audit.events VALUES (rec.*);
    UPDATE audit.chain_head SET seq = rec.seq, hash = rec.hash;
    RETURN rec.id;
END $$
"""

_APPEND_MANY = """
CREATE OR REPLACE FUNCTION audit.append_events(
    p_service text[], p_actor text[], p_actor_role text[], p_agency text[], p_action text[],
    p_subject_type text[], p_subject_id text[], p_case_number text[], p_area_geojson text[],
    p_details jsonb[]
) RETURNS SETOF uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
DECLARE
    head audit.chain_head;
    pending audit.events[];
    rec audit.events;
    chained audit.events[] := '{{}}';
    h bytea;
BEGIN
    -- One writer at a time extends the chain; the lock is held until the transaction ends.
    SELECT * INTO head FROM audit.chain_head FOR UPDATE;{ensure}
    SELECT array_agg(ROW(
               head.seq + t.n, gen_random_uuid(), clock_timestamp(), t.service, t.actor, t.actor_role,
               t.agency, t.action, t.subject_type, t.subject_id, t.case_number,
               CASE WHEN t.area IS NULL THEN NULL ELSE ST_SetSRID(ST_GeomFromGeoJSON(t.area), 4326) END,
               coalesce(t.details, '{{}}'::jsonb), NULL, NULL)::audit.events ORDER BY t.n)
      INTO pending
      FROM unnest(p_service, p_actor, p_actor_role, p_agency, p_action, p_subject_type, p_subject_id,
                  p_case_number, p_area_geojson, p_details)
           WITH ORDINALITY AS t(service, actor, actor_role, agency, action, subject_type, subject_id,
                                case_number, area, details, n);
    IF pending IS NULL THEN
        RETURN;
    END IF;
    h := head.hash;
    FOREACH rec IN ARRAY pending LOOP
        rec.prev_hash := h;
        rec.hash := sha256(h || audit.canonical(rec));
        h := rec.hash;
        chained := chained || rec;
    END LOOP;
    INSERT INTO audit.events SELECT * FROM unnest(chained);
    UPDATE audit.chain_head SET seq = head.seq + cardinality(chained), hash = h;
    RETURN QUERY SELECT c.id FROM unnest(chained) AS c ORDER BY c.seq;
END $$
"""

# Verification starts from the newest archive anchor, when there is one: its hash is what the first record left
# links to.
_FROM_ANCHOR = """
    SELECT a.seq, a.hash INTO anchor FROM audit.anchors a ORDER BY a.seq DESC LIMIT 1;
    IF FOUND THEN
        prev := anchor.hash;
        expected_seq := anchor.seq + 1;
    END IF;"""

_VERIFY = """
CREATE OR REPLACE FUNCTION audit.verify_chain() RETURNS TABLE(seq bigint, ok boolean, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    e audit.events;
    prev bytea := '\\x'::bytea || sha256('canvass-audit-genesis');
    expected_seq bigint := 1;
    head audit.chain_head;{anchor_var}
BEGIN{from_anchor}
    FOR e IN SELECT * FROM audit.events WHERE events.seq >= expected_seq ORDER BY events.seq LOOP
        IF e.seq <> expected_seq THEN
            seq := expected_seq; ok := false; reason := 'record missing'; RETURN NEXT;
        END IF;
        IF e.prev_hash <> prev THEN
            seq := e.seq; ok := false; reason := 'link to the previous record broken'; RETURN NEXT;
        END IF;
        IF e.hash <> sha256(e.prev_hash || audit.canonical(e)) THEN
            seq := e.seq; ok := false; reason := 'record altered'; RETURN NEXT;
        END IF;
        prev := e.hash;
        expected_seq := e.seq + 1;
    END LOOP;
    SELECT * INTO head FROM audit.chain_head;
    IF head.seq <> expected_seq - 1 OR head.hash <> prev THEN
        seq := head.seq; ok := false; reason := 'records missing at the end of the chain'; RETURN NEXT;
    END IF;
    seq := expected_seq - 1; ok := true; reason := 'chain intact'; RETURN NEXT;
END $$
"""

# As in 0022, with the records' time range: the trigger passes its record's instant, so the statement reads one
# partition (pruned at execution) instead of looking the seq up in every partition.
_INDEX_DETAILS = """
CREATE FUNCTION audit.index_details(
    lo bigint, hi bigint, since timestamptz DEFAULT '-infinity', until timestamptz DEFAULT 'infinity'
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
BEGIN
    -- PL/pgSQL keeps this statement's plan for the session: a SQL function would plan it on every append.
    WITH e AS MATERIALIZED (
        SELECT seq, agency, action, subject_type, subject_id, details
        FROM audit.events WHERE seq BETWEEN lo AND hi AND at BETWEEN since AND until
    ),
"""


_TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION audit.index_appended() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, audit AS $$
BEGIN
    IF NEW.area IS NOT NULL AND NOT ST_IsEmpty(NEW.area) THEN
        INSERT INTO audit.event_places (seq, agency, geom) VALUES (NEW.seq, NEW.agency, NEW.area);
    END IF;
    IF NEW.subject_id IS NOT NULL AND char_length(NEW.subject_id) <= 200 THEN
        INSERT INTO audit.event_refs (seq, target) VALUES (NEW.seq, NEW.subject_id) ON CONFLICT DO NOTHING;
    END IF;
    IF NEW.subject_type = 'camera' OR NEW.action = 'request.create'
       OR NEW.details ?| ARRAY['registration_id', 'cameras', 'contacts_disclosed'] THEN
        PERFORM audit.index_details({args});
    END IF;
    RETURN NULL;
END $$
"""

_ANCHORS = """
CREATE TABLE audit.anchors (
    seq bigint PRIMARY KEY,
    hash bytea NOT NULL,
    at timestamptz NOT NULL,
    first_seq bigint NOT NULL,
    records bigint NOT NULL,
    partition text NOT NULL,
    archive text NOT NULL,
    archive_sha256 bytea NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
)
"""

# The grants the trail's table had, given again to the table that replaces it.
_REGRANT = """
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
             WHERE table_schema = 'audit' AND table_name = '{old}' AND privilege_type = 'SELECT'
               AND grantee <> current_user AND grantee <> 'PUBLIC' LOOP
        EXECUTE format('GRANT SELECT ON audit.events TO %I', r.grantee);
    END LOOP;
END $$
"""

_TRIGGERS = [
    "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON audit.events"
    " FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()",
    "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()",
    "CREATE TRIGGER events_indexed AFTER INSERT ON audit.events FOR EACH ROW EXECUTE FUNCTION audit.index_appended()",
]


def _index_details_rest(signature: str) -> str:
    """`index_details` from its `named` CTE to its end, as the database holds it: the part both versions share
    (one text of it, 0022's, instead of a copy here)."""
    body = (
        op.get_bind()
        .exec_driver_sql(
            f"SELECT prosrc FROM pg_proc WHERE oid = 'audit.index_details({signature})'::regprocedure"
        )
        .scalar_one()
    )
    return body[body.index("    named(seq, agency, target, camera)") :] + "$$"


def upgrade() -> None:
    rest = _index_details_rest("bigint, bigint")
    # The trail's table aside, under another name (its functions follow it), to be copied and dropped.
    op.execute("ALTER TABLE audit.events RENAME TO events_unpartitioned")
    op.execute("ALTER TABLE audit.events_unpartitioned DROP CONSTRAINT events_pkey")
    op.execute("ALTER TABLE audit.events_unpartitioned DROP CONSTRAINT events_id_key")
    op.execute("DROP INDEX audit.ix_audit_events_agency_at")
    op.execute("DROP INDEX audit.ix_audit_events_subject")
    op.execute(
        f"CREATE TABLE audit.events ({_COLUMNS}, CONSTRAINT events_pkey PRIMARY KEY (seq, at))"
        " PARTITION BY RANGE (at)"
    )
    op.execute("CREATE INDEX ix_audit_events_agency_at ON audit.events (agency, at)")
    op.execute("CREATE INDEX ix_audit_events_subject ON audit.events (subject_type, subject_id)")
    op.execute("CREATE INDEX ix_audit_events_id ON audit.events (id)")
    op.execute("DROP FUNCTION audit.canonical(audit.events_unpartitioned)")
    op.execute(_CANONICAL)

    op.execute("ALTER TABLE audit.chain_head ADD COLUMN partitions_until timestamptz")
    op.execute(
        "UPDATE audit.chain_head SET partitions_until ="
        " date_trunc('month', coalesce((SELECT min(at) FROM audit.events_unpartitioned), now()), 'UTC')"
    )
    op.execute("ALTER TABLE audit.chain_head ALTER COLUMN partitions_until SET NOT NULL")
    op.execute(_CREATE_PARTITION)
    op.execute(_EXTEND_PARTITIONS)
    op.execute(
        "SELECT audit.extend_partitions(greatest(now(),"
        " (SELECT max(at) FROM audit.events_unpartitioned)) + interval '31 days')"
    )
    # The side index already holds these records: they are copied before its trigger exists.
    op.execute("INSERT INTO audit.events SELECT * FROM audit.events_unpartitioned")
    op.execute("DROP FUNCTION audit.index_details(bigint, bigint)")
    op.execute(_INDEX_DETAILS + rest)
    op.execute(_TRIGGER_FUNCTION.format(args="NEW.seq, NEW.seq, NEW.at, NEW.at"))
    for statement in _TRIGGERS:
        op.execute(statement)
    op.execute(_APPEND_ONE.format(ensure=_ENSURE))
    op.execute(_APPEND_MANY.format(ensure=_ENSURE))

    op.execute(_ANCHORS)
    op.execute(
        "CREATE TRIGGER anchors_append_only BEFORE UPDATE OR DELETE ON audit.anchors"
        " FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER anchors_no_truncate BEFORE TRUNCATE ON audit.anchors"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute(_VERIFY.format(anchor_var="\n    anchor record;", from_anchor=_FROM_ANCHOR))

    op.execute("REVOKE ALL ON audit.events, audit.anchors FROM PUBLIC")
    op.execute(_REGRANT.format(old="events_unpartitioned"))
    op.execute(
        "REVOKE ALL ON FUNCTION audit.create_partition(timestamptz), audit.extend_partitions(timestamptz),"
        " audit.index_details(bigint, bigint, timestamptz, timestamptz) FROM PUBLIC"
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                GRANT SELECT ON audit.anchors TO {APP_ROLE};
            END IF;
        END $$;
        """
    )
    op.execute("DROP TABLE audit.events_unpartitioned")


def downgrade() -> None:
    # Archived months exist only in their files from their anchors on: the single table before this revision
    # verifies from the chain's first record and would call the archive a break. Refused rather than lost.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT FROM audit.anchors) THEN RAISE EXCEPTION"
        " 'audit.anchors holds archive anchors: the trail before this revision cannot verify without them';"
        " END IF; END $$"
    )
    rest = _index_details_rest("bigint, bigint, timestamptz, timestamptz")
    op.execute("ALTER TABLE audit.events RENAME TO events_partitioned")
    op.execute("ALTER TABLE audit.events_partitioned DROP CONSTRAINT events_pkey")
    op.execute("DROP INDEX audit.ix_audit_events_agency_at")
    op.execute("DROP INDEX audit.ix_audit_events_subject")
    op.execute("DROP INDEX audit.ix_audit_events_id")
    op.execute(
        f"CREATE TABLE audit.events ({_COLUMNS}, CONSTRAINT events_pkey PRIMARY KEY (seq),"
        " CONSTRAINT events_id_key UNIQUE (id))"
    )
    op.execute("CREATE INDEX ix_audit_events_agency_at ON audit.events (agency, at)")
    op.execute("CREATE INDEX ix_audit_events_subject ON audit.events (subject_type, subject_id)")
    op.execute("DROP FUNCTION audit.canonical(audit.events_partitioned)")
    op.execute(_CANONICAL)
    op.execute("INSERT INTO audit.events SELECT * FROM audit.events_partitioned")
    op.execute("DROP FUNCTION audit.index_details(bigint, bigint, timestamptz, timestamptz)")
    op.execute(
        _INDEX_DETAILS.replace(
            ", since timestamptz DEFAULT '-infinity', until timestamptz DEFAULT 'infinity'", ""
        ).replace(" AND at BETWEEN since AND until", "")
        + rest
    )
    op.execute(_TRIGGER_FUNCTION.format(args="NEW.seq, NEW.seq"))
    for statement in _TRIGGERS:
        op.execute(statement)
    op.execute(_APPEND_ONE.format(ensure=""))
    op.execute(_APPEND_MANY.format(ensure=""))
    op.execute(_VERIFY.format(anchor_var="", from_anchor=""))
    op.execute("REVOKE ALL ON audit.events FROM PUBLIC")
    op.execute(_REGRANT.format(old="events_partitioned"))
    op.execute("DROP TABLE audit.events_partitioned")
    op.execute("DROP TABLE audit.anchors")
    op.execute("DROP FUNCTION audit.extend_partitions(timestamptz)")
    op.execute("DROP FUNCTION audit.create_partition(timestamptz)")
    op.execute("ALTER TABLE audit.chain_head DROP COLUMN partitions_until")
