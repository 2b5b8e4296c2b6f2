"""Jobs survive their process: killed mid-way (kill -9), a job is resumed or cleanly failed by the next process,
never half-written; and the server's memory stays flat as the upload grows."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shared.auth import mint_token
from tests.imports.conftest import GEOJSON, collection, feature, spread, wait_job
from tests.registry.conftest import Agency, NewAgency
from tests.support import Db, Server, start_server


def write_upload(path: Path, agency: Agency, n: int) -> Path:
    with path.open("wb") as f:
        f.write(b'{"type":"FeatureCollection","features":[\n')
        for i in range(n):
            lon, lat = agency.inside((i % 300) / 300 * 0.08 - 0.04, (i // 300 % 300) / 300 * 0.08 - 0.04)
            f.write(
                (b"" if i == 0 else b",\n")
                + orjson.dumps(
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [lon, lat]},
                        "properties": {
                            "external_id": f"big-{i}",
                            "contact_email": f"owner{i}@import.example.org",
                            "direction_deg": i % 360,
                            "placement": "outdoor",
                        },
                    }
                )
            )
        f.write(b"\n]}\n")
    return path


def chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            yield block


@pytest.fixture
def own_server(suite: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A registry_api of the test's own (it gets killed), sharing the suite's database."""
    env = dict(
        suite.env,
        CANVASS_IMPORT_DIR=str(tmp_path / "spool"),
        CANVASS_IMPORT_LEASE_S="6",  # renewed every third of it: room for a loaded machine
        CANVASS_IMPORT_CHUNK="1000",
        CANVASS_MAIL_BACKEND="log",
    )
    yield env


def peak_rss_mb(server: Server) -> float:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("phase", ["staging", "merging"])
def test_a_killed_job_is_resumed_or_cleanly_failed_never_half_written(
    phase: str, new_agency: NewAgency, own_server: dict[str, str], tmp_path: Path, db: Any
) -> None:
    a = new_agency()
    n = 20_000
    upload = write_upload(tmp_path / "big.geojson", a, n)
    headers = {"Authorization": "Bearer " + mint_token("integrator", a.slug, sub="sync")}
    server = start_server("registry_api", own_server)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post("/v1/imports", content=chunks(upload), headers={**headers, "Content-Type": GEOJSON})
            assert r.status_code == 202, r.text
            job = r.json()
            deadline = time.monotonic() + 120
            while True:
                job = c.get(f"/v1/imports/{job['id']}", headers=headers).json()
                if phase == "staging" and job["counts"]["read"] >= 2000:
                    break
                if phase == "merging" and job["phase"] == "merging":
                    break
                assert job["status"] not in ("succeeded", "failed"), f"the job ended before the kill: {job}"
                assert time.monotonic() < deadline
                time.sleep(0.02)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
    finally:
        server.stop()
    registrations = "SELECT count(*) FROM registry.registrations WHERE agency_id = $1"
    assert db.fetchval(registrations, uuid.UUID(a.id)) == 0  # nothing half-written by the dead process
    server = start_server("registry_api", own_server)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            final = wait_job(c, job, headers, timeout=180)
    finally:
        server.stop()
    written = db.fetchval(registrations, uuid.UUID(a.id))
    if final["status"] == "succeeded":
        assert final["counts"]["created"] == n and written == n, final
        cameras = db.fetchval(
            "SELECT count(*) FROM registry.cameras c JOIN registry.registrations r ON r.id = c.registration_id"
            " WHERE r.agency_id = $1",
            uuid.UUID(a.id),
        )
        assert cameras == n
    else:
        assert written == 0 and final["error"], final
    attempts = db.fetchval("SELECT attempts FROM registry.import_jobs WHERE id = $1", uuid.UUID(job["id"]))
    assert attempts == 2  # it was taken over, not started afresh as another job
    assert db.fetchval("SELECT to_regclass($1)", f"registry_import.stage_{uuid.UUID(job['id']).hex}") is None
    assert not list((tmp_path / "spool").glob("*"))  # the upload is gone with the job


