"""The one table of a bench run, the targets of docs/performance.md checked against it, and the machine it ran on —
printed, and written as Markdown (a full run to `docs/bench-results.md`, a QUICK run beside its data)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.http import Cell
from bench.imports import ImportResult
from bench.queries import PLAN
from bench.registrations import RegistrationResult


@dataclass
class Results:
    quick: bool
    cells: dict[tuple[str, str, str, int], Cell] = field(default_factory=dict)
    returned: dict[tuple[str, str], float] = field(default_factory=dict)  # (layout, shape) -> mean features
    sql_origin: dict[tuple[str, str], str] = field(default_factory=dict)
    unavailable: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (system, layout, shape)
    imports: list[ImportResult] = field(default_factory=list)
    import_unavailable: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    server_memory: dict[str, float] = field(default_factory=dict)
    registrations: RegistrationResult | None = None
    tile_lines: list[str] = field(default_factory=list)  # the vector tiles' figures (bench/tiles.py)

    def add(self, cell: Cell) -> None:
        self.cells[(cell.system, cell.layout, cell.shape, cell.clients)] = cell

    def get(self, system: str, layout: str, shape: str, clients: int) -> Cell | None:
        c = self.cells.get((system, layout, shape, clients))
        return c if c is not None and c.requests else None


def _fmt_rps(c: Cell | None) -> str:
    return f"{c.rps:,.0f}" if c else "—"


def _fmt_lat(c: Cell | None) -> str:
    return f"{c.p50:.1f} / {c.p95:.1f} / {c.p99:.1f}" if c else "—"


def _ratio(a: Cell | None, b: Cell | None, pct: bool) -> str:
    if not a or not b or not b.rps:
        return "—"
    r = a.rps / b.rps
    return f"{r:.0%}" if pct else f"{r:.1f} ×"


def _fmt_cpu(c: Cell | None) -> str:
    return f"{c.cpu_us[0]:,.0f} / {c.cpu_us[1]:,.0f}" if c and c.cpu_us else "—"


def query_table(res: Results) -> list[str]:
    from bench.queries import SHAPES

    titles = {s.key: s.title for s in SHAPES}
    out = [
        "| layout | query | clients | returned | raw req/s | raw p50 / p95 / p99 ms | geo_query req/s"
        " | geo_query p50 / p95 / p99 ms | tipg req/s | tipg p50 / p95 / p99 ms | pygeoapi req/s"
        " | pygeoapi p50 / p95 / p99 ms | geo_query ÷ raw | geo_query ÷ tipg | geo_query ÷ pygeoapi"
        " | CPU µs per request: raw driver / its database; geo_query / its database | other CPU raw / geo / tipg |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for layout, shape in PLAN:
        for clients in (1, 16):
            raw = res.get("raw", layout.key, shape.key, clients)
            geo = res.get("geo_query", layout.key, shape.key, clients)
            tipg = res.get("tipg", layout.key, shape.key, clients) if shape.vs_tipg else None
            pga = res.get("pygeoapi", layout.key, shape.key, clients) if shape.vs_tipg else None
            n = res.returned.get((layout.key, shape.key))
            out.append(
                f"| {layout.title} | {titles[shape.key]} | {clients} | {f'{n:,.0f}' if n is not None else '—'}"
                f" | {_fmt_rps(raw)} | {_fmt_lat(raw)} | {_fmt_rps(geo)} | {_fmt_lat(geo)}"
                f" | {_fmt_rps(tipg) if shape.vs_tipg else 'n/a'} | {_fmt_lat(tipg) if shape.vs_tipg else 'n/a'}"
                f" | {_fmt_rps(pga) if shape.vs_tipg else 'n/a'} | {_fmt_lat(pga) if shape.vs_tipg else 'n/a'}"
                f" | {_ratio(geo, raw, True)} | {_ratio(geo, tipg, False) if shape.vs_tipg else 'n/a'}"
                f" | {_ratio(geo, pga, False) if shape.vs_tipg else 'n/a'}"
                f" | {_fmt_cpu(raw)}; {_fmt_cpu(geo)}"
                f" | {' / '.join(f'{c.other_cpu:.0%}' if c else '—' for c in (raw, geo, tipg))} |"
            )
    return out


def import_table(res: Results) -> list[str]:
    out = ["| features | loader | seconds | features/s | peak memory | note |", "|--:|---|--:|--:|--:|---|"]
    for r in res.imports:
        ok = r.seconds > 0
        out.append(
            f"| {r.features:,} | {r.tool} | {f'{r.seconds:.1f}' if ok else '—'}"
            f" | {f'{r.per_second:,.0f}' if ok else '—'}"
            f" | {f'{r.peak_mb:,.0f} MB' if r.peak_mb is not None else '—'} | {r.note} |"
        )
    if res.import_unavailable:
        out.append(f"| — | Canvass registry_api | — | — | — | {res.import_unavailable} |")
    return out


def registration_table(res: Results) -> list[str]:
    out = [
        "| clients | registrations/s | p50 / p95 / p99 ms | answers | CPU ms per registration: registry_api / PostgreSQL"
        " | other CPU | note |",
        "|--:|--:|--:|--:|--:|--:|---|",
    ]
    reg = res.registrations
    if reg is None:
        return [*out, "| — | — | — | — | — | — | not measured in this run |"]
    for clients in (1, 16):
        c = reg.cells.get(clients)
        cpu = reg.cpu_ms.get(clients)
        if c is None or not c.requests:
            out.append(f"| {clients} | — | — | — | — | — | {(c.note if c else '') or reg.note} |")
            continue
        out.append(
            f"| {clients} | {c.rps:,.0f} | {_fmt_lat(c)} | {c.requests:,}"
            f" | {f'{cpu[0]:.2f} / {cpu[1]:.2f}' if cpu else '—'} | {c.other_cpu:.0%} | {c.note} |"
        )
    return out


def targets(res: Results) -> list[str]:
    """The targets of docs/performance.md (read by bench/targets.py), each met / missed / not measured yet, from
    this run's cells."""
    from bench.targets import target

    lines: list[str] = []

    def verdict(ok: bool | None) -> str:
        return "not measured yet" if ok is None else ("**met**" if ok else "**missed**")

    vs_raw = {16: target("geo_vs_raw_16"), 1: target("geo_vs_raw_1")}
    vs_tipg, cad = target("geo_vs_tipg_16"), target("cad_p99_ms")
    for layout, shape in PLAN:
        if shape.key not in ("nearest", "bbox100"):
            continue
        for clients in (16, 1):
            t = vs_raw[clients]
            geo = res.get("geo_query", layout.key, shape.key, clients)
            raw = res.get("raw", layout.key, shape.key, clients)
            ok = None if not (geo and raw and raw.rps) else t.met(geo.rps / raw.rps)
            lines.append(
                f"- {shape.title}, {layout.title}, {clients} client{'s' if clients > 1 else ''}: geo_query"
                f" {t.threshold} of raw — {_ratio(geo, raw, True)} → {verdict(ok)}"
            )
        if shape.vs_tipg:
            geo = res.get("geo_query", layout.key, shape.key, 16)
            tipg = res.get("tipg", layout.key, shape.key, 16)
            ok = None if not (geo and tipg and tipg.rps) else vs_tipg.met(geo.rps / tipg.rps)
            lines.append(
                f"- {shape.title}, {layout.title}, 16 clients: geo_query {vs_tipg.threshold} tipg —"
                f" {_ratio(geo, tipg, False)} → {verdict(ok)}"
            )
    for layout, shape in PLAN:
        if not shape.cad:
            continue
        geo = res.get("geo_query", layout.key, shape.key, 16)
        ok = None if not geo else cad.met(geo.p99)
        lines.append(
            f"- CAD path, {shape.title}, {layout.title}, 16 clients: p99 {cad.threshold} —"
            f" {f'{geo.p99:.1f} ms' if geo else '—'} → {verdict(ok)}"
        )
    speed_t, memory_t = target("import_features_per_s"), target("import_peak_mb")
    big = max((r.features for r in res.imports), default=0)
    canvass = next(
        (r for r in res.imports if r.tool.startswith("Canvass") and r.features == big and r.seconds), None
    )
    ogr = next(
        (r for r in res.imports if r.tool.startswith("GDAL") and r.features == big and r.seconds), None
    )
    if canvass is None:
        lines.append(
            f"- bulk import {speed_t.threshold}, faster than ogr2ogr, {memory_t.threshold} → {verdict(None)}"
        )
    else:
        ok = speed_t.met(canvass.per_second) and (ogr is None or canvass.per_second > ogr.per_second)
        mem_ok = canvass.peak_mb is not None and memory_t.met(canvass.peak_mb)
        speed = f"{canvass.per_second:,.0f} features/s"
        if ogr:
            speed += f" (ogr2ogr {ogr.per_second:,.0f}/s)"
        lines.append(
            f"- bulk import of {big:,}: {speed} ({speed_t.threshold}) → {verdict(ok)};"
            f" peak memory {canvass.peak_mb or 0:,.0f} MB ({memory_t.threshold}) → {verdict(mem_ok)}"
        )
    reg_t = target("registrations_per_s")
    reg = res.registrations.cells.get(16) if res.registrations else None
    if reg is None or not reg.requests:
        lines.append(f"- registration writes {reg_t.threshold} at 16 clients → {verdict(None)}")
    else:
        # A cell with a note (an error, or rows that do not match the answers) does not meet the target.
        ok = reg_t.met(reg.rps) and not reg.note
        lines.append(
            f"- registration writes at 16 clients: {reg.rps:,.0f} registrations/s ({reg_t.threshold})"
            f" → {verdict(ok)}"
        )
    return lines


