"""`make profile`: where one geo_query search spends its CPU. geo_query runs under py-spy (as the bench runs it: one
worker, WARNING logs, the QUICK data set) while wrk sends one shape's requests at 16 clients; py-spy writes a
flame graph (SVG) and the same samples as collapsed stacks, which are sorted here into the parts of a search
(HTTP, token, parameters, scoping and SQL, the database driver, the audit record, the response, logging, the
event loop) and printed as a table of µs per search, the process's CPU per search (from /proc) shared out by
the samples' proportions.

With `--cpu`, geo_query runs under yappi's CPU clock instead (bench/yappi_app.py, the `bench` dependency group):
each function's own CPU time, the parts of a search summed over the functions whose file (or name) is theirs, and
the µs shared out by those proportions of the process's CPU per search measured first without the profiler. py-spy
samples wall time: a process preempted right after it wrote to a socket (the backend it woke runs on its core) is
sampled where it stopped, so the driver's and the HTTP layer's shares include waiting; yappi charges only CPU, but
its own cost per call weighs on code made of many small Python calls. The two tables bracket where the CPU goes.

Needs the QUICK data set and wrk scripts of a previous `make bench QUICK=1 ONLY=queries` (they are reused).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.settings import ROOT, WORK, from_environment, say

# (part, where its frames live). The first ANYWHERE parts claim a sample with a frame anywhere in its stack (so a
# driver call made by the audit writer counts as the audit record); the others by the innermost frame that
# matches one of them (the middleware, at the root of every request, gets only its own lines).
ANYWHERE = 3
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging", ("logging/__init__.py", "format (shared/logging.py")),
    ("token verification", ("shared/auth.py", "jwt/")),
    (
        "audit record (building, queueing, its statement)",
        ("geo_query/audit_log.py", "shared/audit.py", "audit_event ("),
    ),
    (
        "response assembly (body, links, headers)",
        ("geo_query/features.py", "_body (", "now_rfc3339", "responses.py", "orjson"),
    ),
    (
        "scoping and SQL building",
        tuple(
            f"{fn} (services/geo_query/service.py"
            for fn in (
                "__init__",
                "__post_init__",
                "within",
                "in_bbox",
                "_filters",
                "rows_sql",
                "audited_rows_sql",
                "_feature",
                "_properties",
                "_order_by",
                "expand_boxes",
                "p",
                "boxes",
            )
        ),
    ),
    ("database driver (asyncpg: send, wait, decode rows)", ("asyncpg/", "shared/db.py")),
    (
        "parameter parsing and dependencies",
        (
            "_solve (services/geo_query/routing.py",
            "geo_query/dependencies.py",
            "pydantic",
            "shared/timestamps.py",
        ),
    ),
    ("the endpoint's own lines", ("geo_query/cameras.py", "geo_query/service.py")),
    (
        "middleware (request context, HTTP policy, body limit, CORS)",
        ("shared/app.py", "shared/logging.py", "shared/http.py", "shared/cors.py", "starlette/middleware"),
    ),
    (
        "routing (Starlette/FastAPI: matching, request/response objects)",
        ("starlette/", "fastapi/", "geo_query/routing.py"),
    ),
    ("HTTP (uvicorn: parsing, writing)", ("uvicorn/", "httptools")),
    ("event loop (uvloop / asyncio scheduling)", ("asyncio/", "uvloop")),
)


# --cpu: (part, patterns of "file:function" of the function itself), the first that matches claims its own time.
CPU_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging", ("logging/__init__.py", ":AccessLog.", "JsonFormatter")),
    ("token verification", ("shared/auth.py", "jwt/", "fastapi/security/", "hashlib")),
    ("audit record (building, queueing)", ("geo_query/audit_log.py", "shared/audit.py")),
    (
        "response assembly (body, links, headers)",
        (
            "geo_query/features.py",
            ":_body",
            ":_page",
            "now_rfc3339",
            "starlette/responses.py",
            "shared/geojson.py",
            "orjson",
        ),
    ),
    (
        "parameter parsing and dependencies",
        (
            "geo_query/routing.py",
            "geo_query/dependencies.py",
            ":request_rules",
            ":policy_of",
            "pydantic",
            "fastapi/_compat",
            "fastapi/dependencies",
            "urllib/parse.py",
            "shared/timestamps.py",
            "starlette/datastructures.py:QueryParams",
        ),
    ),
    (
        "scoping and SQL building",
        (":Search.", ":Sql.", "geo_query/service.py:expand_boxes", "geo_query/service.py:sees"),
    ),
    ("database driver (asyncpg: send, receive, decode rows; the pool)", ("asyncpg/", "shared/db.py")),
    ("the endpoint's own lines", ("geo_query/cameras.py", "geo_query/service.py")),
    (
        "middleware (request context, HTTP policy, body limit, CORS, gzip, FastAPI's own)",
        (
            "shared/app.py",
            "shared/logging.py",
            "shared/http.py",
            "shared/cors.py",
            "shared/compression.py",
            "starlette/middleware/",
            "fastapi/middleware/",
            "fastapi/_body_limit.py",
            "fastapi/telemetry/",
            "starlette/_exception_handler.py",
            "opentelemetry/",
            "uuid.py",
        ),
    ),
    ("HTTP (uvicorn: parsing, writing)", ("uvicorn/", "httptools", "shared/server.py")),
    (
        "routing (Starlette/FastAPI: matching, request and response objects)",
        ("starlette/", "fastapi/", "abc.py", "_collections_abc"),
    ),
    ("event loop (uvloop / asyncio scheduling)", ("asyncio/", "uvloop", "contextlib.py", "_weakrefset.py")),
)


def categorise_cpu(pstat: Path) -> Counter[str]:
    """The functions' own CPU time (yappi, pstats format) summed per part of a search, in µs."""
    import pstats

    parts: Counter[str] = Counter()
    for (file, _, function), (_, _, own, _, _) in pstats.Stats(str(pstat)).stats.items():  # type: ignore[attr-defined]
        where = f"{file}:{function}"
        part = next(
            (name for name, pats in CPU_PARTS if any(p in where for p in pats)),
            "other (the interpreter, frames without a file)",
        )
        parts[part] += own * 1e6
    return parts