def test_server_memory_stays_flat_as_the_upload_grows(
    new_agency: NewAgency, own_server: dict[str, str], tmp_path: Path
) -> None:
    a = new_agency()
    headers = {"Authorization": "Bearer " + mint_token("integrator", a.slug, sub="sync")}
    env = dict(own_server, CANVASS_IMPORT_CHUNK="5000")
    server = start_server("registry_api", env)
    peaks = []
    try:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            for n, prefix in ((20_000, "small"), (150_000, "large")):
                upload = write_upload(tmp_path / f"{prefix}.geojson", a, n)
                r = c.post(
                    "/v1/imports",
                    content=chunks(upload),
                    params={"dry_run": "true"},
                    headers={**headers, "Content-Type": GEOJSON},
                )
                assert r.status_code == 202, r.text
                job = wait_job(c, r.json(), headers, timeout=300)
                assert job["status"] == "succeeded" and job["counts"]["valid"] == n, job
                peaks.append(peak_rss_mb(server))
                upload.unlink()
    finally:
        server.stop()
    small, large = peaks
    assert large - small < 40, f"peak RSS grew from {small:.0f} MB to {large:.0f} MB for 7.5x the features"
    assert large < 300


def test_a_malformed_import_setting_refuses_start_up_naming_it(own_server: dict[str, str]) -> None:
    with pytest.raises(RuntimeError, match="exited") as failed:
        start_server("registry_api", dict(own_server, CANVASS_IMPORT_CHUNK="many"))
    assert "CANVASS_IMPORT_CHUNK" in str(failed.value)


def test_a_job_that_fails_unexpectedly_leaves_no_upload_behind(
    new_agency: NewAgency, own_server: dict[str, str], tmp_path: Path
) -> None:
    a = new_agency()
    headers = {"Authorization": "Bearer " + mint_token("integrator", a.slug, sub="sync")}
    upload = tmp_path / "small.geojson"
    upload.write_bytes(collection(spread(a, 10, business_name="Corner Shop")))
    # A key store out of reach (the business names are sealed under keys it holds) makes the job fail on
    # something no rule foresees.
    unreachable = "postgresql://nobody:nothing@127.0.0.1:1/none"
    server = start_server("registry_api", dict(own_server, CANVASS_KEYSTORE_URL=unreachable))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post(
                "/v1/imports", content=upload.read_bytes(), headers={**headers, "Content-Type": GEOJSON}
            )
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json(), headers)
    finally:
        server.stop()
    assert job["status"] == "failed" and "unexpectedly" in job["error"], job
    assert not list((tmp_path / "spool").glob("*"))  # the upload (personal data in clear) is gone

    # An ended job's upload left behind (a process stopped before removing it) is swept at the next start.
    left = tmp_path / "spool" / f"{job['id']}.upload"
    left.write_bytes(upload.read_bytes())
    server = start_server("registry_api", own_server)
    try:
        deadline = time.monotonic() + 30
        while left.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    assert not left.exists()


def test_the_import_handlers_answer_within_the_services_statement_timeout(
    new_agency: NewAgency, own_server: dict[str, str], database_url: str
) -> None:
    """The handlers run on the service's request pool, whose statements time out: with the jobs' table locked by
    the test, reading a job is cancelled and answered 503 instead of waiting as long as the lock is held (the
    runner's own pool, which has no timeout, would wait)."""
    a = new_agency()
    headers = {"Authorization": "Bearer " + mint_token("integrator", a.slug, sub="sync")}
    server = start_server("registry_api", dict(own_server, CANVASS_STATEMENT_TIMEOUT_MS="300"))
    holder = Db(database_url)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post(
                "/v1/imports", content=collection(spread(a, 3)), headers={**headers, "Content-Type": GEOJSON}
            )
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json(), headers)
            holder.execute("BEGIN")
            try:
                holder.execute("LOCK TABLE registry.import_jobs IN ACCESS EXCLUSIVE MODE")
                for path in (f"/v1/imports/{job['id']}", f"/v1/imports/{job['id']}/report"):
                    answer = c.get(path, headers=headers, timeout=10)
                    assert answer.status_code == 503, (path, answer.text)
                    assert answer.json()["type"].endswith("timeout"), answer.json()
            finally:
                holder.execute("COMMIT")
            assert c.get(f"/v1/imports/{job['id']}", headers=headers).status_code == 200
    finally:
        holder.close()
        server.stop()