def machine() -> dict[str, Any]:
    mem_kb = 0
    cpu = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    osname = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cpu": f"{os.cpu_count()} cores ({cpu})",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "os": osname,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": os.getloadavg(),
    }


# What profiling geo_query found (issue 8, item 4). Measured with py-spy and cProfile (CPU-time clock) on geo_query
# under wrk at 16 clients, and as CPU per request of each process from /proc (robust to the other sessions' load,
# which makes requests/s on this machine move by ±30 % from one minute to the next).
FINDINGS = [
    "## Where geo_query's time went (profiled) and what was changed",
    "",
    "CPU per request at 16 clients (QUICK data set, bbox-100 and nearest-K; geo_query's process / its PostgreSQL"
    " backends): before **1.0–1.2 ms / 0.8–1.9 ms**, after **0.50–0.55 ms / 0.65–1.8 ms** (the database's share"
    " is the query itself plus 0.15 ms for the audit record). Raw asyncpg spends about 0.5 ms of the whole machine"
    " per bbox-100 query, so geo_query's own Python, HTTP and audit cost remain the gap to the raw limit.",
    "",
    "- **FastAPI's dependency solver** was the largest share of geo_query's own CPU (about 40 % under cProfile):"
    " a search runs a dozen small dependencies over about 15 query parameters, and FastAPI re-inspects every"
    " dependency and parameter on each request. The camera searches now use `LeanRoute`"
    " (`services/geo_query/routing.py`): the same dependency tree, compiled once per route, each parameter"
    " validated by FastAPI's own field (identical errors; a test compares both handlers on good, bad and"
    " unauthenticated requests). Python CPU per search in process: 640–760 µs → 370–430 µs.",
    "- **asyncpg's reset on release** (a `RESET ALL`-style query, one more round trip per query) is skipped for"
    " geo_query's pools: they only use transaction-scoped settings (`SET LOCAL`), and asyncpg still rolls back a"
    " transaction left open.",
    "- **JWT verification** on every request (about 5 % of samples): verified principals are remembered by the"
    " token's SHA-256 (bounded LRU of 4,096, never past `exp`, at most 60 s, only for the same settings).",
    "- **Page links** re-parsed the request URL twice per page; they are built from the parsed query now.",
    "- **Access log**: one JSON line per request at INFO seemed to cost 0–40 µs; measured A/B in the next round"
    " it cost 58 µs per search, and was made free (see the next section). The bench runs geo_query at WARNING.",
    "- **Audit group commit** amortises: at 16 clients a batch carries 6 records on average (1 to 20+), one"
    " statement and one WAL flush each; the record is still committed before the answer leaves.",
    "- **Workers**: 1 vs 2 uvicorn workers on these 2 cores gave the same throughput within noise, with 10–20 %"
    " more CPU per request for 2 (each has its own pools and audit batches), because the machine, not the"
    " process, is the limit. geo_query runs with 1 worker under `make run`, in docker-compose and here.",
    "- **Where the rest goes**: geo_query's PostgreSQL work per search equals raw's for the same SQL (measured"
    " side by side: nearest 0.69 vs 0.63–0.67 ms, bbox-100 0.50 vs 0.49 ms, CAD radius 1.0 vs 1.0 ms). On top"
    " of it each search costs about 0.5 ms of geo_query's process (about 0.35–0.4 ms in the application, the"
    " rest uvicorn's HTTP), 0.14 ms of PostgreSQL for the audit record (the hash chain, in batches) plus 0.05 ms"
    " of Python to queue it, and wrk's share. With 2 cores saturated at 16 clients, requests/s is the inverse of"
    " that sum: raw spends 0.55–0.75 ms of the machine per query, geo_query that plus about 0.75 ms, so geo_query ÷"
    " raw settles at 40–50 %. Reaching 60 % would need geo_query's"
    " whole HTTP + Python + audit cost under about 0.3 ms; a FastAPI endpoint that does nothing costs about"
    " 0.14 ms here (docs/performance.md).",
    "- **Tried and left out**: bypassing FastAPI's router for the three searches (cProfile put 16–29 % of the"
    " application's time there, but measured without the profiler it saved 30 µs of 390, 8 %, for a dependency"
    " on FastAPI's private route contexts); a read pool of 16 instead of 10 connections (within noise); 2"
    " workers (above); the audit commit without waiting for the WAL flush (no change in p99 either, and it would"
    " weaken the audit guarantee). py-spy attributes 30–40 % of samples to the socket `write()` that sends a query"
    " to PostgreSQL: that is geo_query preempted by the backend it woke, not CPU it uses (system time is 0.07 ms"
    " per request).",
    "- **Garbage collector** (second round): the cyclic collector's full collections walked every module, route"
    " and model of the process under load while every request in flight waited: p99 at 16 clients 54–180 ms"
    " where p95 was 20–40 ms. Every service now freezes what exists at start-up out of the collector and collects"
    " the young generation every 20,000 allocations (`shared/app.py`): many-metros bbox-100 p99 54–81 → 19–23 ms"
    " (the same cell before and after; the machine was not equally quiet), registry_api's registrations 84–92 →"
    " 22–25 ms (A/B back to back, quiet machine).",
    "- **Cold pools**: the first 16-client cell opened 10–15 database connections during the measurement (each"
    " with its type introspection) and showed p99 150–180 ms where the next cells showed 20–30 ms. Every HTTP cell"
    " now runs 1 s at its own concurrency before it is measured, as a service under steady load is (the raw"
    " driver's pools were always opened in full). A service that sat idle meets a burst with the connections"
    " its pools keep: 4 each by default (`CANVASS_POOL_MIN_SIZE`; they kept 1 before).",
    "- **A page's Features were joined in SQL** with `string_agg` over two window functions, which sorted and"
    " copied every Feature again: for a 100-Feature bbox page the database spends 250 µs less per query when"
    " geo_query joins the rows itself, which costs geo_query about 110 µs more (CAD radius: −60 / +75 µs;"
    " measured as CPU of the backend and of the client, 200 queries × 4). The machine gains, the database (the"
    " part that does not scale out) gains more; the ratio to raw does not, since raw runs the same SQL. (Tried"
    " again in the next round without the second sort, and left out again.)",
    "- **The audit record** went through `audit.append_event` once per record even in a batch: lock of the"
    " chain's head, insert and head update per record, about 100–140 µs of PostgreSQL each. `audit.append_events`"
    " (migration 0006) chains a whole batch under one lock with one INSERT: 149 → 91 µs per record at a batch of"
    " 6 (the average at 16 clients), 104–129 → 45 µs at 20 (a loop of single statements, synchronous_commit off"
    " to count CPU only).",
    "- **The agency's jurisdiction was decompressed for every candidate camera**: each search keeps only cameras"
    " inside the caller's jurisdiction, read by a sub-select, and PostGIS received the stored value, which for a"
    " boundary of a few hundred vertices is compressed (TOAST), and decompressed it again for each row. Read once"
    " as a copy (`ST_SetSRID` copies), the check costs a fifth of what it did: for the many-metros agencies"
    " (250-vertex boundaries) the CAD radius query went from 1.35 to 1.0 ms of the database, and at 16 clients"
    " 946 → 1,187 req/s with p99 30.6 → 22.5 ms (A/B); real city boundaries have thousands of vertices. The"
    " import's jurisdiction check had the same flaw (per point of a chunk) and the same fix. Raw runs geo_query's"
    " SQL, so it gained as much: this changed the ratios little and the CAD latency a lot.",
    "- **Still missed, and why**: 10 × tipg on bbox-100 would be 1,500 req/s in the dense metro, where raw asyncpg"
    " itself does about 1,500 with no HTTP, no token and no audit record: geo_query would have to cost the"
    " machine no more than the SQL alone. The ratios to raw (nearest K about 50 %, many-metros bbox-100 about"
    " 36 %) are the same fixed cost seen against cheaper queries: about 0.45–0.5 ms of geo_query's Python and"
    " HTTP per search (a FastAPI endpoint that does nothing costs 0.11 ms of its process here) and 0.1 ms of"
    " PostgreSQL for the audit record, against queries that cost the database 0.3–0.7 ms; 60 % would need that"
    " fixed cost under 0.2–0.3 ms.",
    "- **Whole-machine accounting** (many metros, 16 clients, CPU of every process from /proc per request, and"
    " `perf record -a`): nearest K costs raw 682 µs of the machine (its driver 75, PostgreSQL 593) and geo_query"
    " 1,394–1,441 µs (its process 504–523, the backends running its two statements 732–745, the audit record's"
    " backend 103, wrk the rest). The two statements execute in the same time for both (pg_stat_statements: 366 +"
    " 250 µs vs 356 + 242 µs); the backends' extra 140–150 µs is kernel time (wake-ups and context switches"
    " between three busy processes on two cores, which raw's single driver process does not cause). Without the"
    " audit record (a scratch build, never shipped) nearest K would reach 1,581 req/s (54–56 % of raw) and"
    " many-metros bbox-100 2,002 req/s (44 %): even a free audit record would not reach 60 %.",
    "- **Also tried and left out**: a Rust HTTP server (granian 2.8.7, ASGI, uvloop) in place of uvicorn: nearest"
    " K 1,381 vs 1,402 req/s, bbox-100 1,765 vs 1,782 (no gain: the HTTP layer is not where the time goes);"
    " skipping the per-camera jurisdiction test when one test per query shows the boundary holds the whole"
    " search. With no jurisdiction test at all (the bound of what it could save) a query costs, one client, 200"
    " queries × 3: dense-metro bbox-100 1.35–1.38 → 1.06–1.16 ms, many-metros bbox-100 0.49 → 0.51 ms, CAD"
    " radius 1.03 → 0.99 ms; with the per-query check in front, 1.22–1.23, 0.55 and 1.03 ms. Since the boundary"
    " is read once, the per-camera test is cheap where boundaries are realistic.",
    "",
]

