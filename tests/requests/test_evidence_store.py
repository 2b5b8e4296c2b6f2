"""The evidence store keeps every confirmed upload's file: an object is published and referenced, or found unused
and deleted, only under its content lock, so a failed upload of the same bytes, retention or the janitor never
removes a file a row (committed or about to be) uses; retention never deletes what a legal hold being set
protects. A file found missing or altered by any access is an integrity failure, recorded and audited, and the
custody export then says the chain is broken. The janitor removes abandoned parts and objects no row uses (an
upload killed mid-stream, one that failed after publishing because the database went away). A store that cannot
write answers 507, never "database unavailable"."""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.requests_api import worker
from services.requests_api.evidence import LocalEvidenceStore, store
from shared.db import make_engine, session_factory
from shared.settings import get_settings
from tests.conftest import Suite, Token
from tests.requests.conftest import OFFSET, Flow, NewAgency, NewOwner, Owner, eventually
from tests.support import LOG_DIR, ROOT, SERVICES, Db, Server, free_port, start_server, wait_ready

# Sessions waiting for a lock this session holds (pg_stat_activity's pids are visible to every role; the
# services' sessions belong to another role, so their queries are not).
BLOCKED_BY_ME = (
    "SELECT count(*) FROM pg_stat_activity a WHERE a.datname = current_database()"
    " AND pg_backend_pid() = ANY(pg_blocking_pids(a.pid))"
)


