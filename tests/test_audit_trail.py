"""The audit trail holds: the database refuses UPDATE, DELETE and TRUNCATE; every record is chained to the
previous one's hash; the verify command finds an altered record and a removed one."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.conftest import BASE_URL
from tests.support import ROOT, Db, drop_database, ensure_template, run_sql, with_database


@pytest.fixture
def trail() -> Iterator[tuple[str, Db]]:
    """A database of its own (cloned from the migrated template), since these tests tamper with it."""
    name = f"canvass_audit_{uuid.uuid4().hex[:8]}"
    run_sql(
        with_database(BASE_URL, "postgres"),
        f'CREATE DATABASE "{name}" TEMPLATE "{ensure_template(BASE_URL)}"',
    )
    url = with_database(BASE_URL, name)
    d = Db(url)
    for i in range(5):
        d.fetchval(
            "SELECT audit.append_event('test', $1, 'investigator', 'mke', 'search', 'camera', $2, 'C-1',"
            ' \'{"type":"Point","coordinates":[-87.9,43.0]}\', \'{"n": 3}\'::jsonb)',
            f"user-{i}",
            str(uuid.uuid4()),
        )
    yield url, d
    d.close()
    drop_database(BASE_URL, name)


def verify(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/audit_verify.py", "--url", url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_each_record_is_chained_to_the_previous_ones_hash(trail: tuple[str, Db]) -> None:
    _, d = trail
    rows = d.fetch("SELECT seq, prev_hash, hash FROM audit.events ORDER BY seq")
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    for prev, cur in itertools.pairwise(rows):
        assert cur["prev_hash"] == prev["hash"]
    assert len({r["hash"] for r in rows}) == 5


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit.events SET actor = 'someone-else'", "DELETE FROM audit.events", "TRUNCATE audit.events"],
)
def test_the_database_refuses_changes_to_the_trail(trail: tuple[str, Db], statement: str) -> None:
    _, d = trail
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        d.execute(statement)
    assert d.fetchval("SELECT count(*) FROM audit.events") == 5


def test_verify_passes_an_intact_chain(trail: tuple[str, Db]) -> None:
    url, _ = trail
    out = verify(url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "intact: 5 records" in out.stdout


def test_a_records_canonical_form_is_computed_inline_and_whatever_the_session_says(
    trail: tuple[str, Db],
) -> None:
    """`audit.canonical` is inlined into the statements that call it (migration 0033: declared IMMUTABLE over
    STABLE functions, it ran as a function of its own, parsed and planned again in every transaction), and its text,
    hence every hash, does not depend on the session's settings."""
    _, d = trail
    plan = "\n".join(
        r[0] for r in d.fetch("EXPLAIN (VERBOSE, COSTS OFF) SELECT audit.canonical(e) FROM audit.events e")
    )
    assert "convert_to(concat_ws(" in plan and "canonical(" not in plan, plan
    sql = "SELECT seq, audit.canonical(e) AS c, sha256(e.prev_hash || audit.canonical(e)) = e.hash AS ok FROM audit.events e ORDER BY seq"
    before = d.fetch(sql)
    assert all(r["ok"] for r in before)
    for setting in (
        "datestyle = 'SQL, DMY'",
        "timezone = 'Asia/Kathmandu'",
        "extra_float_digits = 0",
        "lc_time = 'C'",
    ):
        d.execute(f"SET {setting}")
    after = d.fetch(sql)
    d.execute("RESET ALL")
    assert [(r["seq"], r["c"]) for r in after] == [(r["seq"], r["c"]) for r in before]
    assert all(r["ok"] for r in after)


def _tamper(d: Db, statement: str) -> None:
    # Only by switching the guard off (as the table's owner could) can a record be changed at all.
    d.execute("ALTER TABLE audit.events DISABLE TRIGGER events_append_only")
    d.execute(statement)
    d.execute("ALTER TABLE audit.events ENABLE TRIGGER events_append_only")


def test_verify_detects_an_altered_record(trail: tuple[str, Db]) -> None:
    url, d = trail
    _tamper(d, "UPDATE audit.events SET case_number = 'C-2' WHERE seq = 3")
    out = verify(url)
    assert out.returncode == 1
    assert "audit record 3: record altered" in out.stdout


def test_verify_detects_a_removed_record_in_the_middle_and_at_the_end(trail: tuple[str, Db]) -> None:
    url, d = trail
    _tamper(d, "DELETE FROM audit.events WHERE seq = 2")
    out = verify(url)
    assert out.returncode == 1 and "audit record 2: record missing" in out.stdout
    _tamper(d, "DELETE FROM audit.events WHERE seq = 5")
    out = verify(url)
    assert "records missing at the end of the chain" in out.stdout


BATCH_SQL = (
    "SELECT audit.append_events($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::text[], $9::text[], $10::jsonb[])"
)