# What the import's time is made of (issue 6). Measured at 100,000 features with every statement's duration logged
# (log_min_duration_statement = 0 on the bench's own database), py-spy on registry_api, and each statement
# re-run with parts of the schema removed in a rolled-back transaction.
# The third round on geo_query's CPU per search: a search and its audit record in one statement, tokens
# remembered until they expire, and what else was measured and left out. Measured with bench/ab.py and
# bench/profile.py on a machine shared with other sessions (load average 5-15 throughout).
ROUND_3 = [
    "## geo_query at the database's pace: the third round (2026-12-06)",
    "",
    "Measured as the second round was (`python -m bench.ab --before <commit>`, QUICK data set, 4 rounds"
    " of 3 s, alternating order; medians, min–max in brackets), on a machine five other sessions loaded"
    " (load average 5–15 during every measurement): requests/s moved by up to ±40 % between rounds, so"
    " the figures that decide are **CPU per search** (geo_query's process, and the PostgreSQL backends"
    " serving the bench database, from /proc), which depend much less on the other sessions' load than"
    " throughput does. `make bench QUICK=1` already prints that split for every cell (`CPU µs/req"
    " process / database`) and the results table has its column: a change that adds cost per request"
    " shows there.",
    "",
    "### Where one search spends geo_query's CPU, before and after",
    "",
    "`python -m bench.profile --clients 1` (nearest K, many metros; py-spy at 250 Hz; µs = the"
    " process's CPU per search shared out by the samples' proportions), the code before this round"
    " (26aed3e) and after, one after the other at load average 13–14. Flame graphs:"
    " [before](geo-query-search-profile-c1-before.svg), [after](geo-query-search-profile-c1.svg). At"
    " one client the event loop's share is mostly waking up for each event (a socket read, a task"
    " switch); every round trip saved takes some of it away.",
    "",
    "| part of a search | before µs (share) | after µs (share) |",
    "|---|--:|--:|",
    "| event loop (uvloop / asyncio scheduling) | 464 (54 %) | 330 (47 %) |",
    "| database driver (asyncpg: send, wait, decode rows) | 114 (13 %) | 90 (13 %) |",
    "| routing (Starlette/FastAPI: matching, request and response objects) | 89 (10 %) | 94 (13 %) |",
    "| audit record (building, queueing, its statement) | 59 (7 %) | 4 (1 %) |",
    "| HTTP (uvicorn: parsing, writing) | 31 (4 %) | 53 (7 %) |",
    "| parameter parsing and dependencies | 28 (3 %) | 30 (4 %) |",
    "| response assembly (body, links, headers) | 20 (2 %) | 30 (4 %) |",
    "| middleware (request context, HTTP policy, body limit, CORS) | 19 (2 %) | 32 (5 %) |",
    "| token verification | 13 (1 %) | 13 (2 %) |",
    "| the endpoint's own lines | 10 (1 %) | 23 (3 %) |",
    "| scoping and SQL building | 3 (0 %) | 4 (1 %) |",
    "| other (the interpreter, frames without a file) | 9 (1 %) | 2 (0 %) |",
    "| total: geo_query's process per search | 859 | 704 |",
    "",
    "The audit record's 59 µs (a future, the group-commit writer's task, a second pool connection and"
    " its round trip) went, and with them a third of the event loop's wake-ups for that search; the"
    " parts that grew by a few µs did not change and are sampling noise at 15 s of one client.",
    "",
    "### Each idea, and what it gave",
    "",
    "- **One round trip per search: the page and its audit record in one statement** (kept, for a"
    " search alone). `Search.audited_rows_sql`: the page (with the K-nearest bound's CTEs where there"
    " is one) is a materialised CTE, then `audit.append_event` appends the record with the page's"
    " count, and the rows come back only once it is appended (a condition checked once, before the page"
    " is read out); the statement commits before the answer leaves. Every guarantee of the chain holds:"
    " the same function, lock and hash as every other writer, the record committed before the answer,"
    " one record per search, a record the database refuses fails its own statement and so its own"
    " search only (tests/geo_query/test_audit_batches.py). It runs on the audit pool (the services'"
    " role on the primary), so only where both pools reach the same database; reads pointed at a"
    " replica keep the read pool. At 1 client: nearest K (many metros) 745 (716–781) → 635 (600–644) µs"
    " of geo_query's process per search (−15 %), dense-metro bbox-100 904 (836–978) → 759 (712–812)"
    " (−16 %); the database 946 → 924 and 1,922 → 1,855 µs (the same work, one statement fewer);"
    " requests/s 370 → 416 and 220 → 204 (spread 112–351).",
    "- **The same statement for every search, under load** (tried, left out): at 16 clients each"
    " statement holds the chain's head lock from its append through its own commit's WAL flush, so the"
    " searches append one after another, one flush each, where the group commit shares one lock and one"
    " flush among about six. Nearest K (many metros) 807 → 339 req/s, geo_query's process 445 → 696 µs"
    " per search, the database 731 → 1,463 µs; dense-metro bbox-100 384 → 267 req/s, 559 → 725 and"
    " 1,642 → 2,259 µs. (A loop of bare appends on this machine: 371/s on one connection, 999/s on 16:"
    " the chain's ceiling with a flush per record.) So a search takes the one statement only when"
    " nothing else is being appended (`AuditLog.alone`: no batch queued or being written, no other"
    " search's own statement), and the group commit otherwise. At 16 clients that is the group commit"
    " nearly always: nearest K (many metros) 463 (438–479) → 461 (440–467) µs, dense-metro bbox-100 603"
    " (569–622) → 628 (593–642) µs, the same within the spread.",
    "- **Verified tokens remembered until they expire** (kept): a principal is served from memory until"
    " the token's `exp` (it was at most 60 s), keyed by the token's SHA-256, bounded to 4,096, per"
    " process, only to the same settings. A token verified with a JWKS key is served from memory only"
    " while its `kid` is in the key set the process holds: once the process reads a JWKS without that"
    " key (it keeps one for 300 s, as before), every token the key signed is verified again and"
    " refused, remembered or new; a JWKS that cannot be read makes them verify again and fail closed"
    " (tests/geo_query/test_token_cache.py). That also fixed a weaker bound than the one documented:"
    " PyJWT's `cache_keys` memoised each signing key for the life of the process, so a withdrawn key"
    " went on verifying new tokens; signing keys are now looked up in the key set. In `shared/auth.py`,"
    " so it applies to every service. Gain per search: none measurable in the bench, whose tokens were"
    " already remembered (13 µs, 1–2 % of samples, is the SHA-256 of the token, the look-up and"
    " FastAPI's security dependency).",
    "- **The response taken from the database's text as it is** (left out again): asyncpg decodes each"
    " row's Feature text once (in C) and the body is encoded once. Returned as bytes (`convert_to(…,"
    " 'UTF8')`, joined as bytes, never decoded), a 100-Feature page costs the client 93–104 µs per"
    " fetch and join against 102–108 as text (asyncpg, a loop of 300 × 4): about 5 µs, inside the"
    " spread, for a change to every path that assembles a page (contacts, streams, the OGC items). The"
    " page joined by PostgreSQL was measured in the second round: the database paid more than this"
    " process saved.",
    "- **Per-request allocations and dependency work**: the audit path's (a future, a shielded wait,"
    " the writer's task and batch lists) are gone for a search alone (59 → 4 µs above); the lean"
    " route's plan (28–30 µs), routing and middleware (110–125 µs together) are the machinery every"
    " request crosses and were left as they are.",
    "- **Access logging** (kept as the second round made it): INFO, the default level, against WARNING,"
    " the same code side by side: nearest K (many metros), 16 clients, 537 (518–550) µs of geo_query's"
    " process per search at WARNING and 520 (517–606) at INFO; dense-metro bbox-100 738 (702–841) and"
    " 722 (702–767): no measurable cost.",
    "- **CANVASS_WORKERS=2** (left at one): the same code with one worker (before) and two (after),"
    " side by side, 16 clients: nearest K (many metros) 686 (544–815) → 486 (353–768) req/s,"
    " geo_query's processes 457 → 624 µs per search (+37 %), the database 738 → 914; dense-metro"
    " bbox-100 235 → 265 req/s (inside the spread), 662 → 796 µs (+20 %), the database 1,890 → 1,972."
    " Two cores that PostgreSQL and wrk also need have no idle core for a second process; it brings its"
    " own event loop, pools and smaller audit batches.",
    "",
    "### What is left",
    "",
    "At 16 clients, where requests/s is decided, a search still makes two round trips (its page on the"
    " read pool, and its share of a group commit), and costs geo_query's process about 460 µs (nearest"
    " K) to 630 µs (a 100-Feature page) on this loaded machine; the issue's half is not reached there."
    " What would take the second round trip away without a flush per search: a search whose page"
    " statement also carries the records other searches queued (the group commit riding on a page's"
    " statement, one lock and one flush for all of them), with a failed statement's carried records"
    " appended again one by one as a refused batch is now; not built in this round. The rest is"
    " uvicorn, Starlette and asyncpg per request (above), which a bare ASGI handler for the three"
    " searches could shrink (second round: about 100 µs).",
    "",
]

