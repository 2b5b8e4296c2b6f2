"""The one Alembic tree: it upgrades to head and downgrades to base, and the models agree with it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import BASE_URL
from tests.support import ROOT, Db, drop_database, run_sql, with_database


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def scratch_url() -> Iterator[str]:
    import uuid

    name = f"canvass_scratch_{uuid.uuid4().hex[:8]}"
    run_sql(with_database(BASE_URL, "postgres"), f'CREATE DATABASE "{name}"')
    yield with_database(BASE_URL, name)
    drop_database(BASE_URL, name)


def schemas(url: str) -> set[str]:
    d = Db(url)
    try:
        rows = d.fetch("SELECT nspname FROM pg_namespace WHERE nspname IN ('registry', 'requests', 'audit')")
        return {r["nspname"] for r in rows}
    finally:
        d.close()


def test_upgrade_to_head_then_downgrade_to_base_then_upgrade_again(scratch_url: str) -> None:
    up = alembic(scratch_url, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert schemas(scratch_url) == {"registry", "requests", "audit"}
    down = alembic(scratch_url, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert schemas(scratch_url) == set()
    again = alembic(scratch_url, "upgrade", "head")
    assert again.returncode == 0, again.stderr
    current = alembic(scratch_url, "current")
    assert "(head)" in current.stdout


def test_models_and_migrations_agree(database_url: str) -> None:
    """Autogenerate finds no difference between the models and the migrated database."""
    check = alembic(database_url, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
