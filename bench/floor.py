"""`python -m bench.floor`: geo_query beside the floor of Python serving the same SQL over HTTP, and raw.

For each of the bench's saved search scripts (nearest K on many metros and bbox-100 on the dense metro by default),
the statements geo_query runs for each request are captured from its application (as the raw driver's are), and
four systems answer the same requests side by side, in alternating order, on the QUICK data set:

- raw: the bench's asyncpg driver running those statements, no HTTP (the targets' yardstick);
- floor (bare ASGI): a plain ASGI callable under uvicorn running them, no framework, no token, no audit record
  (bench/floor_app.py): the least Python and HTTP can cost per search here;
- floor (minimal FastAPI): the same behind one typed FastAPI route;
- geo_query: the service as `make run` serves it (token, scoping, validation, middleware, audit record).

Each cell prints requests/s, the CPU µs per search of the serving process (raw: the driver) and of the PostgreSQL
backends, and the share of the two cores left idle: what separates geo_query from raw that is not its own rules.
Needs the wrk scripts of a previous `make bench QUICK=1 ONLY=queries` (as bench.ab and bench.profile do).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import re
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.settings import ROOT, WORK, from_environment, say

_ENTRY = re.compile(r"\{\[===\[GET\]===\], \[===\[([^\]]*)\]===\], nil\}")
_AUTH = re.compile(r"\[===\[Authorization\]===\] \] = \[===\[([^\]]*)\]===\]")


def _requests(script: Path) -> tuple[list[str], str]:
    """The GET paths of one of the bench's wrk scripts, and its Authorization header."""
    text = script.read_text()
    auth = _AUTH.search(text)
    if auth is None:
        sys.exit(f"floor: {script} has no Authorization header")
    return _ENTRY.findall(text), auth.group(1)


async def _capture(scripts: dict[str, tuple[list[str], str]]) -> dict[str, list[Any]]:
    from bench.capture import GeoQueryInProcess
    from bench.http import HttpRequest

    out: dict[str, list[Any]] = {}
    async with GeoQueryInProcess() as app:
        for name, (paths, auth) in scripts.items():
            captured, failure = await app.capture_all(
                [HttpRequest("GET", p) for p in paths], {"Authorization": auth}
            )
            if failure:
                sys.exit(f"floor: {name}: {failure}")
            out.update(zip(paths, captured, strict=True))
    return out


def _idle() -> tuple[int, int]:
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(v), v[3] + v[4]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scripts", default="geo-regions-nearest,geo-metro-bbox100")
    parser.add_argument("--clients", default="16,1", help="comma-separated client counts")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from bench import raw
    from bench.run import geo_query_server, service_env
    from bench.servers import uvicorn

    bench = from_environment(True)
    env = service_env(bench)
    os.environ.update(env)
    scripts: dict[str, tuple[list[str], str]] = {}
    for name in args.scripts.split(","):
        path = WORK / "wrk" / f"{name}.lua"
        if not path.exists():
            sys.exit(f"floor: {path} is missing: run `make bench QUICK=1 ONLY=queries` first")
        scripts[name] = _requests(path)
    statements = asyncio.run(_capture(scripts))
    store = WORK / "floor" / "statements.pickle"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(pickle.dumps(statements))
    floor_env = {"FLOOR_STATEMENTS": str(store), "FLOOR_URL": bench.reader(), "CANVASS_ENV": "development"}
    python = ROOT / ".venv/bin/python"
    clients = [int(c) for c in args.clients.split(",")]
    with ExitStack() as stack:
        servers = {
            "floor (bare ASGI)": stack.enter_context(
                uvicorn("floor-bare", python, "bench.floor_app:bare", floor_env, "/readyz")
            ),
            "floor (minimal FastAPI)": stack.enter_context(
                uvicorn("floor-minimal", python, "bench.floor_app:minimal", floor_env, "/readyz")
            ),
            "geo_query": stack.enter_context(geo_query_server(bench)),
        }
        for name, (paths, _) in scripts.items():
            script = WORK / "wrk" / f"{name}.lua"
            requests = [statements[p] for p in paths]
            for c in clients:
                figures: dict[str, list[tuple[float, float, float, float]]] = {}
                for i in range(args.rounds):
                    order = ["raw", *servers]
                    for label in order if i % 2 == 0 else order[::-1]:
                        figures.setdefault(label, []).append(
                            _raw_cell(bench, raw, requests, c, args.seconds)
                            if label == "raw"
                            else _http_cell(servers[label], script, c, args.seconds, bench)
                        )
                say(
                    f"{name}, {c} client{'s' if c > 1 else ''} ({args.rounds} rounds of {args.seconds} s, medians):"
                )
                for label, rows in figures.items():
                    rps, proc, db, idle = (statistics.median(col) for col in zip(*rows, strict=True))
                    say(
                        f"  {label:24s} {rps:7,.0f} req/s   CPU µs per search: process {proc:4,.0f}, database"
                        f" {db:5,.0f}   cores idle {idle:4.0%}"
                    )


def _http_cell(
    srv: Any, script: Path, clients: int, seconds: int, bench: Any
) -> tuple[float, float, float, float]:
    """One wrk cell against a server (after a second's warm-up): requests/s, CPU µs per search of its process and
    of the database, the share of the cores left idle."""
    from bench.contention import cpu_jiffies, cpu_per_request
    from bench.http import Cell, run_wrk

    run_wrk(srv.url, script, clients, 1, Cell("warm", "", script.stem, clients))
    pids, dbs = {srv.process.pid}, (bench.db_name,)
    cpu0, idle0 = cpu_jiffies(pids, dbs), _idle()
    c = run_wrk(srv.url, script, clients, seconds, Cell(srv.name, "", script.stem, clients))
    cpu1, idle1 = cpu_jiffies(pids, dbs), _idle()
    if c.note:
        sys.exit(f"floor: {srv.name}: {c.note}")
    proc, db = cpu_per_request(cpu0, cpu1, c.requests) or (0.0, 0.0)
    return c.rps, proc, db, (idle1[1] - idle0[1]) / max(1, idle1[0] - idle0[0])


def _raw_cell(
    bench: Any, raw: Any, requests: list[Any], clients: int, seconds: int
) -> tuple[float, float, float, float]:
    from bench.contention import cpu_jiffies, cpu_per_request
    from bench.http import Cell

    async def cell() -> tuple[float, float, float, float]:
        pool = await raw.connect(bench.reader(), clients)
        try:
            await raw.run_cell(pool, requests, clients, 1, 10**9, Cell("raw", "", "", clients))
            cpu0, idle0 = cpu_jiffies(set(), (bench.db_name,)), _idle()
            c = await raw.run_cell(pool, requests, clients, seconds, 10**9, Cell("raw", "", "", clients))
            cpu1, idle1 = cpu_jiffies(set(), (bench.db_name,)), _idle()
        finally:
            await pool.close()
        proc, db = cpu_per_request(cpu0, cpu1, c.requests) or (0.0, 0.0)
        return c.rps, proc, db, (idle1[1] - idle0[1]) / max(1, idle1[0] - idle0[0])

    return asyncio.run(cell())


if __name__ == "__main__":
    main()
