"""The audit trail holds: the database refuses UPDATE, DELETE and TRUNCATE; every record is chained to the
previous one's hash; the verify command finds an altered record and a removed one."""

from __future__ import annotations

import itertools
import subprocess
import sys
import uuid
from collections.abc import Iterator

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


def verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/audit_verify.py", "--url", url], cwd=ROOT, capture_output=True, text=True
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