def _accepted(flow: Flow, new_owner: NewOwner) -> tuple[dict[str, Any], Owner]:
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    req = flow.sent()
    r = flow.client.post(
        f"/v1/owner/requests/{req['id']}/answer", json={"answer": "accept"}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    return req, owner


def _object(root: str | Path, sha: str) -> Path:
    return Path(root) / "objects" / sha[:2] / sha[2:4] / sha


def _upload(base_url: str, rid: str, owner: Owner, content: bytes, **data: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/owner/evidence/{rid}",
        files={"file": ("clip.mp4", content, "video/mp4")},
        data=data,
        headers=owner.headers,
        timeout=60,
    )


@pytest.fixture
def run_worker(
    suite: Suite, app_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Any]]:
    """`run_worker(job, *args, **kw)`: one run of a worker job in this process, against the run's database and
    the services' evidence store."""
    monkeypatch.setenv("CANVASS_EVIDENCE_DIR", suite.env["CANVASS_EVIDENCE_DIR"])
    get_settings.cache_clear()
    store.cache_clear()

    def _run(job: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        async def go() -> Any:
            engine = make_engine(app_database_url, get_settings(), "requests_worker_test")
            try:
                return await job(session_factory(engine), *args, **kw)
            finally:
                await engine.dispose()

        return asyncio.run(go())

    yield _run
    monkeypatch.undo()
    get_settings.cache_clear()
    store.cache_clear()


# --- the content lock -----------------------------------------------------------------------------------


def test_a_failed_upload_of_the_same_bytes_never_removes_a_confirmed_uploads_file(
    flow: Flow, new_owner: NewOwner, db: Db, database_url: str
) -> None:
    """The race that lost files: a valid upload is held (by this test, holding the owner's target) after its
    bytes reached the store and before its row is written; meanwhile an upload of the same bytes fails (an
    unknown camera) and cleans up. 100 rounds: every 201 downloads with its hash."""
    req, owner = _accepted(flow, new_owner)
    rid = req["id"]
    target_id = db.fetchval("SELECT id FROM requests.targets WHERE request_id = $1", rid)
    base = str(flow.client.base_url).rstrip("/")
    holder = Db(database_url)
    try:
        with ThreadPoolExecutor(1) as pool:
            for _ in range(100):
                content = os.urandom(4096)
                holder.execute("BEGIN")
                holder.execute("SELECT 1 FROM requests.targets WHERE id = $1 FOR UPDATE", target_id)
                valid = pool.submit(_upload, base, rid, owner, content)
                assert eventually(lambda: holder.fetchval(BLOCKED_BY_ME) == 1, interval=0.01)
                failing = _upload(base, rid, owner, content, camera_id=str(uuid.uuid4()))
                assert failing.status_code == 422, failing.text
                holder.execute("COMMIT")
                ok = valid.result(60)
                assert ok.status_code == 201, ok.text
                sha = hashlib.sha256(content).hexdigest()
                assert ok.json()["sha256"] == sha
                down = flow.client.get(f"/v1/evidence/{ok.json()['id']}/content", headers=flow.inv())
                assert down.status_code == 200, down.text
                assert hashlib.sha256(down.content).hexdigest() == sha
    finally:
        holder.close()


def test_retention_passes_an_item_whose_request_is_being_put_on_legal_hold(
    flow: Flow, new_owner: NewOwner, db: Db, database_url: str, suite: Suite, run_worker: Any
) -> None:
    """A legal hold set while retention runs (its update not yet committed) wins: the item is not deleted."""
    req, owner = _accepted(flow, new_owner)
    up = _upload(str(flow.client.base_url).rstrip("/"), req["id"], owner, os.urandom(2048))
    assert up.status_code == 201, up.text
    eid, sha = up.json()["id"], up.json()["sha256"]
    holder = Db(database_url)
    try:
        holder.execute("BEGIN")
        holder.execute(
            "UPDATE requests.requests SET legal_hold = true, version = version + 1 WHERE id = $1", req["id"]
        )
        db.execute(
            "UPDATE requests.evidence SET uploaded_at = now() - interval '400 days' WHERE id = $1", eid
        )
        run_worker(worker.apply_retention)
        assert db.fetchval("SELECT deleted_at FROM requests.evidence WHERE id = $1", eid) is None
        holder.execute("COMMIT")
    finally:
        holder.close()
    run_worker(worker.apply_retention)
    assert db.fetchval("SELECT deleted_at FROM requests.evidence WHERE id = $1", eid) is None
    assert _object(suite.env["CANVASS_EVIDENCE_DIR"], sha).exists()
    assert flow.client.get(f"/v1/evidence/{eid}/content", headers=flow.inv()).status_code == 200


def test_retention_keeps_a_file_another_live_item_shares_and_deletes_it_with_the_last(
    flow: Flow, new_owner: NewOwner, db: Db, suite: Suite, run_worker: Any
) -> None:
    req, owner = _accepted(flow, new_owner)
    base = str(flow.client.base_url).rstrip("/")
    content = os.urandom(3000)
    first, second = (_upload(base, req["id"], owner, content).json() for _ in range(2))
    path = _object(suite.env["CANVASS_EVIDENCE_DIR"], first["sha256"])
    db.execute(
        "UPDATE requests.evidence SET uploaded_at = now() - interval '400 days' WHERE id = $1", first["id"]
    )
    run_worker(worker.apply_retention)
    assert db.fetchval("SELECT deleted_at FROM requests.evidence WHERE id = $1", first["id"]) is not None
    assert path.exists()
    assert flow.client.get(f"/v1/evidence/{second['id']}/content", headers=flow.inv()).status_code == 200
    db.execute(
        "UPDATE requests.evidence SET uploaded_at = now() - interval '400 days' WHERE id = $1", second["id"]
    )
    run_worker(worker.apply_retention)
    assert eventually(lambda: not path.exists())


# --- integrity failures ---------------------------------------------------------------------------------


def test_a_missing_file_is_an_integrity_failure_recorded_audited_and_breaking_the_custody_chain(
    flow: Flow, new_owner: NewOwner, db: Db, suite: Suite
) -> None:
    req, owner = _accepted(flow, new_owner)
    up = _upload(str(flow.client.base_url).rstrip("/"), req["id"], owner, os.urandom(5000))
    eid, sha = up.json()["id"], up.json()["sha256"]
    _object(suite.env["CANVASS_EVIDENCE_DIR"], sha).unlink()

    verify = flow.client.post(f"/v1/evidence/{eid}/verification", headers=flow.inv())
    assert verify.status_code == 500 and "evidence-integrity" in verify.json()["type"]
    down = flow.client.get(f"/v1/evidence/{eid}/content", headers=flow.inv())
    assert down.status_code == 500 and down.headers["content-type"] == "application/problem+json"
    custody = flow.client.get(f"/v1/evidence/{eid}/custody", headers=flow.inv())
    assert custody.status_code == 200
    steps = [(r["action"], r["outcome"]) for r in custody.json()["records"]]
    assert steps == [
        ("upload", "ok"),
        ("verify", "file_missing"),
        ("download", "file_missing"),
        ("custody_export", "file_missing"),
    ]
    assert custody.json()["chain_intact"] is False
    audited = db.fetch(
        "SELECT details->>'access' AS access, details->>'outcome' AS outcome FROM audit.events"
        " WHERE subject_id = $1 AND action = 'evidence.integrity_failure' ORDER BY seq",
        eid,
    )
    assert [(a["access"], a["outcome"]) for a in audited] == [
        ("verify", "file_missing"),
        ("download", "file_missing"),
        ("custody_export", "file_missing"),
    ]


def test_the_custody_export_checks_the_file_and_reports_an_altered_one(
    flow: Flow, new_owner: NewOwner, suite: Suite
) -> None:
    req, owner = _accepted(flow, new_owner)
    up = _upload(str(flow.client.base_url).rstrip("/"), req["id"], owner, os.urandom(5000))
    eid, sha = up.json()["id"], up.json()["sha256"]
    before = flow.client.get(f"/v1/evidence/{eid}/custody", headers=flow.inv()).json()
    assert before["chain_intact"] is True
    path = _object(suite.env["CANVASS_EVIDENCE_DIR"], sha)
    os.chmod(path, 0o644)
    with path.open("r+b") as f:
        f.write(b"altered")
    after = flow.client.get(f"/v1/evidence/{eid}/custody", headers=flow.inv()).json()
    assert after["chain_intact"] is False
    last = after["records"][-1]
    assert (last["action"], last["outcome"]) == ("custody_export", "hash_mismatch")
    assert last["sha256"] != sha and last["details"]["expected"] == sha


# --- storage failures -----------------------------------------------------------------------------------


def _limited_server(env: dict[str, str], max_file_bytes: int) -> Server:
    """requests_api whose process may write no file larger than `max_file_bytes` (RLIMIT_FSIZE: a write past it
    fails with EFBIG, as a full disk fails with ENOSPC)."""
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"requests_api-fsize-{os.getpid()}-{port}.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            SERVICES["requests_api"],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=limit,  # the limit is set in the child before it runs
    )
    server = Server("requests_api", port, proc, log_path)
    try:
        wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def test_a_store_that_cannot_write_answers_507_and_keeps_nothing(
    suite: Suite, new_agency: NewAgency, new_owner: NewOwner, auth: Token, db: Db, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    server = _limited_server(dict(suite.env, CANVASS_EVIDENCE_DIR=str(root)), 1_000_000)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            flow = Flow(c, auth, new_agency())
            req, owner = _accepted(flow, new_owner)
            full = _upload(server.url, req["id"], owner, os.urandom(3 * 1024 * 1024))
            assert full.status_code == 507, full.text
            assert full.headers["content-type"] == "application/problem+json"
            assert "retry-after" not in full.headers
            assert "database" not in full.json()["detail"].lower()
            assert not list((root / "tmp").glob("*.part"))
            assert not db.fetchval("SELECT count(*) FROM requests.evidence WHERE request_id = $1", req["id"])
            small = _upload(server.url, req["id"], owner, os.urandom(10_000))
            assert small.status_code == 201, small.text
    finally:
        server.stop()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the store's directory should be")
    server = start_server("requests_api", dict(suite.env, CANVASS_EVIDENCE_DIR=str(blocked / "store")))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            flow = Flow(c, auth, new_agency())
            req, owner = _accepted(flow, new_owner)
            r = _upload(server.url, req["id"], owner, os.urandom(1000))
            assert r.status_code == 507, r.text
            assert r.json()["status"] == 507 and r.json()["type"].endswith("insufficient-storage")
    finally:
        server.stop()


# --- the janitor ----------------------------------------------------------------------------------------


def _send_part_of_an_upload(server: Server, rid: str, owner: Owner, sent: int) -> socket.socket:
    """A real client that sends the headers and the first `sent` bytes of a much larger file, and waits."""
    boundary = "janitor-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        (
            f"POST /v1/owner/evidence/{rid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {owner.credential}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + 50_000_000}\r\n\r\n"
        ).encode()
        + head
        + os.urandom(sent)
    )
    return sock