# The second round on geo_query's CPU per search (docs/performance.md's targets): each idea tried, what it gave,
# and what is left. Measured with bench/ab.py and bench/profile.py on a machine shared with other sessions.
ROUND = [
    "## geo_query at the database's pace: the second round (2026-12-05)",
    "",
    "The machine was shared with five other sessions running tests (load average 2–12), so requests/s moved by"
    " ±30 % from one minute to the next and the same cell gave different ratios twice in a row. Every change was"
    " therefore measured with `python -m bench.ab --before <commit>`: the code before and after served side by"
    " side by the same interpreter on the QUICK data set, wrk alternating between the two (4–5 rounds of 3 s at"
    " 16 clients), and the CPU per search of each server's process and of the PostgreSQL backends serving it read"
    " from /proc. Figures are medians (min–max of the rounds); a difference inside the spread is no difference.",
    "",
    "### Where one search spends geo_query's CPU",
    "",
    "`python -m bench.profile` (py-spy at 250 Hz on geo_query under wrk, nearest K, many metros, 16 clients;"
    " each sample given to the part of a search its stack shows; µs = the process's CPU per search shared out"
    " by the samples). Flame graphs: [before](geo-query-search-profile-before.svg) (load average 1.7) and"
    " [after](geo-query-search-profile.svg) (load average 14: on a busier machine every request costs more"
    " CPU, the event loop waking more often for fewer events, so the two columns compare shares, not µs; the"
    " A/Bs below measure the changes).",
    "",
    "| part of a search | before µs (share) | after µs (share) |",
    "|---|--:|--:|",
    "| database driver (asyncpg: send, wait, decode rows) | 163 (32 %) | 173 (25 %) |",
    "| event loop (uvloop / asyncio scheduling) | 75 (15 %) | 167 (24 %) |",
    "| HTTP (uvicorn: parsing, writing) | 64 (13 %) | 95 (14 %) |",
    "| routing (Starlette/FastAPI: matching, request and response objects) | 54 (11 %) | 70 (10 %) |",
    "| audit record (building, queueing, its statement) | 52 (10 %) | 55 (8 %) |",
    "| middleware (request context, HTTP policy, body limit, CORS) | 25 (5 %) | 22 (3 %) |",
    "| parameter parsing and dependencies (the lean route's plan) | 23 (5 %) | 52 (8 %) |",
    "| the endpoint's own lines | 21 (4 %) | 21 (3 %) |",
    "| response assembly (body, links, headers) | 13 (2 %) | 13 (2 %) |",
    "| scoping and SQL building | 6 (1 %) | 5 (1 %) |",
    "| token verification | 4 (1 %) | 11 (2 %) |",
    "| logging (the bench runs at WARNING) | 1 (0 %) | 1 (0 %) |",
    "| total: geo_query's process per search | 503 | 688 |",
    "",
    "The time inside the driver is mostly the `write()` that sends a statement and wakes the backend (the process"
    " is preempted there), so it follows the number of round trips. Canvass's own code (parameters, scoping, the"
    " endpoint, the response, the audit record, the token) is about 110 µs of the 500; the rest is the machinery"
    " every request crosses: uvicorn, Starlette's routing and middleware, asyncpg's protocol and uvloop.",
    "",
    "### Each idea, and what it gave",
    "",
    "- **One round trip per search** (kept, nearest K): the K-nearest bound, its index box (computed in SQL as"
    " `expand_boxes` computes it in Python; across the antimeridian or at a pole the box is the band of"
    " latitudes, still one index scan with the jurisdiction's) and the page are one statement of materialised"
    " CTEs. Process 529 → 471 µs per search (many metros) and 501 → 437 (dense metro), −11 to −13 %; database"
    " 779 → 763 and 756 → 742 µs (the same work, one statement fewer); the same answers as the two statements"
    " for all 100 bench queries. (This A/B also carried the lean route's and the token cache's changes of this"
    " round, which change no work per request.)",
    "- **The audit record in the same statement** (a data-modifying CTE; left out, not built): `audit.append_events`"
    " takes the row lock of the chain's head, and in one statement with the search that lock is held until the"
    " search's transaction commits, so every search of the service would queue behind every other's query; today"
    " the lock is held for the append alone, and group commit shares one lock and one WAL flush among the records"
    " of concurrent searches (6 on average at 16 clients). One WAL flush per search is what capped the service at"
    " a few hundred searches/s before group commit. The searches also read through a read-only role on a"
    " read-only (replica-ready) pool, while the chain is written on the primary by the services' role.",
    "- **Verified tokens cached by their hash** (kept): they were already cached per token (1 % of samples, 4–7 µs"
    " a search); now the key is the token's SHA-256, so the process holds no bearer token. Caching until `exp`"
    " instead of at most 60 s was left out: a key withdrawn from the issuer's JWKS would keep admitting the tokens"
    " already seen for their whole life (up to 24 h) instead of 60 s, for a gain inside the spread. A"
    " configuration without the key (a new Settings) refuses them at once (tests/geo_query/test_lean_route.py).",
    "- **The response taken from the database's text** (tried, left out): a page joined by PostgreSQL"
    " (`string_agg` over the rows in the order the ordered, limited statement gives them: no second sort, unlike"
    " the window functions of the first round) and returned as one row with its count and cursor keys. The A/B of"
    " this change alone, 16 clients: geo_query's process −80 µs per search on a 100-Feature page, −34 on 46"
    " Features, −12 on nearest (20); the database's +26, +45 and +29 µs. In two A/Bs of the whole round, where"
    " the bbox-100 path differed from before by little else, the database's share rose by 84 and 167 µs on 46"
    " Features and 144 on 100. The database, the part that does not scale out, paid for what this process"
    " saved: the page is joined in Python, as before. Returning the page"
    " as bytes (`convert_to`, never decoded to text and encoded again) made no measurable difference either"
    " (client CPU 242–273 vs 253–276 µs per 100-Feature query in a loop of 300).",
    "- **Per-request allocations and dependency work**: the plan of the lean route is 23 µs (5 %) of a search;"
    " the audit record's parameters 10 µs, the timestamp 2.6 µs, each under 2 % of samples: left as they are. The"
    " largest per-request allocation was the access line's (next item).",
    "- **Access logging** (kept): at INFO, the default level, each access line built a LogRecord, looked up its"
    " caller, took the handler's lock and ran the formatter: 58 µs more per nearest search than at WARNING"
    " (502 → 560) and 27 µs per bbox-100. Built directly (the same JSON line) and written once per turn of the"
    " event loop: INFO 467 vs WARNING 463 µs per search, the same within the spread; against the old INFO"
    " line, 548 → 497 (nearest) and 508 → 485 (bbox-100).",
    "- **CANVASS_WORKERS=2** (two uvicorn workers, `make bench CANVASS_WORKERS=2` or `bench.ab --workers 2`;"
    " left at one): nearest 569 → 461 req/s with process CPU 585 → 732 µs per search (+25 %) and database"
    " 928 → 1,031; bbox-100 762 → 550 req/s, 550 → 699 µs. On two cores that PostgreSQL and the load generator"
    " also need, a second process brings its own event loop, pools and smaller audit batches, and no idle core.",
    "- **FastAPI's private internals** (the lean route): the solver's public alternative is FastAPI's own"
    " handler, measured in the first round at 640–760 µs of Python per search against the lean plan's 370–430;"
    " a tipg-style single dependency parsing a model would keep FastAPI's solver and change the contract's"
    " parameters, and was not built. The lean route keeps its speed with no private import: the one private"
    " name it reads (how an included route receives the app's dependencies) is checked at import, FastAPI is"
    " pinned to 0.165.x, a route the plan cannot serve stops the service at start-up, and the comparison test"
    " proves which handler answered.",
    "- **More peers**: pygeoapi 0.21 (PyPI, Starlette under uvicorn, one worker) with its PostgreSQL provider on"
    " the same table now has its own columns beside tipg on bbox-100, installed from the project's `bench`"
    " dependency group (pygeoapi and psycopg2-binary; it installed cleanly, rasterio and Flask with it). In a"
    " QUICK run on the loaded machine it answered 10–40 req/s where geo_query answered 68–609 and tipg 37–200:"
    " 7–15 × slower than geo_query, with 28 ms of its process's CPU per request. No other OGC API – Features"
    " server was tried in this round.",
    "",
    "### The whole round, before and after (A/B of the final code, 16 clients, 4 rounds, alternating order)",
    "",
    "| query | req/s before → after | geo_query's process, µs per search | its PostgreSQL backends, µs per search |",
    "|---|--:|--:|--:|",
    "| nearest K, many metros | 423 → 508 | 626 (586–672) → 545 (505–625) | 932 → 828 |",
    "| nearest K, dense metro | 515 → 552 | 597 (572–633) → 532 (510–900) | 914 → 869 |",
    "| bbox-100, many metros | 599 → 549 | 570 (564–648) → 601 (575–672) | 669 → 684 |",
    "| bbox-100, dense metro | 273 → 253 | 778 (691–911) → 822 (715–885) | 2,282 → 2,202 |",
    "",
    "Measured at load average 13–17 (`python -m bench.ab --before ee3f950 --rounds 4`). Nearest K, the search this"
    " round changed most, costs geo_query's process 11–13 % less and the database 5–11 % less (one statement"
    " instead of two). The bbox-100 path does the same work as before (the access line is off at WARNING, as the"
    " bench runs it; the token cache's hash is a microsecond): its differences are inside the spread of the"
    " rounds. At one client (4 rounds, load 11–14) nearest went 1,144 → 1,038 µs of process CPU per search (−9 %)"
    " and bbox-100 1,140 → 1,121; at INFO, the default level, every search also saves the 50–58 µs the access"
    " line cost. Far from the half the issue asked for.",
    "",
    "### What is left, and why the targets stay out of reach here",
    "",
    "After this round a search costs geo_query's process about 450 µs at 16 clients on a quiet machine (nearest"
    " K) and up to 800 under load (a 100-Feature page), of which Canvass's own code is about a fifth; the rest is uvicorn, Starlette, asyncpg and the event loop, per request and per"
    " round trip. A search still makes two round trips (the search, and the audit record on its own connection"
    " through the group-commit writer), each a send, a wake-up of the backend and of this process. What would"
    " halve it: answering the three searches from a bare ASGI handler (no Starlette routing, middleware stack"
    " or Request objects: about 100 µs by the profile) and handing the audit record to the writer without a"
    " task switch per batch; both are larger changes than this round, and neither touches the database's share,"
    " which at 16 clients is what bounds requests/s on two cores next to it. 60 % of raw needs geo_query's whole"
    " HTTP + Python + audit cost under about 0.3 ms of the machine per search.",
    "",
]


