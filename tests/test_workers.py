"""Several worker processes per service (CANVASS_WORKERS: uvicorn workers on one port) share nothing but the
database: a registration's Idempotency-Key answered by one worker is replayed by the other, and concurrent searches
spread over two geo_query workers each leave their record on one unbroken audit chain.

Which worker serves a connection is the kernel's choice. The test opens connections until it holds some served by
each worker, and tells them apart without asking the service: the server side of each connection is a socket
(found by its ports in /proc/net/tcp) that exactly one worker process holds open.
"""

from __future__ import annotations

import http.client
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.audit import VERIFY_SQL
from tests.conftest import Token
from tests.support import Db, Server, eventually, start_server

WORKERS = 2
SEARCHES = 12  # per connection
PER_WORKER = 3  # connections held on each worker for the concurrent searches


def workers_of(server: Server) -> set[int]:
    """The worker processes uvicorn started for `server` (its children running multiprocessing's spawn)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server.process.pid and b"spawn_main" in cmdline:
            found.add(int(proc.name))
    return found


def serving_worker(conn: http.client.HTTPConnection, server_port: int, workers: set[int]) -> int | None:
    """The worker holding the server side of `conn`'s TCP connection."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                inode = fields[9]
    if inode is None:
        return None
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def call(
    conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    payload = None if body is None else orjson.dumps(body)
    if payload is not None:
        headers = {**headers, "Content-Type": "application/json"}
    conn.request(method, path, body=payload, headers=headers)
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def connections_per_worker(server: Server, per_worker: int) -> dict[int, list[http.client.HTTPConnection]]:
    """Keep-alive connections, `per_worker` served by each worker of `server` (the others are closed)."""
    workers = eventually(lambda: w if len(w := workers_of(server)) == WORKERS else None, timeout=30)
    assert workers, f"{server.name} did not start {WORKERS} workers"
    held: dict[int, list[http.client.HTTPConnection]] = {pid: [] for pid in workers}

    def enough() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, _, _ = call(conn, "GET", "/healthz", {})  # the connection is accepted once it is answered
        pid = serving_worker(conn, server.port, workers)
        assert status == 200 and pid is not None
        if len(held[pid]) < per_worker:
            held[pid].append(conn)
        else:
            conn.close()
        return all(len(c) == per_worker for c in held.values())

    assert eventually(enough, timeout=60, interval=0), f"connections never reached every worker: {held}"
    return held


@pytest.fixture(scope="module")
def two_workers(service_env: dict[str, str]) -> Iterator[dict[str, Server]]:
    env = dict(service_env, CANVASS_WORKERS=str(WORKERS))
    started: dict[str, Server] = {}
    try:
        for name in ("registry_api", "geo_query"):
            started[name] = start_server(name, env)
        yield started
    finally:
        for s in started.values():
            s.stop()


def test_a_registration_answered_by_one_worker_is_replayed_by_the_other(
    two_workers: dict[str, Server], auth: Token, slug: str, db: Db
) -> None:
    registry = two_workers["registry_api"]
    held = connections_per_worker(registry, 1)
    (first_pid, (first,)), (second_pid, (second,)) = held.items()
    box = [[-91.0, 44.0], [-90.9, 44.0], [-90.9, 44.1], [-91.0, 44.1], [-91.0, 44.0]]
    status, _, text = call(
        first,
        "POST",
        "/v1/agencies",
        auth("agency_admin", slug),
        {"slug": slug, "name": "Workers PD", "jurisdiction": {"type": "Polygon", "coordinates": [box]}},
    )
    assert status == 201, text
    key = str(uuid.uuid4())
    body = {
        "agency": slug,
        "location": {"type": "Point", "coordinates": [-90.95, 44.05]},
        "contact": {"email": f"owner-{uuid.uuid4().hex[:10]}@example.org"},
    }
    s1, h1, b1 = call(first, "POST", "/v1/registrations", {"Idempotency-Key": key}, body)
    s2, h2, b2 = call(second, "POST", "/v1/registrations", {"Idempotency-Key": key}, body)
    # Each answer came from the worker its connection was pinned to, and they are two processes.
    assert serving_worker(first, registry.port, set(held)) == first_pid
    assert serving_worker(second, registry.port, set(held)) == second_pid != first_pid
    assert s1 == 201 and "idempotent-replayed" not in h1, b1
    assert s2 == 201 and h2["idempotent-replayed"] == "true", b2
    assert (
        orjson.loads(b2) == orjson.loads(b1) and h2["etag"] == h1["etag"]
    )  # the same registration, credential
    stored = db.fetchval(
        "SELECT count(*) FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id"
        " WHERE a.slug = $1",
        slug,
    )
    assert stored == 1
    for conn in (first, second):
        conn.close()


def test_concurrent_searches_over_two_geo_query_workers_keep_one_unbroken_audit_chain(
    two_workers: dict[str, Server], auth: Token, slug: str, db: Db
) -> None:
    box = [[-92.0, 45.0], [-91.9, 45.0], [-91.9, 45.1], [-92.0, 45.1], [-92.0, 45.0]]
    registry = http.client.HTTPConnection("127.0.0.1", two_workers["registry_api"].port, timeout=30)
    status, _, text = call(
        registry,
        "POST",
        "/v1/agencies",
        auth("agency_admin", slug),
        {"slug": slug, "name": "Workers PD", "jurisdiction": {"type": "Polygon", "coordinates": [box]}},
    )
    assert status == 201, text
    for i in range(3):
        body = {
            "agency": slug,
            "location": {"type": "Point", "coordinates": [-91.95 + i * 0.001, 45.05]},
            "contact": {"email": f"owner-{uuid.uuid4().hex[:10]}@example.org"},
        }
        assert call(registry, "POST", "/v1/registrations", {}, body)[0] == 201
    registry.close()

    geo = two_workers["geo_query"]
    held = connections_per_worker(geo, PER_WORKER)
    run = uuid.uuid4().hex[:8]
    pinned = [(pid, n, conn) for pid, conns in held.items() for n, conn in enumerate(conns)]
    barrier = threading.Barrier(len(pinned))
    answers: list[tuple[int, str, int, int]] = []  # (worker, sub, status, results)
    failures: list[
        BaseException
    ] = []  # a thread's assertion would not fail the test: collected, asserted below

    def searcher(pid: int, n: int, conn: http.client.HTTPConnection) -> None:
        try:
            barrier.wait(30)
            for i in range(SEARCHES):
                sub = f"w-{run}-{pid}-{n}-{i}"
                path = "/v1/cameras/radius?lon=-91.95&lat=45.05&radius_m=1000"
                status, _, text = call(conn, "GET", path, auth("investigator", slug, sub=sub))
                returned = orjson.loads(text)["numberReturned"] if status == 200 else -1
                answers.append((serving_worker(conn, geo.port, set(held)) or 0, sub, status, returned))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=searcher, args=p) for p in pinned]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for _, _, conn in pinned:
        conn.close()
    assert not failures, failures
    assert len(answers) == len(pinned) * SEARCHES
    assert all(status == 200 and returned == 3 for _, _, status, returned in answers), answers[:5]
    assert {worker for worker, _, _, _ in answers} == set(held)  # both workers answered searches
    rows = db.fetch(
        "SELECT actor, (details->>'results')::int AS results FROM audit.events WHERE actor LIKE $1",
        f"w-{run}-%",
    )
    assert sorted(r["actor"] for r in rows) == sorted(
        sub for _, sub, _, _ in answers
    )  # one record per search
    assert all(r["results"] == 3 for r in rows)
    assert db.fetch(VERIFY_SQL) == []
