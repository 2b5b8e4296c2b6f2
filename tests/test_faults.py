"""Faults: PostgreSQL restarted under load. While it is down the services answer 503 problem+json quickly
(never hang, never 500); when it is back they recover without being restarted; every write that got a 2xx is
in the database afterwards. These tests run on a cluster of their own, so stopping it disturbs nothing else."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.auth import mint_token
from tests.support import ROOT, Db, Server, eventually, free_port, start_server, with_database

PROBLEM = "application/problem+json"


@dataclass
class Cluster:
    env: dict[str, str]
    url: str

    def ctl(self, command: str) -> None:
        subprocess.run(
            ["bash", "scripts/localdb.sh", command], cwd=ROOT, env=self.env, check=True, capture_output=True
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    home = ROOT / ".local" / f"pg-fault-{os.getpid()}"
    port = free_port()
    env = dict(os.environ, CANVASS_PG_HOME=str(home), CANVASS_PG_PORT=str(port))
    c = Cluster(env, f"postgresql://canvass:canvass@127.0.0.1:{port}/canvass")
    try:
        c.ctl("start")
        subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={c.url}", "upgrade", "head"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        yield c
    finally:
        subprocess.run(["bash", "scripts/localdb.sh", "stop"], cwd=ROOT, env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def servers(cluster: Cluster) -> Iterator[dict[str, Server]]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env.update(
        CANVASS_ENV="test",
        DATABASE_URL=cluster.url,
        GEO_QUERY_DATABASE_URL=with_database(
            cluster.url, "canvass", user="canvass_geo", password="canvass_geo"
        ),
        CANVASS_STATEMENT_TIMEOUT_MS="3000",
        CANVASS_LOG_LEVEL="WARNING",
    )
    started: dict[str, Server] = {}
    try:
        for name in ("registry_api", "geo_query", "requests_api"):
            started[name] = start_server(name, env)
        yield started
    finally:
        for s in started.values():
            s.stop()


def test_services_answer_503_while_the_database_is_down_and_recover_when_it_is_back(
    cluster: Cluster, servers: dict[str, Server]
) -> None:
    for s in servers.values():
        assert httpx.get(s.url + "/readyz").status_code == 200
    cluster.ctl("stop")
    try:
        for s in servers.values():
            started = time.monotonic()
            r = httpx.get(s.url + "/readyz", timeout=15)
            assert time.monotonic() - started < 10, f"{s.name} took too long to say the database is down"
            assert r.status_code == 503, (s.name, r.status_code, r.text)
            assert r.headers["content-type"] == PROBLEM
            assert r.json()["status"] == 503
    finally:
        cluster.ctl("start")
    deadline = time.monotonic() + 20
    pending = set(servers)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            if httpx.get(servers[name].url + "/readyz").status_code == 200:
                pending.discard(name)
        time.sleep(0.2)
    assert not pending, f"did not recover without a restart: {pending}"


def test_every_acknowledged_write_survives_a_restart_under_load(
    cluster: Cluster, servers: dict[str, Server]
) -> None:
    registry = servers["registry_api"].url
    slug = "fault-" + uuid.uuid4().hex[:8]
    admin = {"Authorization": "Bearer " + mint_token("agency_admin", slug)}
    square = [[-88.0, 42.9], [-87.8, 42.9], [-87.8, 43.1], [-88.0, 43.1], [-88.0, 42.9]]
    r = httpx.post(
        registry + "/v1/agencies",
        json={"slug": slug, "name": "Fault PD", "jurisdiction": {"type": "Polygon", "coordinates": [square]}},
        headers=admin,
    )
    assert r.status_code == 201, r.text

    acknowledged: list[str] = []
    statuses: list[int] = []
    wrong: list[
        tuple[int, str]
    ] = []  # a thread's assertion would not fail the test: collected, asserted below
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(base_url=registry, timeout=15) as c:
            i = 0
            while not stop.is_set() and i < 400:  # bounded
                i += 1
                body = {
                    "agency": slug,
                    "location": {"type": "Point", "coordinates": [-87.9 + n * 0.001, 43.0 + i * 0.0001]},
                    "contact": {"email": f"w{n}-{i}@example.org"},
                }
                try:
                    resp = c.post("/v1/registrations", json=body)
                except httpx.HTTPError:
                    continue
                statuses.append(resp.status_code)
                if resp.status_code == 201:
                    acknowledged.append(resp.json()["id"])
                elif resp.status_code != 503 or resp.headers["content-type"] != PROBLEM:
                    wrong.append((resp.status_code, resp.text[:300]))
                time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        # Each phase lasts until the writers have met it: writes stored, then refused, then stored again.
        assert eventually(lambda: len(acknowledged) >= 3, timeout=30), "no write was stored before the outage"
        cluster.ctl("stop")
        assert eventually(lambda: 503 in statuses, timeout=30), "no write met the outage"
        before = len(statuses)
        cluster.ctl("start")
        assert eventually(lambda: 201 in statuses[before:], timeout=60), (
            "writes did not recover after the restart"
        )
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not wrong, f"answers other than 201 or a 503 problem during the outage: {wrong[:5]}"
    assert 503 in statuses, "no write met the outage: the restart was not under load"
    assert statuses[-1] == 201 or 201 in statuses[-10:], "writes did not recover after the restart"
    d = Db(with_database(cluster.url, "canvass"))
    try:
        stored = {str(r["id"]) for r in d.fetch("SELECT id FROM registry.registrations")}
    finally:
        d.close()
    missing = [a for a in acknowledged if a not in stored]
    assert acknowledged and not missing, f"{len(missing)} acknowledged writes are not in the database"
    print(f"\nfaults: {len(acknowledged)} writes acknowledged, {statuses.count(503)} answered 503, none lost")


def test_a_killed_database_starts_cleanly_again(cluster: Cluster, servers: dict[str, Server]) -> None:
    """After a crash (kill -9 of the postmaster, stale pid files left behind), `localdb.sh start` (what `make run`
    and `make test` call) brings the cluster back, and the services recover without a restart."""
    pid_file = Path(cluster.env["CANVASS_PG_HOME"]) / "data" / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0:
            break
        time.sleep(0.1)
    assert pid_file.exists(), "a crash leaves its pid file behind"
    cluster.ctl("start")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(httpx.get(s.url + "/readyz").status_code == 200 for s in servers.values()):
            return
        time.sleep(0.2)
    raise AssertionError("the services did not recover after the database was killed and started again")