IMPORT_FINDINGS = [
    "## Where the import's time goes",
    "",
    "Per feature (a registration with one camera and an owner's email), in CPU: **the database about 59 µs** —"
    " INSERT into cameras 14 (GiST 4, foreign key 3), registrations 11, registration_shares 10 (7 of them in its"
    " two foreign-key checks), the staging COPY 9, import_credentials 3.5, the jurisdiction and duplicate checks"
    " 3.5 — and **registry_api's Python about 37 µs** (reading and validating as a single registration is"
    " validated 20, sealing the contact, the credential and its delivery copy, the email's blind index and COPY"
    " encoding 17). On two cores the sum, about 96 µs, bounds the import near 21,000 features/s however the work"
    " overlaps; 50,000/s would need under 40 µs of CPU per feature in all. ogr2ogr writes one table with no key,"
    " no foreign key, no check, no encryption and no credential, and builds its one index at the end.",
    "",
    "- **Changed**: each staged chunk is merged on the writer's connection while the next chunk is read,"
    " validated and staged on another (before, staging and merging alternated): 14,600 → 17,700 features/s at"
    " 100,000 and 11,600 → 15,200–17,100 at 1,000,000, peak memory unchanged (168 MB).",
    "- **Tried and left out**: inserting each chunk in key order (registrations by id, cameras by id): 16,949 vs"
    " 17,107 features/s at 1,000,000, no difference.",
    "- **What the targets would take**: fewer writes per feature (a share row for the owner's own agency, which"
    " every registration has; foreign keys checked once per chunk rather than per row, which PostgreSQL does not"
    " offer) and the validation and sealing spread over more cores than this machine has. None of these was done:"
    " each would weaken what the registry guarantees for a speed only a first load needs.",
    "",
]


