"""The audit trail at scale: the append rate with and without the oversight index (the trigger that
fills `audit.event_places` and `audit.event_refs`), and an auditor's place search (`near` + 500 m, the statement
GET /v1/audit/records runs) over a trail of AUDIT_BENCH_RECORDS records (default 10 million), p50 and p95.

Its own database (`canvass_bench_audit`), migrated to head. The append rate is measured through
`audit.append_event`, one record per transaction, as a service appends. The search's trail is loaded in chunks of
500,000 records written by the owner straight into `audit.events` (hashes are placeholders: the search reads no
hash, and chaining 10 million records one by one would take the bench hours), which fires the same trigger every
append fires, so the place index is the one the services get. Records: 70 % points, 30 % small polygons, spread
over the conterminous United States around 2,000 centres, in 4 agencies.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from typing import Any

import asyncpg
import numpy as np

from bench.settings import SEED, Bench, say

DB = "canvass_bench_audit"
CHUNK = 500_000
APPENDS = 2000
SEARCHES = 200

_APPEND = "SELECT audit.append_event($1, $2, 'investigator', $3, 'search.radius', NULL, NULL, 'C-1', $4, '{}'::jsonb)"

# Loaded by the owner, chunk by chunk: the trigger indexes each chunk's places as for any append.
_LOAD = """
INSERT INTO audit.events (seq, id, at, service, actor, actor_role, agency, action, area, details, prev_hash, hash)
SELECT $1::bigint + g, gen_random_uuid(), now() - make_interval(secs => ($1::bigint + g) / 10.0), 'geo_query',
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

    total = int(os.environ.get("AUDIT_BENCH_RECORDS", "10000000"))
    await data.create_migrated(bench, DB)
    conn = await asyncpg.connect(bench.owner(DB))
    lines: list[str] = []
    try:
        # Appends through the chain, the oversight index's trigger off and on, alternately, twice each, the best
        # of each kept: every append rewrites the chain's one head row, and a run after another finds it (and its
        # page) full of the versions the first left, so a fixed order would measure the order.
        best: dict[bool, list[float]] = {False: [0.0, 0.0], True: [0.0, 0.0]}
        for indexed in (False, True, True, False):
            state = "ENABLE" if indexed else "DISABLE"
            await conn.execute(f"ALTER TABLE audit.events {state} TRIGGER events_indexed")
            await conn.execute("VACUUM audit.chain_head")
            rates = await _append_rate(conn, "with the oversight index" if indexed else "without it")
            best[indexed] = [max(a, b) for a, b in zip(best[indexed], rates, strict=True)]
        await conn.execute("ALTER TABLE audit.events ENABLE TRIGGER events_indexed")
        without, with_index = best[False], best[True]
        for i, how in enumerate(("one per transaction", "all in one transaction")):
            lines.append(
                f"| audit append_event, records/s, 1 client, {how} | {without[i]:,.0f} without the oversight"
                f" index | {with_index[i]:,.0f} with it |"
            )

        rng = np.random.default_rng([SEED, 17])
        centres = np.column_stack([rng.uniform(-122, -72, 2000), rng.uniform(27, 47, 2000)])
        base = int(await conn.fetchval("SELECT max(seq) FROM audit.events"))
        loaded = 0
        started = time.perf_counter()
        while loaded < total:
            n = min(CHUNK, total - loaded)
            xs, ys = _points(rng, centres, n)
            await conn.execute(_LOAD, base + loaded, xs.tolist(), ys.tolist())
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
    return lines