def test_a_batch_is_chained_in_order_like_single_appends_and_verifies(trail: tuple[str, Db]) -> None:
    url, d = trail
    n = 7
    actors = [f"batch-{i}" for i in range(n)]
    areas = [None if i % 2 else '{"type":"Point","coordinates":[-87.9,43.0]}' for i in range(n)]
    details: list[str | None] = [f'{{"results": {i}}}' for i in range(n - 1)]
    details.append(None)
    ids = [
        r[0]
        for r in d.fetch(
            BATCH_SQL,
            ["geo_query"] * n,
            actors,
            ["investigator"] * n,
            ["mke"] * n,
            ["search.radius"] * n,
            [None] * n,
            [None] * n,
            ["C-9"] * n,
            areas,
            details,
        )
    ]
    # A single append after the batch continues the same chain.
    d.fetchval(
        "SELECT audit.append_event('test', 'after', 'investigator', NULL, 'probe', NULL, NULL, NULL, NULL, '{}')"
    )
    rows = d.fetch(
        "SELECT id, seq, actor, area IS NOT NULL AS has_area, details, prev_hash, hash FROM audit.events"
        " WHERE seq > 5 ORDER BY seq"
    )
    assert [r["seq"] for r in rows] == list(range(6, 6 + n + 1))
    assert [r["id"] for r in rows[:n]] == ids  # the ids come back in the batch's order
    assert [r["actor"] for r in rows] == [*actors, "after"]
    assert [r["has_area"] for r in rows[:n]] == [a is not None for a in areas]
    assert rows[n - 1]["details"] == "{}" and rows[0]["details"] == '{"results": 0}'
    head = d.fetch("SELECT seq, hash FROM audit.chain_head")[0]
    assert (head["seq"], head["hash"]) == (rows[-1]["seq"], rows[-1]["hash"])
    out = verify(url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"intact: {5 + n + 1} records" in out.stdout
    # An empty batch appends nothing.
    assert d.fetch(BATCH_SQL, *([[]] * 10)) == []
    assert d.fetchval("SELECT seq FROM audit.chain_head") == 5 + n + 1


def test_a_role_without_the_grant_cannot_append(trail: tuple[str, Db]) -> None:
    url, d = trail
    role = f"canvass_nobody_{uuid.uuid4().hex[:6]}"
    d.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{role}'")
    try:
        d.execute(f"GRANT USAGE ON SCHEMA audit TO {role}")
        other = Db(with_database(url, url.rsplit("/", 1)[1], user=role, password=role))
        try:
            for statement in (
                "SELECT audit.append_event('x', 'x', 'x', NULL, 'x', NULL, NULL, NULL, NULL, '{}')",
                "SELECT audit.append_events('{x}', '{x}', '{x}', '{NULL}', '{x}', '{NULL}', '{NULL}', '{NULL}',"
                " '{NULL}', '{NULL}')",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    other.fetchval(statement)
        finally:
            other.close()
        assert d.fetchval("SELECT count(*) FROM audit.events") == 5
    finally:
        d.execute(f"REVOKE ALL ON SCHEMA audit FROM {role}")
        d.execute(f"DROP ROLE {role}")


REWRITE_FROM_3 = """
DO $$
DECLARE r audit.events; h bytea;
BEGIN
    SELECT hash INTO h FROM audit.events WHERE seq = 2;
    FOR r IN SELECT * FROM audit.events WHERE seq >= 3 ORDER BY seq LOOP
        r.prev_hash := h;
        r.hash := sha256(h || audit.canonical(r));
        UPDATE audit.events SET prev_hash = r.prev_hash, hash = r.hash WHERE seq = r.seq;
        h := r.hash;
    END LOOP;
    UPDATE audit.chain_head SET hash = h;
END $$
"""


def test_an_anchor_kept_outside_catches_a_chain_rewritten_by_the_databases_owner(
    trail: tuple[str, Db], tmp_path: Any
) -> None:
    url, d = trail
    anchor = subprocess.run(
        [sys.executable, "scripts/audit_verify.py", "--url", url, "--anchor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert anchor.returncode == 0, anchor.stderr
    line = json.loads(anchor.stdout)
    assert line["seq"] == 5 and len(line["hash"]) == 64 and line["at"].endswith("Z")
    anchors = tmp_path / "anchors.jsonl"
    anchors.write_text(anchor.stdout)
    ok = verify(url, "--anchors", str(anchors))
    assert ok.returncode == 0 and "1 anchors hold" in ok.stdout, ok.stdout + ok.stderr

    # The owner alters record 3 and recomputes every hash after it: the chain alone looks intact.
    d.execute("ALTER TABLE audit.events DISABLE TRIGGER events_append_only")
    d.execute("UPDATE audit.events SET case_number = 'C-2' WHERE seq = 3")
    d.execute(REWRITE_FROM_3)
    d.execute("ALTER TABLE audit.events ENABLE TRIGGER events_append_only")
    assert verify(url).returncode == 0
    caught = verify(url, "--anchors", str(anchors))
    assert caught.returncode == 1
    assert "audit record 5 has another hash than anchored" in caught.stdout
