"""`python -m bench.ab --before <commit>`: geo_query's cost per search before and after a change, measured back to
back in the same conditions. The code of `--before` (a commit of this repository) is exported to a scratch
directory and served beside the working tree's, both by the same interpreter on the QUICK bench database; wrk
loads them in turns (A, B, B, A, ...) with one shape's requests, and each turn reports requests/s and the CPU per
request of the server's process and of the PostgreSQL backends serving the bench database. On a machine others
share, the turns' spread says how far to trust a difference.

Needs the QUICK data set and wrk scripts of a previous `make bench QUICK=1 ONLY=queries` (they are reused).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.settings import ROOT, WORK, from_environment, say


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="the commit to compare the working tree with")
    parser.add_argument("--scripts", default="geo-regions-nearest,geo-metro-bbox100")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--current-schema",
        action="store_true",
        help="serve --before on the current schema: its migrations folder is the working tree's, so a commit from"
        " before the newest migrations passes its readiness check (its SQL must still run on that schema)",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the working tree's server")
    parser.add_argument("--log-level", default="WARNING", help="CANVASS_LOG_LEVEL of both servers")
    parser.add_argument(
        "--before-log-level", help="CANVASS_LOG_LEVEL of the --before server, if not --log-level"
    )
    args = parser.parse_args()

    from bench.contention import cpu_jiffies, cpu_per_request
    from bench.http import Cell, run_wrk
    from bench.run import service_env
    from bench.servers import uvicorn

    bench = from_environment(True)
    bench.log_level = args.log_level
    env = service_env(bench)
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix="canvass-before-") as tmp, ExitStack() as stack:
        git = shutil.which("git") or "/usr/bin/git"
        archive = subprocess.run(  # noqa: S603 - fixed argv: this repository's own commit
            [git, "-C", str(ROOT), "archive", args.before], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        if args.current_schema:
            shutil.rmtree(Path(tmp) / "migrations")
            shutil.copytree(ROOT / "migrations", Path(tmp) / "migrations")
        python = ROOT / ".venv/bin/python"
        before = stack.enter_context(
            uvicorn(
                "geo_query-before",
                python,
                "services.geo_query.main:app",
                {**env, "CANVASS_LOG_LEVEL": args.before_log_level or args.log_level},
                "/readyz",
                cwd=Path(tmp),
            )
        )
        after = stack.enter_context(
            uvicorn(
                "geo_query-after",
                python,
                "services.geo_query.main:app",
                env,
                "/readyz",
                workers=args.workers,
            )
        )
        for name in args.scripts.split(","):
            script = WORK / "wrk" / f"{name}.lua"
            if not script.exists():
                sys.exit(f"ab: {script} is missing: run `make bench QUICK=1 ONLY=queries` first")
            figures: dict[str, list[tuple[float, float, float]]] = {"before": [], "after": []}
            for i in range(args.rounds):
                # Which goes first alternates: on a machine whose load drifts, the second of a pair is not always
                # the same one.
                pair = (("before", before), ("after", after))
                for label, srv in pair if i % 2 == 0 else pair[::-1]:
                    run_wrk(srv.url, script, args.clients, 1, Cell(label, "", name, args.clients))  # warm
                    pids, dbs = {srv.process.pid}, (bench.db_name,)
                    cpu0 = cpu_jiffies(pids, dbs)
                    cell = run_wrk(
                        srv.url, script, args.clients, args.seconds, Cell(label, "", name, args.clients)
                    )
                    cpu = cpu_per_request(cpu0, cpu_jiffies(pids, dbs), cell.requests) or (0.0, 0.0)
                    figures[label].append((cell.rps, *cpu))
            for label, rows in figures.items():
                rps = [r[0] for r in rows]
                proc = [r[1] for r in rows]
                db = [r[2] for r in rows]
                say(
                    f"{name} c={args.clients} {label:6s}: {statistics.median(rps):7,.0f} req/s"
                    f" ({min(rps):,.0f}–{max(rps):,.0f}); CPU µs per search: process"
                    f" {statistics.median(proc):5,.0f} ({min(proc):,.0f}–{max(proc):,.0f}), database"
                    f" {statistics.median(db):5,.0f} ({min(db):,.0f}–{max(db):,.0f})"
                )


if __name__ == "__main__":
    main()