def test_a_jobs_finished_at_is_when_it_ended_not_when_its_writing_began(
    registry: httpx.Client, new_agency: NewAgency, database_url: str, db: Any
) -> None:
    """The test holds the agency's import lock, so the job's writer waits for it inside its transaction, and
    every row is merged after the release: the job cannot have finished before that."""
    a = new_agency()
    headers = {"Authorization": "Bearer " + mint_token("integrator", a.slug, sub="sync")}
    holder = Db(database_url)
    lock = "hashtextextended('canvass-import:' || $1::uuid::text, 0)"
    try:
        holder.execute(f"SELECT pg_advisory_lock({lock})", uuid.UUID(a.id))
        body = collection(spread(a, 20, prefix="clock"))
        r = registry.post("/v1/imports", content=body, headers={**headers, "Content-Type": GEOJSON})
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        while not db.fetchval(waiting):
            assert time.monotonic() < deadline, "the job's writer never waited for the agency's import lock"
            time.sleep(0.02)
        released = holder.fetchval("SELECT clock_timestamp()")
        holder.execute(f"SELECT pg_advisory_unlock({lock})", uuid.UUID(a.id))
    finally:
        holder.close()
    job = wait_job(registry, r.json(), headers)
    assert job["status"] == "succeeded" and job["counts"]["created"] == 20, job
    finished = db.fetchval("SELECT finished_at FROM registry.import_jobs WHERE id = $1", uuid.UUID(job["id"]))
    assert finished >= released, (finished, released)


