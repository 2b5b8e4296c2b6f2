"""The audit trail at scale: the append rate before and after the trail was partitioned by month, and an
auditor's place search (`near` + 500 m, the statement GET /v1/audit/records runs) over a trail of
AUDIT_BENCH_RECORDS records (default 10 million; QUICK=1: 200,000), p50 and p95.

Two databases: `canvass_bench_audit_plain`, migrated to the revision before the partitioning (one table), and
`canvass_bench_audit`, migrated to head, with its 85 monthly partitions of 7 years (the default retention) made
first, so an append is routed among as many partitions as a full trail has. The append rate is measured through
`audit.append_event`, one record per transaction as a service appends, and all in one transaction (the database's
own work per record), the oversight index's trigger on in both, alternately on each database, the best of two
kept: every append rewrites the chain's one head row, and a run after another finds it (and its page) full of the
versions the first left, so a fixed order would measure the order.

The search's trail is loaded into the partitioned database in chunks of 500,000 records written by the owner
straight into `audit.events`, spread over the 7 years (hashes are placeholders: the search reads no hash, and
chaining 10 million records one by one would take the bench hours), which fires the same trigger every append
fires, so the place index is the one the services get. Records: 70 % points, 30 % small polygons, spread over the
conterminous United States around 2,000 centres, in 4 agencies.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from typing import Any

import asyncpg
import numpy as np

from bench.settings import ROOT, SEED, Bench, say

DB = "canvass_bench_audit"
PLAIN_DB = "canvass_bench_audit_plain"
RETENTION = "7 years"
SPAN_S = 7 * 365 * 86_400  # the loaded records' instants: from now back over 7 years
CHUNK = 500_000
APPENDS = 2000
SEARCHES = 200

_APPEND = "SELECT audit.append_event($1, $2, 'investigator', $3, 'search.radius', NULL, NULL, 'C-1', $4, '{}'::jsonb)"

# Loaded by the owner, chunk by chunk: the trigger indexes each chunk's places as for any append.
_LOAD = """
INSERT INTO audit.events (seq, id, at, service, actor, actor_role, agency, action, area, details, prev_hash, hash)
SELECT $1::bigint + g, gen_random_uuid(), now() - make_interval(secs => ($4::bigint - $1::bigint - g) * $5::float8),
       'geo_query',
       'det-' || (g % 500), 'investigator', 'agency-' || (g % 4), 'search.radius',
       CASE WHEN g % 10 < 7 THEN ST_SetSRID(ST_MakePoint(x, y), 4326)
            ELSE ST_MakeEnvelope(x, y, x + 0.003, y + 0.002, 4326) END,
       '{}'::jsonb, '\\x00'::bytea, '\\x00'::bytea
