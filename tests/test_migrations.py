"""The one Alembic tree: it upgrades to head and downgrades to base, and the models agree with it."""

from __future__ import annotations

import subprocess
import sys
import uuid
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


def test_migration_0020_reseals_existing_owner_texts_under_per_registration_keys_and_back(
    scratch_url: str, keystore_url: str
) -> None:
    """Rows written before 0020 hold owners' texts in plain columns: the upgrade seals each under its
    registration's data key in the key store and drops the plain columns; the downgrade opens them back."""
    from services.requests_api.owner_texts import evidence_context, note_context
    from tests.support import open_owner_text

    assert alembic(scratch_url, "upgrade", "0019").returncode == 0
    rid, req, tid, eid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    d = Db(scratch_url)
    try:
        agency = d.fetchval(
            "INSERT INTO registry.agencies (slug, name, jurisdiction, privacy_notice) VALUES ('mig-0020', 'A',"
            " ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)))', 4326), 'n') RETURNING id"
        )
        d.execute(
            "INSERT INTO registry.registrations (id, agency_id, location, contact_phone_enc, credential_hash,"
            " business_name, contact_hours, notes_for_investigators)"
            " VALUES ($1, $2, ST_SetSRID(ST_MakePoint(0.5, 0.5), 4326), '\\x00', '\\x00', 'Shop', '9-5', 'Side door')",
            rid,
            agency,
        )
        d.execute(
            "INSERT INTO requests.requests (id, agency, agency_name, case_number, category, incident_point,"
            " area_kind, area, area_m2, window_start, window_end, message, due_at, requires_approval,"
            " evidence_retention_days, created_by) VALUES ($1, 'mig-0020', 'A', 'C-1', 'theft',"
            " ST_SetSRID(ST_MakePoint(0.5, 0.5), 4326), 'radius', ST_Buffer(ST_SetSRID(ST_MakePoint(0.5, 0.5), 4326),"
            " 0.001), 1, now() - interval '2 hours', now() - interval '1 hour', 'm', now() + interval '1 day', false,"
            " 30, 'det')",
            req,
        )
        d.execute(
            "INSERT INTO requests.targets (id, request_id, registration_id) VALUES ($1, $2, $3)",
            tid,
            req,
            rid,
        )
        d.execute(
            "INSERT INTO requests.events (request_id, target_id, actor, actor_role, action, from_state, to_state,"
            " note) VALUES ($1, $2, 'owner:x', 'owner', 'accept', 'notified', 'accepted', 'Porch camera')",
            req,
            tid,
        )
        d.execute(
            "INSERT INTO requests.evidence (id, request_id, target_id, sha256, size_bytes, media_type, filename,"
            " original_filename, description, storage_key) VALUES ($1, $2, $3, 'ab', 1, 'video/mp4', 'a.mp4',"
            " 'a?.mp4', 'The van', 'ab')",
            eid,
            req,
            tid,
        )
    finally:
        d.close()

    up = alembic(scratch_url, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    d = Db(scratch_url)
    try:
        reg = d.fetch("SELECT * FROM registry.registrations WHERE id = $1", rid)[0]
        assert "business_name" not in reg and "notes_for_investigators" not in reg
        opened = [
            open_owner_text(rid, reg[c + "_enc"], f"registration:{rid}:{c}")
            for c in ("business_name", "contact_hours", "notes_for_investigators")
        ]
        assert opened == ["Shop", "9-5", "Side door"]
        event = d.fetch("SELECT note, note_enc FROM requests.events WHERE target_id = $1", tid)[0]
        assert event["note"] is None
        assert open_owner_text(rid, event["note_enc"], note_context(tid)) == "Porch camera"
        ev = d.fetch("SELECT * FROM requests.evidence WHERE id = $1", eid)[0]
        assert [
            open_owner_text(rid, ev[f + "_enc"], evidence_context(eid, f))
            for f in ("filename", "original_filename", "description")
        ] == ["a.mp4", "a?.mp4", "The van"]
        for value in (*[reg[c] for c in reg.keys() if c.endswith("_enc")], event["note_enc"]):
            assert b"Shop" not in bytes(value or b"") and b"Porch" not in bytes(value or b"")
        # The history's guard still lets an owner's (now sealed) note be erased, and nothing else.
        d.execute("UPDATE requests.events SET note_enc = NULL WHERE target_id = $1", tid)
    finally:
        d.close()

    down = alembic(scratch_url, "downgrade", "0019")
    assert down.returncode == 0, down.stderr
    d = Db(scratch_url)
    try:
        reg = d.fetch(
            "SELECT business_name, contact_hours, notes_for_investigators FROM registry.registrations"
        )[0]
        assert tuple(reg) == ("Shop", "9-5", "Side door")
        assert d.fetchval("SELECT description FROM requests.evidence WHERE id = $1", eid) == "The van"
    finally:
        d.close()