def test_a_job_whose_process_died_is_taken_over_within_a_lease_with_no_one_asking(
    new_agency: NewAgency, own_server: dict[str, str], tmp_path: Path, db: Any
) -> None:
    """Two processes share the database and the spool; the one running the job is killed mid-way. The other,
    already up (its start-up recovery long done), takes the job over by itself: nobody reads the job over HTTP
    after the kill."""
    lease = 3.0
    env = dict(own_server, CANVASS_IMPORT_LEASE_S=str(lease))
    a = new_agency()
    n = 20_000
    upload = write_upload(tmp_path / "big.geojson", a, n)
    headers = {"Authorization": "Bearer " + mint_token("integrator", a.slug, sub="sync")}
    first = start_server("registry_api", env)
    second = start_server("registry_api", env)
    try:
        with httpx.Client(base_url=first.url, timeout=60) as c:
            r = c.post("/v1/imports", content=chunks(upload), headers={**headers, "Content-Type": GEOJSON})
            assert r.status_code == 202, r.text
            job_id = uuid.UUID(r.json()["id"])
            deadline = time.monotonic() + 120
            while True:  # the known point: staging under way
                job = c.get(f"/v1/imports/{job_id}", headers=headers).json()
                assert job["status"] not in ("succeeded", "failed"), f"the job ended before the kill: {job}"
                if job["counts"]["read"] >= 2000:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.02)
        owner = db.fetchval("SELECT lease_owner FROM registry.import_jobs WHERE id = $1", job_id)
        assert owner is not None and f":{first.process.pid}:" in owner
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
        killed = time.monotonic()
        state = "SELECT status, attempts, lease_owner FROM registry.import_jobs WHERE id = $1"
        while True:
            row = db.fetch(state, job_id)[0]
            if row["attempts"] == 2:
                break
            assert time.monotonic() - killed < 2 * lease, (
                f"not taken over {2 * lease} s after the kill: {row}"
            )
            time.sleep(0.05)
        assert f":{second.process.pid}:" in row["lease_owner"]
        deadline = time.monotonic() + 180
        while row["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, f"the job did not end: {row}"
            time.sleep(0.1)
            row = db.fetch(state, job_id)[0]
    finally:
        first.stop()
        second.stop()
    written = db.fetchval("SELECT count(*) FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id))
    assert row["status"] == "succeeded" and written == n, (row, written)


def test_two_imports_racing_on_a_new_external_id_make_one_registration(
    new_agency: NewAgency, own_server: dict[str, str], database_url: str, db: Any
) -> None:
    """Two processes each run an import of the same new external_id. The test holds the agency's import lock
    until both jobs wait for it, then lets them go: the one that gets it first creates the registration; the
    other reads which external ids exist only once it holds the lock, so it updates that registration."""
    a = new_agency()
    headers = {"Authorization": "Bearer " + mint_token("integrator", a.slug, sub="sync")}
    lon, lat = a.inside()
    bodies = [collection([feature(lon, lat, "race-1", direction_deg=d)]) for d in (10, 20)]
    servers = [start_server("registry_api", own_server) for _ in bodies]
    holder = Db(database_url)
    lock = "hashtextextended('canvass-import:' || $1::uuid::text, 0)"
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    try:
        holder.execute(f"SELECT pg_advisory_lock({lock})", uuid.UUID(a.id))
        jobs = []
        for server, body in zip(servers, bodies, strict=True):
            r = httpx.post(
                server.url + "/v1/imports",
                content=body,
                headers={**headers, "Content-Type": GEOJSON},
                timeout=60,
            )
            assert r.status_code == 202, r.text
            jobs.append(r.json())
        deadline = time.monotonic() + 60
        while db.fetchval(waiting) < 2:
            assert time.monotonic() < deadline, "the two jobs never both waited for the agency's import lock"
            time.sleep(0.02)
        holder.execute(f"SELECT pg_advisory_unlock({lock})", uuid.UUID(a.id))
        ended = []
        for server, job in zip(servers, jobs, strict=True):
            with httpx.Client(base_url=server.url, timeout=60) as c:
                ended.append(wait_job(c, job, headers))
    finally:
        holder.close()
        for server in servers:
            server.stop()
    assert [j["status"] for j in ended] == ["succeeded", "succeeded"], ended
    counts = sorted((j["counts"]["created"], j["counts"]["updated"]) for j in ended)
    assert counts == [(0, 1), (1, 0)], ended
    rows = db.fetch(
        "SELECT r.id, c.direction_deg FROM registry.registrations r JOIN registry.cameras c"
        " ON c.registration_id = r.id WHERE r.agency_id = $1 AND r.external_id = 'race-1'",
        uuid.UUID(a.id),
    )
    last = max(ended, key=lambda j: j["finished_at"])
    assert len(rows) == 1 and rows[0]["direction_deg"] == (10 if last is ended[0] else 20), (rows, ended)


def test_a_resumed_job_updates_what_another_import_created_while_it_was_stopped(
    registry: httpx.Client, new_agency: NewAgency, own_server: dict[str, str], tmp_path: Path, db: Any
) -> None:
    """The job's process is killed once its first chunk is staged (its ids as new registrations); another
    import then creates one of those ids; the process that resumes the job updates that registration instead
    of failing on it."""
    a = new_agency()
    n = 20_000
    upload = write_upload(tmp_path / "big.geojson", a, n)
    headers = {"Authorization": "Bearer " + mint_token("integrator", a.slug, sub="sync")}
    server = start_server("registry_api", own_server)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post("/v1/imports", content=chunks(upload), headers={**headers, "Content-Type": GEOJSON})
            assert r.status_code == 202, r.text
            job = r.json()
            deadline = time.monotonic() + 120
            while (job := c.get(f"/v1/imports/{job['id']}", headers=headers).json())["counts"]["read"] < 1000:
                assert job["status"] not in ("succeeded", "failed"), f"the job ended before the kill: {job}"
                assert time.monotonic() < deadline
                time.sleep(0.01)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
    finally:
        server.stop()
    assert (
        db.fetchval("SELECT count(*) FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id)) == 0
    )
    # Another import (the suite's own process) creates big-0, staged as new by the stopped job.
    lon, lat = a.inside()
    r = registry.post(
        "/v1/imports",
        content=collection([feature(lon, lat, "big-0", direction_deg=359)]),
        headers={**headers, "Content-Type": GEOJSON},
    )
    assert r.status_code == 202, r.text
    other = wait_job(registry, r.json(), headers)
    assert other["status"] == "succeeded" and other["counts"]["created"] == 1, other
    server = start_server("registry_api", own_server)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            final = wait_job(c, job, headers, timeout=180)
    finally:
        server.stop()
    assert final["status"] == "succeeded", final
    assert (final["counts"]["created"], final["counts"]["updated"]) == (n - 1, 1), final
    rows = db.fetch(
        "SELECT c.direction_deg FROM registry.registrations r JOIN registry.cameras c ON c.registration_id = r.id"
        " WHERE r.agency_id = $1 AND r.external_id = 'big-0'",
        uuid.UUID(a.id),
    )
    assert [r["direction_deg"] for r in rows] == [0]  # the job's description, written last
    assert (
        db.fetchval("SELECT count(*) FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id)) == n
    )