FROM unnest($2::float8[], $3::float8[]) WITH ORDINALITY AS t(x, y, g)
"""


def _points(rng: np.random.Generator, centres: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    pick = centres[rng.integers(0, len(centres), n)]
    return pick[:, 0] + rng.normal(0, 0.05, n), pick[:, 1] + rng.normal(0, 0.04, n)


async def _append_rate(conn: asyncpg.Connection, label: str) -> tuple[float, float]:
    """Records per second: one per transaction (each commit waits for the WAL flush), and all in one transaction
    (the database's own work per record, which the index adds to)."""
    area = '{"type":"Point","coordinates":[-87.9,43.04]}'
    rates = []
    for one_transaction in (False, True):
        started = time.perf_counter()
        tx = conn.transaction()
        if one_transaction:
            await tx.start()
        for i in range(APPENDS):
            await conn.fetchval(_APPEND, "bench", f"det-{i % 50}", "agency-0", area)
        if one_transaction:
            await tx.commit()
        rates.append(APPENDS / (time.perf_counter() - started))
    say(f"audit: append_event {label}: {rates[0]:,.0f}/s one per transaction, {rates[1]:,.0f}/s in one")
    return rates[0], rates[1]


def before_partitioning() -> str:
    """The revision the partitioning migration follows."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    for rev in script.walk_revisions():
        if rev.path.endswith("_audit_partitions.py"):
            assert isinstance(rev.down_revision, str)
            return rev.down_revision
    raise RuntimeError("no migration partitions the audit trail")


def _numbered(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    names: list[str] = []

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r"(?<![:\w]):([a-z_]+)", one, sql), [params[n] for n in names]


async def run(bench: Bench) -> list[str]:
    from bench import data
    from services.registry_api.oversight import TrailFilter, parse_place, search_sql

    total = int(os.environ.get("AUDIT_BENCH_RECORDS", "200000" if bench.quick else "10000000"))
    await data.create_migrated(bench, PLAIN_DB, before_partitioning())
    await data.create_migrated(bench, DB)
    plain = await asyncpg.connect(bench.owner(PLAIN_DB))
    conn = await asyncpg.connect(bench.owner(DB))
    lines: list[str] = []
    try:
        await conn.execute(
            "SELECT audit.create_partition(m)"
            " FROM generate_series(now() - $1::text::interval, now(), interval '1 month') AS m",
            RETENTION,
        )
        partitions = await conn.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit.events'::regclass"
        )
        best: dict[bool, list[float]] = {False: [0.0, 0.0], True: [0.0, 0.0]}
        for partitioned in (False, True, True, False):
            c = conn if partitioned else plain
            await c.execute("VACUUM audit.chain_head")
            rates = await _append_rate(
                c, f"partitioned ({partitions} months)" if partitioned else "before partitioning (one table)"
            )
            best[partitioned] = [max(a, b) for a, b in zip(best[partitioned], rates, strict=True)]
        before, after = best[False], best[True]
        for i, how in enumerate(("one per transaction", "all in one transaction")):
            lines.append(
                f"| audit append_event, records/s, 1 client, {how} | {before[i]:,.0f} before partitioning"
                f" (one table) | {after[i]:,.0f} partitioned by month ({partitions} partitions) |"
            )
        await plain.close()
        await data.drop_database(bench, PLAIN_DB)

        rng = np.random.default_rng([SEED, 17])
        centres = np.column_stack([rng.uniform(-122, -72, 2000), rng.uniform(27, 47, 2000)])
        base = int(await conn.fetchval("SELECT max(seq) FROM audit.events"))
        loaded = 0
        started = time.perf_counter()
        while loaded < total:
            n = min(CHUNK, total - loaded)
            xs, ys = _points(rng, centres, n)
            await conn.execute(_LOAD, base + loaded, xs.tolist(), ys.tolist(), base + total, SPAN_S / total)
            loaded += n
            say(f"audit: {loaded:,} records loaded ({time.perf_counter() - started:.0f} s)")
        # Keep the head in step, so the chain's next append follows the loaded records.
        await conn.execute("UPDATE audit.chain_head SET seq = (SELECT max(seq) FROM audit.events)")
        await conn.execute("VACUUM ANALYZE audit.events")
        await conn.execute("VACUUM ANALYZE audit.event_places")

        qx, qy = _points(rng, centres, SEARCHES)
        times: list[float] = []
        found = 0
        for i in range(SEARCHES):
            f = TrailFilter(
                agency=f"agency-{i % 4}", place=parse_place(f"{qx[i]},{qy[i]}", 500.0, None, None)
            )
            sql, args = _numbered(search_sql(f, 100, None), f.params)
            t = time.perf_counter()
            rows = await conn.fetch(sql, *args)
            times.append((time.perf_counter() - t) * 1000)
            found += len(rows)
        times.sort()
        p50 = statistics.median(times)
        p95 = times[int(len(times) * 0.95) - 1]
        say(f"audit: place search (near, 500 m) over {total:,} records: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        lines.append(
            f"| audit place search, near + 500 m, {total:,} records ({found / SEARCHES:.1f} rows each) |"
            f" p50 {p50:.1f} ms | p95 {p95:.1f} ms |"
        )
    finally:
        await conn.close()
        if not plain.is_closed():
            await plain.close()
    return lines
