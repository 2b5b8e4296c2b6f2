"""The route search under load: `POST /v1/cameras/route` against one geo_query process on a seeded table.

A throw-away database (from the tests' migrated template) gets one agency and `--cameras` cameras spread evenly
over a 10 km square (a dense city: 2,000 per km² at the default), a fifth of them aimed; geo_query is started with
one worker process; wrk asks one route (a 3 km path of 5 vertices across the square, `buffer_m` 100, timed by a
start and a speed, the default page) with 1 client and then with 16, each for `--seconds`. Printed per client
count: requests per second, p50/p99 latency, and the CPU milliseconds per request the geo_query process and the
database's backends used (user + system, from /proc), which hold on a shared machine where the rate does not.

    .venv/bin/python -m bench.route_load [--cameras 200000] [--seconds 15] [--facing]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx

from shared.auth import mint_token
from tests.support import Db, create_test_database, drop_database, run_sql, start_server, with_database

WEST, SOUTH = -87.70, 41.85
SIDE_DEG = 0.09  # about 10 km of latitude; 7.5 km of longitude here
PATH = [[-87.69, 41.87], [-87.675, 41.878], [-87.66, 41.884], [-87.648, 41.893], [-87.64, 41.90]]


def _seed(db: Db, cameras: int) -> str:
    slug = "bench-route"
    agency = db.fetchval(
        "INSERT INTO registry.agencies (slug, name, jurisdiction, max_search_radius_m)"
        " VALUES ($1, 'Bench PD', ST_Multi(ST_MakeEnvelope($2, $3, $4, $5, 4326)), 2000) RETURNING id",
        slug,
        WEST - 0.01,
        SOUTH - 0.01,
        WEST + SIDE_DEG + 0.01,
        SOUTH + SIDE_DEG + 0.01,
    )
    # One registration per 20 cameras (the contact columns are not read by an answer without a case number).
    regs = max(1, cameras // 20)
    db.execute(
        "INSERT INTO registry.registrations (id, agency_id, status, owner_kind, location, contact_name_enc,"
        " contact_email_enc, contact_phone_enc, contact_email_index, key_id, credential_hash,"
        " preferred_contact_method)"
        " SELECT gen_random_uuid(), $1, 'active', 'residential', ST_SetSRID(ST_MakePoint($2, $3), 4326),"
        " '\\x00', '\\x00', '\\x00', decode(md5(g::text), 'hex'), 'k', decode(md5('c' || g), 'hex'), 'email'"
        " FROM generate_series(1, $4) g",
        agency,
        WEST,
        SOUTH,
        regs,
    )
    db.execute(
        "INSERT INTO registry.cameras (id, registration_id, geom, owner_kind, visible_to, retention_days,"
        " direction_deg, fov_deg, range_m)"
        " SELECT gen_random_uuid(), r.id, ST_SetSRID(ST_MakePoint($2 + random() * $3, $4 + random() * $3), 4326),"
        " 'residential', ARRAY[$1::uuid], 30,"
        " CASE WHEN g % 5 = 0 THEN (random() * 359)::int END, CASE WHEN g % 5 = 0 THEN 90 END,"
        " CASE WHEN g % 5 = 0 THEN 40 END"
        " FROM generate_series(1, $5) g"
        " JOIN (SELECT id, row_number() OVER () AS n FROM registry.registrations WHERE agency_id = $1) r"
        "   ON r.n = 1 + g % $6",
        agency,
        WEST,
        SIDE_DEG,
        SOUTH,
        cameras,
        regs,
    )
    db.execute("ANALYZE registry.cameras")
    return slug


def _cpu_ms(pid: int) -> float:
    """User + system CPU of a process and its children so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def _processes(root: int) -> list[int]:
    out = [root]
    children = Path(f"/proc/{root}/task/{root}/children")
    if children.exists():
        for child in children.read_text().split():
            out.extend(_processes(int(child)))
    return out


# The PostgreSQL backends of the bench database (geo_query's pools, its audit's writer), whose CPU a request costs
# besides geo_query's own.
BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {auth}
done = function(summary, latency, requests)
  io.write(string.format('{{"requests":%d,"seconds":%f,"p50":%f,"p99":%f,"errors":%d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cameras", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--facing", action="store_true")
    args = parser.parse_args()
    base = os.environ["MIGRATIONS_DATABASE_URL"]
    name = create_test_database(base)
    keys = name + "_keys"
    run_sql(with_database(base, "postgres"), f'CREATE DATABASE "{keys}"')
    server = None
    try:
        db = Db(with_database(base, name))
        slug = _seed(db, args.cameras)
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
        env.update(
            CANVASS_ENV="test",
            CANVASS_WORKERS="1",
            CANVASS_LOG_LEVEL="WARNING",
            CANVASS_KEYSTORE_URL=with_database(base, keys),
            DATABASE_URL=with_database(os.environ["DATABASE_URL"], name),
            GEO_QUERY_DATABASE_URL=with_database(os.environ["GEO_QUERY_DATABASE_URL"], name),
        )
        server = start_server("geo_query", env)
        body = {
            "path": {"type": "LineString", "coordinates": PATH},
            "buffer_m": 100,
            "start": "2026-11-20T22:15:00Z",
            "speed": "driving",
        }
        os.environ["CANVASS_ENV"] = "test"
        token = "Bearer " + mint_token("investigator", slug, sub="bench-" + uuid.uuid4().hex[:6])
        url = server.url + "/v1/cameras/route" + ("?facing=true" if args.facing else "")
        first = httpx.post(url, json=body, headers={"Authorization": token}, timeout=30)
        assert first.status_code == 200, first.text
        print(
            f"{args.cameras} cameras; the route matches {first.json()['numberMatched']} cameras,"
            f" {first.json()['numberReturned']} returned"
        )
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(LUA.format(body=json.dumps(json.dumps(body)), auth=json.dumps(token)))
        for clients in (1, 16):
            pids = _processes(server.process.pid)
            backends = {r[0]: _cpu_ms(r[0]) for r in db.fetch(BACKENDS)}
            before = sum(_cpu_ms(p) for p in pids)
            run = subprocess.run(  # noqa: S603 - fixed argv, against the server this script started
                [
                    shutil.which("wrk") or "/usr/bin/wrk",
                    "-t",
                    str(min(clients, 2)),
                    "-c",
                    str(clients),
                    "-d",
                    f"{args.seconds}s",
                    "--timeout",
                    "30s",
                    "-s",
                    lua.name,
                    url,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            used = sum(_cpu_ms(p) for p in pids) - before
            # Connections opened during the run count from their start.
            used_pg = sum(_cpu_ms(p) - backends.get(p, 0.0) for p in (r[0] for r in db.fetch(BACKENDS)))
            out = json.loads(run.stdout.strip().splitlines()[-1])
            print(
                f"{clients:>2} clients: {out['requests'] / out['seconds']:.1f} req/s, p50 {out['p50']:.1f} ms,"
                f" p99 {out['p99']:.1f} ms, CPU per request: geo_query {used / max(out['requests'], 1):.1f} ms,"
                f" PostgreSQL {used_pg / max(out['requests'], 1):.1f} ms; errors {out['errors']}"
            )
        Path(lua.name).unlink()
        db.close()
    finally:
        if server is not None:
            server.stop()
        drop_database(base, name)
        drop_database(base, keys)


if __name__ == "__main__":
    main()
