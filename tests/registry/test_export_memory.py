"""An export's memory stays flat: the registry_api process streaming 200,000 audit records over HTTP raises its
peak resident memory (VmHWM, read from /proc) by a few megabytes, a small part of what it sends, where holding
the records (or the answer) would take hundreds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import APP_URL, BASE_URL, Token
from tests.support import Db, Server, drop_database, ensure_template, run_sql, start_server, with_database

RECORDS = 200_000
AGENCY = "export-memory"
# The peak may grow by at most this much (it grows by well under 1 MiB): the export is over 100 MiB of JSON Lines,
# and the rows it comes from, held as Python objects, take some 300 MiB more.
GROWTH_LIMIT_KB = 16 * 1024

# Set-based, as the owner: records chained by placeholder hashes (the export reads them, it does not check them),
# the oversight index's trigger off while they go in (the export does not read it).
SEED = f"""
SELECT audit.create_partition(now() - interval '1 hour');
ALTER TABLE audit.events DISABLE TRIGGER events_indexed;
INSERT INTO audit.events (seq, id, at, service, actor, actor_role, agency, action, subject_type, subject_id,
                          case_number, area, details, prev_hash, hash)
SELECT g, gen_random_uuid(), now() - make_interval(secs => ({RECORDS} - g) / 100.0), 'geo_query', 'det-' || (g % 50),
       'investigator', '{AGENCY}', 'search.radius', 'camera', gen_random_uuid()::text, 'C-' || (g % 97),
       ST_SetSRID(ST_MakePoint(-87.9 + (g % 1000) * 1e-4, 43.0 + (g % 700) * 1e-4), 4326),
       jsonb_build_object('results', g % 13, 'filters', jsonb_build_object('radius_m', 300)),
       sha256(int8send(g - 1)), sha256(int8send(g))
FROM generate_series(1, {RECORDS}) AS g;
ALTER TABLE audit.events ENABLE TRIGGER events_indexed;
UPDATE audit.chain_head SET seq = {RECORDS}, hash = sha256(int8send({RECORDS}::bigint));
INSERT INTO registry.agencies (slug, name, jurisdiction, privacy_notice)
VALUES ('{AGENCY}', 'Export memory', ST_GeomFromText('MULTIPOLYGON(((-88 42,-87 42,-87 44,-88 44,-88 42)))', 4326),
        'Notice.');
ANALYZE audit.events;
"""  # noqa: S608 - the test's own constants


@pytest.fixture(scope="module")
def large_trail(service_env: dict[str, str]) -> Iterator[tuple[Server, Db]]:
    """A database of its own holding 200,000 records of one agency, and a registry_api serving it."""
    name = f"canvass_exportmem_{uuid.uuid4().hex[:8]}"
    run_sql(
        with_database(BASE_URL, "postgres"),
        f'CREATE DATABASE "{name}" TEMPLATE "{ensure_template(BASE_URL)}"',
    )
    owner = Db(with_database(BASE_URL, name))
    server: Server | None = None
    try:
        run_sql(with_database(BASE_URL, name), SEED)
        server = start_server("registry_api", dict(service_env, DATABASE_URL=with_database(APP_URL, name)))
        yield server, owner
    finally:
        if server is not None:
            server.stop()
        owner.close()
        drop_database(BASE_URL, name)


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


def export(server: Server, headers: dict[str, str], **params: str) -> tuple[int, int]:
    """The export's size in bytes and lines, read as it streams (nothing of it kept)."""
    size = lines = 0
    with (
        httpx.Client(base_url=server.url, timeout=300) as client,
        client.stream("GET", "/v1/audit/export", params=params, headers=headers) as r,
    ):
        assert r.status_code == 200, r.read()
        for chunk in r.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return size, lines


def test_an_export_of_200000_records_keeps_the_services_memory_flat(
    large_trail: tuple[Server, Db], auth: Token
) -> None:
    server, owner = large_trail
    headers = auth("auditor", AGENCY)
    # Warmed up on the newest 5,000 records: the same statement, cursor and chunks, a fortieth of the rows.
    since = owner.fetchval("SELECT at FROM audit.events WHERE seq = $1", RECORDS - 4999)
    size, lines = export(server, headers, since=since.isoformat())
    assert lines == 5000 + 1  # and the record of this export itself
    before = peak_kb(server.process.pid)

    size, lines = export(server, headers)
    grown = peak_kb(server.process.pid) - before
    assert lines == RECORDS + 2  # every record, the warm-up's and this export's records among them
    assert size > 100 * 1024 * 1024
    assert grown < GROWTH_LIMIT_KB, f"peak memory grew by {grown} KiB while exporting {size:,} bytes"
