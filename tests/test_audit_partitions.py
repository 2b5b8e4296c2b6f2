"""The audit trail partitioned by month: the chain runs across months, an append makes next month's partition
ahead, a partition refuses TRUNCATE and the services' role cannot reach one; the migration keeps every record
and its chain both ways; the owner's archive writes each old month to a file that verifies offline, anchors it,
drops it, and verification then starts from the anchor; a retention under one year, and the services' role, are
refused."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import BASE_URL
from tests.support import ROOT, Db, drop_database, ensure_template, run_sql, with_database

PROBE = "canvass_app_archive_probe"
OLD = ["2018-03-02T10:00:00Z", "2018-03-20T11:00:00Z", "2018-03-31T23:59:59.5Z", "2018-04-01T00:00:00Z",
       "2018-04-15T08:30:00Z"]  # fmt: skip


def backdate(d: Db, instants: list[str]) -> None:
    """Records chained at past instants, as the append would have chained them then (the owner writes them: the
    append always stamps the present)."""
    array = ", ".join(f"'{t}'::timestamptz" for t in instants)
    d.execute(
        f"""
        DO $$
        DECLARE head audit.chain_head; rec audit.events; t timestamptz;
        BEGIN
            FOREACH t IN ARRAY ARRAY[{array}] LOOP
                PERFORM audit.create_partition(t);
                SELECT * INTO head FROM audit.chain_head FOR UPDATE;
                rec := ROW(head.seq + 1, gen_random_uuid(), t, 'test', 'old-' || (head.seq + 1), 'investigator',
                           'mke', 'search.radius', 'camera', gen_random_uuid()::text, 'C-0',
                           ST_SetSRID(ST_MakePoint(-87.9, 43.0), 4326), '{{"n": 1}}'::jsonb, head.hash,
                           NULL)::audit.events;
                rec.hash := sha256(head.hash || audit.canonical(rec));
                INSERT INTO audit.events VALUES (rec.*);
                UPDATE audit.chain_head SET seq = rec.seq, hash = rec.hash;
            END LOOP;
        END $$
        """  # noqa: S608 - the test's own instants
    )


def append(d: Db, n: int) -> None:
    for i in range(n):
        d.fetchval(
            "SELECT audit.append_event('test', $1, 'investigator', 'mke', 'search.radius', 'camera', $2, 'C-1',"
            ' \'{"type":"Point","coordinates":[-87.9,43.0]}\', \'{"n": 3}\'::jsonb)',
            f"now-{i}",
            str(uuid.uuid4()),
        )


@contextmanager
def cloned_trail(instants: list[str]) -> Iterator[tuple[str, Db]]:
    """A database of its own, cloned from the migrated template: records at `instants`, then five appended now."""
    name = f"canvass_auditpart_{uuid.uuid4().hex[:8]}"
    run_sql(
        with_database(BASE_URL, "postgres"),
        f'CREATE DATABASE "{name}" TEMPLATE "{ensure_template(BASE_URL)}"',
    )
    url = with_database(BASE_URL, name)
    d = Db(url)
    try:
        backdate(d, instants)
        append(d, 5)
        yield url, d
    finally:
        d.close()
        drop_database(BASE_URL, name)


@pytest.fixture
def trail() -> Iterator[tuple[str, Db]]:
    """Five records in March and April 2018, then five appended now."""
    with cloned_trail(OLD) as t:
        yield t


@pytest.fixture
def app_login(trail: tuple[str, Db]) -> Iterator[str]:
    """A login in the services' role (canvass_app) on the trail's database."""
    url, _ = trail
    run_sql(
        url,
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PROBE}') THEN
                CREATE ROLE {PROBE} LOGIN PASSWORD '{PROBE}' IN ROLE canvass_app;
            END IF;
        END $$""",
    )
    yield with_database(url, url.rsplit("/", 1)[1], user=PROBE, password=PROBE)


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def partitions(d: Db) -> list[str]:
    rows = d.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'audit.events'::regclass ORDER BY 1"
    )
    return [r["relname"] for r in rows]