def test_an_upload_cut_short_leaves_no_part_and_one_killed_mid_stream_is_swept_after_a_day(
    suite: Suite,
    new_agency: NewAgency,
    new_owner: NewOwner,
    auth: Token,
    db: Db,
    tmp_path: Path,
    run_worker: Any,
) -> None:
    root = tmp_path / "store"
    env = dict(suite.env, CANVASS_EVIDENCE_DIR=str(root))
    parts = root / "tmp"
    server = start_server("requests_api", env)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            flow = Flow(c, auth, new_agency())
            req, owner = _accepted(flow, new_owner)
            # The client drops the connection: the upload's own clean-up removes its part.
            sock = _send_part_of_an_upload(server, req["id"], owner, 3 * 1024 * 1024)
            assert eventually(lambda: list(parts.glob("*.part")))
            sock.close()
            assert eventually(lambda: not list(parts.glob("*.part")))
            # The process is killed mid-stream: its part stays, for the janitor.
            sock = _send_part_of_an_upload(server, req["id"], owner, 3 * 1024 * 1024)
            assert eventually(lambda: list(parts.glob("*.part")))
            server.process.kill()
            server.process.wait(10)
            sock.close()
    finally:
        server.stop()
    (abandoned,) = parts.glob("*.part")
    own_store = LocalEvidenceStore(root)
    assert run_worker(worker.sweep_store, own_store) == 0  # a day has not passed: it may still be written
    assert abandoned.exists()
    two_days_ago = time.time() - 2 * 86400
    os.utime(abandoned, (two_days_ago, two_days_ago))
    assert run_worker(worker.sweep_store, own_store) == 1
    assert not abandoned.exists()
    assert not db.fetchval("SELECT count(*) FROM requests.evidence WHERE request_id = $1", req["id"])