def categorise(collapsed: Path) -> Counter[str]:
    parts: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        part = next(
            (name for name, pats in PARTS[:ANYWHERE] if any(p in f for f in frames for p in pats)), None
        )
        if part is None:
            part = next(
                (
                    name
                    for f in reversed(frames)
                    for name, pats in PARTS[ANYWHERE:]
                    if any(p in f for p in pats)
                ),
                "other (the interpreter, frames without a file)",
            )
        parts[part] += int(count)
    return parts


def _jiffies(pid: int) -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(entry.name) == pid or int(fields[1]) == pid:
                total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError):
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--script", default="geo-regions-nearest", help="the wrk script (under .local/bench/wrk)"
    )
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--svg", default=str(ROOT / "docs" / "geo-query-search-profile.svg"))
    parser.add_argument("--table-only", action="store_true", help="sort the samples of the last run again")
    parser.add_argument(
        "--cpu", action="store_true", help="yappi's CPU clock instead of py-spy (no flame graph)"
    )
    args = parser.parse_args()
    from bench.http import Cell, run_wrk
    from bench.run import service_env
    from bench.servers import uvicorn

    bench = from_environment(True)
    env = service_env(bench)
    os.environ.update(env)
    script = WORK / "wrk" / f"{args.script}.lua"
    if not script.exists():
        sys.exit(f"profile: {script} is missing: run `make bench QUICK=1 ONLY=queries` first")
    collapsed = WORK / "profile.txt"
    if args.table_only:
        _table(args.script, args.clients, collapsed, float((WORK / "profile-cpu.txt").read_text()))
        return
    if args.cpu:
        _cpu_profile(env, script, args.script, args.clients, args.seconds)
        return
    py_spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or "py-spy"
    with uvicorn(
        "geo_query-profile", ROOT / ".venv/bin/python", "services.geo_query.main:app", env, "/readyz"
    ) as srv:
        pid = srv.process.pid
        run_wrk(srv.url, script, args.clients, 2, Cell("geo_query", "", "", args.clients))  # warm
        for fmt, out in (("flamegraph", args.svg), ("raw", str(collapsed))):
            spy = subprocess.Popen(  # noqa: S603 - fixed argv: py-spy on our own server
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(args.seconds),
                    "--rate",
                    "250",
                    "--format",
                    fmt,
                    "--output",
                    out,
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(0.5)
            cpu0 = _jiffies(pid)
            cell = run_wrk(
                srv.url, script, args.clients, args.seconds - 1, Cell("geo_query", "", "", args.clients)
            )
            cpu_us = (_jiffies(pid) - cpu0) * 1e6 / os.sysconf("SC_CLK_TCK") / max(cell.requests, 1)
            _, err = spy.communicate(timeout=args.seconds + 60)
            if spy.returncode != 0:
                sys.exit(f"profile: py-spy failed: {err.decode()[-500:]}")
            if fmt == "flamegraph":  # its title is py-spy's command line, paths of this machine included
                svg = re.sub(
                    r'(<text id="title"[^>]*>)[^<]*(</text>)',
                    lambda m: f"{m[1]}geo_query: one search ({args.script}, {args.clients} clients){m[2]}",
                    Path(out).read_text(),
                )
                Path(out).write_text(svg)
            say(
                f"{fmt}: {cell.rps:,.0f} req/s, geo_query's process {cpu_us:,.0f} µs of CPU per search; {out}"
            )
    (WORK / "profile-cpu.txt").write_text(f"{cpu_us:.1f}")
    _table(args.script, args.clients, collapsed, cpu_us)


def _cpu_profile(env: dict[str, str], script: Path, name: str, clients: int, seconds: int) -> None:
    from bench.http import Cell, run_wrk
    from bench.servers import uvicorn

    pstat = WORK / "profile-cpu.pstat"
    pstat.unlink(missing_ok=True)
    env = {**env, "BENCH_YAPPI_OUT": str(pstat)}
    with uvicorn(
        "geo_query-profile-cpu", ROOT / ".venv/bin/python", "bench.yappi_app:app", env, "/readyz"
    ) as srv:
        pid = srv.process.pid
        run_wrk(srv.url, script, clients, 2, Cell("geo_query", "", "", clients))  # warm
        cpu0 = _jiffies(pid)  # the process's CPU per search without the profiler: what the shares divide
        cell = run_wrk(srv.url, script, clients, seconds, Cell("geo_query", "", "", clients))
        cpu_us = (_jiffies(pid) - cpu0) * 1e6 / os.sysconf("SC_CLK_TCK") / max(cell.requests, 1)
        say(
            f"without the profiler: {cell.rps:,.0f} req/s, geo_query's process {cpu_us:,.0f} µs of CPU per search"
        )
        os.kill(pid, signal.SIGUSR1)
        profiled = run_wrk(srv.url, script, clients, seconds, Cell("geo_query", "", "", clients))
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 60
        while not pstat.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        size = -1
        while pstat.exists() and pstat.stat().st_size != size and time.monotonic() < deadline:
            size = pstat.stat().st_size
            time.sleep(0.2)  # written once; wait until it stops growing
    parts = categorise_cpu(pstat)
    total = sum(parts.values())
    print(
        f"\n{name}, {clients} clients: geo_query's process {cpu_us:,.0f} µs of CPU per search (yappi: {total / max(profiled.requests, 1):,.0f} µs per search under the profiler)\n"
    )
    print("| part of a search | share of CPU | µs per search |")
    print("|---|--:|--:|")
    for part, own in parts.most_common():
        print(f"| {part} | {own / total:.0%} | {cpu_us * own / total:,.0f} |")


def _table(script: str, clients: int, collapsed: Path, cpu_us: float) -> None:
    parts = categorise(collapsed)
    total = sum(parts.values())
    print(f"\n{script}, {clients} clients: geo_query's process {cpu_us:,.0f} µs of CPU per search\n")
    print("| part of a search | share of samples | µs per search |")
    print("|---|--:|--:|")
    for name, n in parts.most_common():
        print(f"| {name} | {n / total:.0%} | {cpu_us * n / total:,.0f} |")


if __name__ == "__main__":
    main()