def month_name(t: datetime) -> str:
    return f"events_{t:%Y_%m}"


# --- partitions ----------------------------------------------------------------------------------------------


def test_the_chain_runs_across_monthly_partitions_and_verifies(trail: tuple[str, Db]) -> None:
    url, d = trail
    rows = d.fetch(
        "SELECT seq, tableoid::regclass::text AS part, 'audit.events_' || to_char(at AT TIME ZONE 'UTC', 'YYYY_MM')"
        " AS month, prev_hash, hash FROM audit.events ORDER BY seq"
    )
    assert [r["part"] for r in rows[:5]] == ["audit.events_2018_03"] * 3 + ["audit.events_2018_04"] * 2
    assert all(r["part"] == r["month"] for r in rows)
    for prev, cur in itertools.pairwise(rows):
        assert cur["prev_hash"] == prev["hash"]
    out = run("audit_verify.py", "--url", url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "intact: 10 records" in out.stdout


def test_an_append_makes_next_months_partition_ahead_as_the_services_role(
    trail: tuple[str, Db], app_login: str
) -> None:
    url, d = trail
    now = datetime.now(UTC)
    next_month = (datetime(now.year, now.month, 1, tzinfo=UTC) + timedelta(days=32)).replace(day=1)
    assert month_name(next_month) in partitions(d)  # made when the migration ran
    # As if no one had appended since this month began: the months after it have no partition yet.
    for name in partitions(d):
        if name > month_name(now):
            d.execute(f"ALTER TABLE audit.events DETACH PARTITION audit.{name}")
            d.execute(f"DROP TABLE audit.{name}")
    d.execute("UPDATE audit.chain_head SET partitions_until = $1", next_month)
    assert month_name(next_month) not in partitions(d)

    app = Db(app_login)
    try:
        app.fetchval(
            "SELECT audit.append_event('test', 'probe', 'investigator', NULL, 'probe', NULL, NULL, NULL, NULL, '{}')"
        )
    finally:
        app.close()
    assert month_name(next_month) in partitions(d)
    assert d.fetchval("SELECT partitions_until FROM audit.chain_head") > now + timedelta(days=31)
    # The new partition is the owner's, like the trail (the services hold no grant on it).
    owners = d.fetch(
        "SELECT DISTINCT relowner FROM pg_class WHERE oid IN ('audit.events'::regclass, $1::regclass)",
        f"audit.{month_name(next_month)}",
    )
    assert len(owners) == 1
    assert run("audit_verify.py", "--url", url).returncode == 0


def test_a_callers_date_style_and_time_zone_do_not_move_a_new_months_bounds(
    trail: tuple[str, Db], app_login: str
) -> None:
    url, d = trail
    now = datetime.now(UTC)
    next_month = (datetime(now.year, now.month, 1, tzinfo=UTC) + timedelta(days=32)).replace(day=1)
    after = (next_month + timedelta(days=32)).replace(day=1)
    for name in partitions(d):
        if name > month_name(now):
            d.execute(f"ALTER TABLE audit.events DETACH PARTITION audit.{name}")
            d.execute(f"DROP TABLE audit.{name}")
    d.execute("UPDATE audit.chain_head SET partitions_until = $1", next_month)
    app = Db(app_login)
    try:
        # A session of the services' role speaking German dates in a zone 14 hours east makes the partition.
        app.execute(
            "DO $$ BEGIN PERFORM set_config('datestyle', 'German', true);"
            " PERFORM set_config('timezone', 'PST-14', true);"
            " PERFORM audit.append_event('test', 'probe', 'investigator', NULL, 'probe', NULL, NULL, NULL, NULL,"
            " '{}'); END $$"
        )
    finally:
        app.close()
    bounds = d.fetchval(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = $1", month_name(next_month)
    )
    assert bounds == (
        f"FOR VALUES FROM ('{next_month:%Y-%m-%d} 00:00:00+00') TO ('{after:%Y-%m-%d} 00:00:00+00')"
    )
    # Appends go on, and the chain verifies.
    d.fetchval(
        "SELECT audit.append_event('test', 'probe', 'investigator', NULL, 'probe', NULL, NULL, NULL, NULL, '{}')"
    )
    assert run("audit_verify.py", "--url", url).returncode == 0


def test_a_partition_refuses_truncate_and_the_services_role_cannot_reach_one(
    trail: tuple[str, Db], app_login: str
) -> None:
    _, d = trail
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        d.execute("TRUNCATE audit.events_2018_03")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        d.execute("DELETE FROM audit.events_2018_03")
    app = Db(app_login)
    try:
        for statement in (
            "SELECT count(*) FROM audit.events_2018_03",
            "TRUNCATE audit.events_2018_03",
            "DELETE FROM audit.events WHERE seq = 1",
            "UPDATE audit.events SET actor = 'x' WHERE seq = 1",
            "ALTER TABLE audit.events DETACH PARTITION audit.events_2018_03",
            "SELECT audit.create_partition(now() + interval '5 years')",
            "INSERT INTO audit.anchors VALUES (1, '\\x00', now(), 1, 1, 'x', 'x', '\\x00')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                app.execute(statement)
        assert app.fetchval("SELECT count(*) FROM audit.events") == 10
    finally:
        app.close()


# --- the migration -------------------------------------------------------------------------------------------


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def before_partitioning() -> str:
    """The revision the partitioning migration follows (read from it: the migrations' order may change)."""
    (path,) = (ROOT / "migrations" / "versions").glob("*_audit_partitions.py")
    found = re.search(r'^down_revision: str \| None = "(\w+)"', path.read_text(), flags=re.M)
    assert found
    return found.group(1)


def test_the_migration_keeps_every_record_its_chain_and_its_index_both_ways() -> None:
    name = f"canvass_auditmig_{uuid.uuid4().hex[:8]}"
    run_sql(with_database(BASE_URL, "postgres"), f'CREATE DATABASE "{name}"')
    url = with_database(BASE_URL, name)
    try:
        up = alembic(url, "upgrade", before_partitioning())
        assert up.returncode == 0, up.stderr
        d = Db(url)
        try:
            append(d, 6)
            before = d.fetch("SELECT seq, id, hash FROM audit.events ORDER BY seq")
            places = d.fetchval("SELECT count(*) FROM audit.event_places")
            refs = d.fetchval("SELECT count(*) FROM audit.event_refs")
            assert places == 6 and refs == 6
        finally:
            d.close()

        assert alembic(url, "upgrade", "head").returncode == 0
        d = Db(url)
        try:
            assert (
                d.fetchval("SELECT relkind::text FROM pg_class WHERE oid = 'audit.events'::regclass") == "p"
            )
            assert d.fetch("SELECT seq, id, hash FROM audit.events ORDER BY seq") == before
            assert d.fetchval("SELECT count(*) FROM audit.event_places") == places
            append(d, 2)  # the chain continues; the index is kept by the trigger on the partitions
            assert d.fetchval("SELECT count(*) FROM audit.event_places") == places + 2
            assert d.fetchval("SELECT count(*) FROM audit.event_refs") == refs + 2
        finally:
            d.close()
        assert run("audit_verify.py", "--url", url).returncode == 0

        down = alembic(url, "downgrade", before_partitioning())
        assert down.returncode == 0, down.stderr
        d = Db(url)
        try:
            assert (
                d.fetchval("SELECT relkind::text FROM pg_class WHERE oid = 'audit.events'::regclass") == "r"
            )
            assert d.fetchval("SELECT count(*) FROM audit.events") == 8
            append(d, 1)
            # The chain as the function of that revision checks it.
            assert [tuple(r) for r in d.fetch("SELECT seq, ok FROM audit.verify_chain()")] == [(9, True)]
        finally:
            d.close()
    finally:
        drop_database(BASE_URL, name)


def test_the_migration_that_stops_copying_positions_removes_every_copied_one_and_keeps_the_records_areas() -> (
    None
):
    """Before it, the side index held where each named camera and registration stood, beside the records' own
    areas; after it, only the records' own areas remain (an owner who deleted their data leaves no position),
    the ids stay, and the chain is untouched."""
    (path,) = (ROOT / "migrations" / "versions").glob("*_audit_places_not_copied.py")
    found = re.search(r'^down_revision: str \| None = "(\w+)"', path.read_text(), flags=re.M)
    assert found
    name = f"canvass_auditmig_{uuid.uuid4().hex[:8]}"
    run_sql(with_database(BASE_URL, "postgres"), f'CREATE DATABASE "{name}"')
    url = with_database(BASE_URL, name)
    try:
        up = alembic(url, "upgrade", found.group(1))
        assert up.returncode == 0, up.stderr
        d = Db(url)
        try:
            append(d, 2)  # two records, each with its own area (a point)
            d.fetchval(
                "SELECT audit.append_event('test', 'det', 'investigator', 'mke', 'live_window.view',"
                " 'live_window', $1, NULL, NULL, '{}'::jsonb)",
                str(uuid.uuid4()),
            )
            seqs = [r["seq"] for r in d.fetch("SELECT seq FROM audit.events ORDER BY seq")]
            # Where a named camera stood, as the index of that revision copied it, for each of the three records.
            for seq in seqs:
                d.execute(
                    "INSERT INTO audit.event_places (seq, agency, geom)"
                    " VALUES ($1, 'mke', ST_SetSRID(ST_MakePoint(-87.95, 43.05), 4326))",
                    seq,
                )
            refs = d.fetch("SELECT seq, target FROM audit.event_refs ORDER BY seq, target")
            chain = d.fetch("SELECT seq, hash FROM audit.events ORDER BY seq")
            assert d.fetchval("SELECT count(*) FROM audit.event_places") == 5
        finally:
            d.close()

        assert alembic(url, "upgrade", "head").returncode == 0
        d = Db(url)
        try:
            kept = d.fetch("SELECT seq, ST_AsText(geom) AS geom FROM audit.event_places ORDER BY seq")
            assert [(r["seq"], r["geom"]) for r in kept] == [(s, "POINT(-87.9 43)") for s in seqs[:2]]
            assert d.fetch("SELECT seq, target FROM audit.event_refs ORDER BY seq, target") == refs
            assert d.fetch("SELECT seq, hash FROM audit.events ORDER BY seq") == chain
        finally:
            d.close()
        assert run("audit_verify.py", "--url", url).returncode == 0
        assert alembic(url, "downgrade", found.group(1)).returncode == 0
        assert alembic(url, "upgrade", "head").returncode == 0
    finally:
        drop_database(BASE_URL, name)


# --- the archive ---------------------------------------------------------------------------------------------


def test_archiving_old_months_keeps_verification_passing_from_the_anchor(
    trail: tuple[str, Db], app_login: str, tmp_path: Path
) -> None:
    url, d = trail
    out = run("audit_archive.py", "--url", url, "--out", str(tmp_path), "--before", "2019-01-01")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(a["first_seq"], a["seq"], a["records"], a["archive"]) for a in lines] == [
        (1, 3, 3, "audit-2018-03.jsonl"),
        (4, 5, 2, "audit-2018-04.jsonl"),
    ]
    assert (tmp_path / "anchors.jsonl").read_text().splitlines() == out.stdout.splitlines()
    # The months are gone, and with them their rows of the oversight index; the anchors stay in the database.
    assert not {"events_2018_03", "events_2018_04"} & set(partitions(d))
    assert d.fetchval("SELECT min(seq) FROM audit.events") == 6
    assert d.fetchval("SELECT count(*) FROM audit.event_places WHERE seq <= 5") == 0
    assert d.fetchval("SELECT count(*) FROM audit.event_refs WHERE seq <= 5") == 0
    stored = d.fetch("SELECT seq, encode(hash, 'hex') AS hash, archive FROM audit.anchors ORDER BY seq")
    assert [(r["seq"], r["hash"], r["archive"]) for r in stored] == [
        (a["seq"], a["hash"], a["archive"]) for a in lines
    ]

    # As `make audit-verify` runs it: with the services' role (DATABASE_URL).
    verified = run("audit_verify.py", "--url", app_login)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact: 10 records, from the archive anchor at record 5" in verified.stdout
    append(d, 2)
    assert run("audit_verify.py", "--url", url).returncode == 0
    # Anchors kept outside, the archived ones among them, still hold.
    held = run("audit_verify.py", "--url", url, "--anchors", str(tmp_path / "anchors.jsonl"))
    assert held.returncode == 0, held.stdout
    # An anchor the archive did not write (the database's owner "archiving" recent records away) is not among
    # those kept outside: verification against them fails.
    [head] = d.fetch("SELECT seq, hash, at FROM audit.events ORDER BY seq DESC LIMIT 1")
    d.execute(
        "INSERT INTO audit.anchors (seq, hash, at, first_seq, records, partition, archive, archive_sha256)"
        " SELECT $1, $2, $3, 6, 1, 'events_forged', 'forged.jsonl', '\\x00'::bytea",
        head["seq"],
        head["hash"],
        head["at"],
    )
    forged = run("audit_verify.py", "--url", url, "--anchors", str(tmp_path / "anchors.jsonl"))
    assert forged.returncode == 1 and f"archive anchor at record {head['seq']} is not among" in forged.stdout
    d.execute("ALTER TABLE audit.anchors DISABLE TRIGGER USER")
    d.execute("DELETE FROM audit.anchors WHERE archive = 'forged.jsonl'")
    d.execute("ALTER TABLE audit.anchors ENABLE TRIGGER USER")
    # A downgrade would lose the anchors the archived months verify from: refused, and nothing changed.
    down = alembic(url, "downgrade", before_partitioning())
    assert down.returncode != 0 and "archive anchors" in down.stdout + down.stderr
    assert run("audit_verify.py", "--url", url).returncode == 0

    # The first record left is what the anchor binds: altered, verification fails from the anchor.
    d.execute("ALTER TABLE audit.events DISABLE TRIGGER events_append_only")
    d.execute("UPDATE audit.events SET case_number = 'C-9' WHERE seq = 6")
    d.execute("ALTER TABLE audit.events ENABLE TRIGGER events_append_only")
    broken = run("audit_verify.py", "--url", url)
    assert broken.returncode == 1 and "audit record 6: record altered" in broken.stdout


def test_an_archive_file_verifies_offline_and_an_altered_line_fails(
    trail: tuple[str, Db], tmp_path: Path
) -> None:
    url, _ = trail
    assert (
        run("audit_archive.py", "--url", url, "--out", str(tmp_path), "--before", "2019-01-01").returncode
        == 0
    )
    march, april, anchors = (
        tmp_path / n for n in ("audit-2018-03.jsonl", "audit-2018-04.jsonl", "anchors.jsonl")
    )
    first = run("audit_verify_export.py", str(march))
    assert first.returncode == 0 and "export verified: 3 records" in first.stdout, first.stdout
    # April's first record links to March's anchored last one.
    second = run("audit_verify_export.py", str(april), "--anchors", str(anchors), "--require-anchor")
    assert second.returncode == 0, second.stdout
    assert "export verified: 2 records, 2 anchors reached" in second.stdout
    records = [json.loads(line) for line in april.read_text().splitlines()]
    assert [r["seq"] for r in records] == [4, 5] and records[0]["at"] == "2018-04-01T00:00:00.000000Z"
    # The archive is the records' only copy: a line removed from either end fails against its anchor (a chain
    # with a gap alone would pass, as a filtered export's does).
    whole = april.read_text().splitlines()
    for kept in (whole[1:], whole[:-1]):
        april.write_text("\n".join(kept) + "\n")
        cut = run("audit_verify_export.py", str(april), "--anchors", str(anchors))
        assert cut.returncode == 1 and "audit-2018-04.jsonl: 1 records, its anchor says 2" in cut.stdout, (
            cut.stdout
        )
    april.write_text("\n".join(whole) + "\n")

    lines = march.read_text().splitlines()
    lines[1] = lines[1].replace('"old-2"', '"old-X"')
    altered = tmp_path / "altered.jsonl"
    altered.write_text("\n".join(lines) + "\n")
    failed = run("audit_verify_export.py", str(altered))
    assert failed.returncode == 1
    assert failed.stdout.splitlines() == [
        "line 2 (record 2): record altered (its values do not hash to its hash)"
    ]


@pytest.mark.parametrize("years_ago", [0, 0.5, 0.99])
def test_a_retention_under_one_year_is_refused(
    trail: tuple[str, Db], tmp_path: Path, years_ago: float
) -> None:
    url, d = trail
    before = date.today() - timedelta(days=int(365 * years_ago))
    out = run("audit_archive.py", "--url", url, "--out", str(tmp_path), "--before", before.isoformat())
    assert out.returncode == 2, out.stdout + out.stderr
    assert "less than 1 year" in out.stdout and "CJIS" in out.stdout
    assert d.fetchval("SELECT count(*) FROM audit.events") == 10
    assert d.fetchval("SELECT count(*) FROM audit.anchors") == 0
    assert not list(tmp_path.iterdir())


def test_the_services_role_cannot_run_the_archive(
    trail: tuple[str, Db], app_login: str, tmp_path: Path
) -> None:
    _, d = trail
    out = run("audit_archive.py", "--url", app_login, "--out", str(tmp_path), "--before", "2019-01-01")
    assert out.returncode == 1
    assert "refused: the archive is the database owner's" in out.stdout
    assert {"events_2018_03", "events_2018_04"} <= set(partitions(d))
    assert d.fetchval("SELECT count(*) FROM audit.events") == 10
    assert d.fetchval("SELECT count(*) FROM audit.anchors") == 0
    assert not list(tmp_path.iterdir())


def test_months_the_chain_crosses_out_of_order_are_archived_together_once_both_are_old_enough(
    tmp_path: Path,
) -> None:
    """The clock went back across a month's end: record 1 is in April, record 2 in March. March alone would leave
    record 1 behind: while April is within the retention nothing is archived; then both go, as one file."""
    with cloned_trail(["2018-04-02T10:00:00Z", "2018-03-30T10:00:00Z"]) as (url, d):
        out = run("audit_archive.py", "--url", url, "--out", str(tmp_path), "--before", "2018-04-01")
        assert out.returncode == 1
        assert out.stdout.splitlines() == [
            "events_2018_03: the first record is 2, the chain continues at 1 (a later month holds the records"
            " between)"
        ]
        assert {"events_2018_03", "events_2018_04"} <= set(partitions(d))
        assert d.fetchval("SELECT count(*) FROM audit.anchors") == 0
        assert not (tmp_path / "audit-2018-03.jsonl").exists()

        out = run("audit_archive.py", "--url", url, "--out", str(tmp_path), "--before", "2018-05-01")
        assert out.returncode == 0, out.stdout + out.stderr
        (anchor,) = [json.loads(line) for line in out.stdout.splitlines()]
        assert (anchor["first_seq"], anchor["seq"], anchor["archive"]) == (
            1,
            2,
            "audit-2018-03-to-2018-04.jsonl",
        )
        assert not {"events_2018_03", "events_2018_04"} & set(partitions(d))
        assert run("audit_verify_export.py", str(tmp_path / anchor["archive"])).returncode == 0
        verified = run("audit_verify.py", "--url", url)
        assert verified.returncode == 0 and "from the archive anchor at record 2" in verified.stdout