# The upload's row insert waiting for the table this test locked; a session waiting for a content lock.
INSERT_WAITING = (
    "SELECT pid FROM pg_locks WHERE locktype = 'relation' AND relation = 'requests.evidence'::regclass"
    " AND mode = 'RowExclusiveLock' AND NOT granted"
)
JANITOR_WAITING = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


def test_an_object_published_by_an_upload_the_database_failed_is_swept_and_one_in_flight_is_not(
    suite: Suite,
    new_agency: NewAgency,
    new_owner: NewOwner,
    auth: Token,
    db: Db,
    database_url: str,
    tmp_path: Path,
    run_worker: Any,
) -> None:
    """The upload's row insert is held (the test locks the table), after the file was published; then its
    database connection is cut (as a restart cuts it): the upload fails with a 503 and its object is used by no
    row. The janitor keeps it through the grace period and deletes it after. An upload held the same way and
    let through is not touched by a janitor run that starts while it is in flight: the janitor waits on its
    content lock and then sees its row."""
    root = tmp_path / "store"
    server = start_server("requests_api", dict(suite.env, CANVASS_EVIDENCE_DIR=str(root)))
    own_store = LocalEvidenceStore(root)
    holder = Db(database_url)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            flow = Flow(c, auth, new_agency())
            req, owner = _accepted(flow, new_owner)
            with ThreadPoolExecutor(2) as pool:
                lost_content = os.urandom(7000)
                holder.execute("BEGIN")
                holder.execute("LOCK TABLE requests.evidence IN SHARE MODE")
                lost = pool.submit(_upload, server.url, req["id"], owner, lost_content)
                pid = eventually(lambda: holder.fetchval(INSERT_WAITING), interval=0.01)
                assert pid
                assert holder.fetchval("SELECT pg_terminate_backend($1)", pid)
                failed = lost.result(60)
                holder.execute("COMMIT")
                assert failed.status_code == 503, failed.text
                orphan = _object(root, hashlib.sha256(lost_content).hexdigest())
                assert orphan.exists()

                kept_content = os.urandom(7000)
                holder.execute("BEGIN")
                holder.execute("LOCK TABLE requests.evidence IN SHARE MODE")
                kept = pool.submit(_upload, server.url, req["id"], owner, kept_content)
                assert eventually(lambda: holder.fetchval(INSERT_WAITING), interval=0.01)
                in_flight = _object(root, hashlib.sha256(kept_content).hexdigest())
                assert in_flight.exists()
                sweep = pool.submit(run_worker, worker.sweep_store, own_store, orphan_grace_s=0)
                assert eventually(lambda: holder.fetchval(JANITOR_WAITING) >= 1, interval=0.01)
                holder.execute("COMMIT")
                assert kept.result(60).status_code == 201
                assert sweep.result(60) == 1  # the orphan only
            assert not orphan.exists()
            assert in_flight.exists()
            eid = kept.result().json()["id"]
            assert c.get(f"/v1/evidence/{eid}/content", headers=flow.inv()).status_code == 200
    finally:
        holder.close()
        server.stop()


def test_the_janitor_keeps_an_unused_object_through_its_grace_period(tmp_path: Path, run_worker: Any) -> None:
    own_store = LocalEvidenceStore(tmp_path / "store")
    content = os.urandom(100)
    sha = hashlib.sha256(content).hexdigest()
    path = _object(tmp_path / "store", sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert run_worker(worker.sweep_store, own_store) == 0
    assert path.exists()
    assert run_worker(worker.sweep_store, own_store, orphan_grace_s=0) == 1
    assert not path.exists()


def test_the_worker_runs_the_janitor_on_its_own_clock(suite: Suite, tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "tmp").mkdir(parents=True)
    old, fresh = root / "tmp" / "old.part", root / "tmp" / "fresh.part"
    for p in (old, fresh):
        p.write_bytes(b"abandoned")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.requests_api.worker"],
        cwd=ROOT,
        env=dict(suite.env, CANVASS_EVIDENCE_DIR=str(root), CANVASS_WORKER_POLL_S="0.2"),
        stdout=(LOG_DIR / f"worker-janitor-{os.getpid()}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        assert eventually(lambda: not old.exists(), timeout=30)
        assert fresh.exists()
    finally:
        proc.terminate()
        proc.wait(10)