# Printed output of partial runs kept in the results file (the cost curve `SCALE=N`, which a full run does not
# measure, and the tiles and route runs the capacity plan cites), as markdown beside this module.
SAVED_RUNS = Path(__file__).resolve().parent / "saved" / "cost-curve-and-tiles.md"


def render(res: Results) -> str:
    m = res.machine
    d = res.dataset
    load_end = os.getloadavg()
    lines = [
        "# Benchmark results" + (" (QUICK)" if res.quick else ""),
        "",
        "Written by `make bench"
        + (" QUICK=1" if res.quick else "")
        + "` (bench/); every figure below was measured in"
        " one run, side by side, on the machine described here. Targets: [performance.md](performance.md). Absolute"
        " figures drift between runs; the ratios are what the targets are about.",
        "",
        "## Machine",
        "",
        f"- {m['cpu']}, {m['memory']}, {m['os']}",
        f"- PostgreSQL {m.get('postgresql', '?')}, PostGIS {m.get('postgis', '?')},"
        f" shared_buffers {m.get('shared_buffers', '?')}",
        f"- Python {m['python']}; {m.get('GDAL', 'GDAL ?')}; {m.get('wrk', 'wrk ?')}; tipg {m.get('tipg', '?')}",
        f"- {m['date']}; load average {m['load_start'][0]:.2f} at the start, {load_end[0]:.2f} at the end",
        "- Two cores are shared by the load generator (wrk, or the asyncpg driver for raw), the server and"
        " PostgreSQL; other sessions on this machine may run tests at the same time, so a figure can carry CPU"
        " contention (see the load average).",
        "",
        "## Data set",
        "",
        f"- {d.get('cameras', 0):,} cameras ({d.get('registrations', 0):,} registrations), seed {d.get('seed')}:"
        f" {d.get('per_layout', 0):,} in one dense metro (40 × 40 km, denser downtown{'; box scaled to keep the density' if res.quick else ''})"
        f" and {d.get('per_layout', 0):,} over {d.get('metros', '?')} metro areas of realistic density",
        f"- cameras within 500 m of a query point (mean / median): dense metro {d.get('within_metro', '?')},"
        f" many metros {d.get('within_regions', '?')}",
        f"- registry.cameras {d.get('cameras_size', '?')}, GiST index on geom {d.get('geom_index_size', '?')};"
        " stored in spatial (Z-order) order, VACUUM ANALYZE after the load; the first load (generate, COPY,"
        f" indexes, VACUUM) took {d.get('load_seconds') or 0:.0f} s, later runs reuse it until the seed, the size"
        " or the migrations change",
        f"- {d.get('queries', '?')} distinct queries per shape and layout, the same for every system; each cell is"
        f" bounded by time ({d.get('cell_seconds', '?')} s for raw, {d.get('wrk_seconds', '?')} s over HTTP: wrk"
        f" counts whole seconds, after 1 s at the same concurrency that is not counted) and raw also by"
        f" {d.get('cell_requests', 0):,} requests",
        "",
        "## Queries (requests/s; latency p50 / p95 / p99 in ms)",
        "",
        "raw = asyncpg running the SQL directly, no HTTP; geo_query = over HTTP with a token, agency scoping and an"
        " audit record per request, 1 uvicorn worker (as `make run` and docker-compose run it); tipg = tipg serving the same table (no auth, no scoping); pygeoapi = pygeoapi's PostgreSQL provider on the same table (no auth, no scoping)."
        " returned = mean Features per answer. other CPU = share of the two cores that work outside the bench"
        " used during the cell (other sessions' tests): high values make that cell's figures doubtful. CPU µs per"
        " request: user + system time of the process sending the queries (raw: the bench's driver; geo_query: its"
        " server, workers included) and of the PostgreSQL backends serving the bench database (geo_query's audit"
        " record included), divided by the requests answered; less moved by other work than requests/s, it shows a"
        " change that adds cost to each search (`make bench QUICK=1` prints it for every cell).",
        "",
        *query_table(res),
        "",
    ]
    origins = set(res.sql_origin.values())
    if len(origins) == 1:
        lines += [f"SQL of every raw row: {origins.pop()}.", ""]
    elif origins:
        lines.append(
            "SQL of the raw rows: "
            + "; ".join(f"{lay}/{shape}: {o}" for (lay, shape), o in sorted(res.sql_origin.items()))
            + "."
        )
        lines.append("")
    if res.unavailable:
        lines.append("Not measured:")
        lines.append("")
        for (system, lay, shape), why in sorted(res.unavailable.items()):
            lines.append(f"- {system}, {lay}, {shape}: {why}")
        lines.append("")
    if res.server_memory:
        lines.append(
            "Peak memory of the servers: "
            + ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(res.server_memory.items()))
            + "."
        )
        lines.append("")
    lines += [
        "## Bulk import",
        "",
        *import_table(res),
        "",
        *IMPORT_FINDINGS,
        "## Registration writes (registrations/s; latency p50 / p95 / p99 in ms)",
        "",
        "registry_api's `POST /v1/registrations` as an owner sends it (no token, an `Idempotency-Key`), 1 uvicorn"
        " worker, every request a new registration (its own location, contact, 1–2 cameras; every fourth shared"
        " with a second agency) in a program whose jurisdiction is a 720-vertex polygon; each cell"
        f" {res.registrations.seconds if res.registrations else '?'} s of wrk after 1 s not counted. Each answer"
        " must be a 201 and a registration row (counted in the database after each cell): a cell where they are"
        " not says so in its note and does not meet target 5. CPU per registration: registry_api's process and"
        " the PostgreSQL backends serving it, less sensitive to other work on the machine than registrations/s.",
        "",
        *registration_table(res),
        "",
        *(["## Vector tiles", "", *res.tile_lines, ""] if res.tile_lines else []),
        "## Targets ([performance.md](performance.md))",
        "",
        *targets(res),
        "",
        *SAVED_RUNS.read_text().splitlines(),
        "",
        *ROUND_3,
        *ROUND,
        *FINDINGS,
    ]
    errors = [c for c in res.cells.values() if c.note]
    if errors or res.notes:
        lines += ["## Notes", ""]
        lines += [f"- {n}" for n in res.notes]
        lines += [f"- {c.system}, {c.layout}, {c.shape}, {c.clients} clients: {c.note}" for c in errors]
        lines.append("")
    return "\n".join(lines)
