"""Archive the audit trail's months past the retention: each to a file, after an anchor, then detached and dropped.

    .venv/bin/python scripts/audit_archive.py --out /srv/audit-archive              # months older than 7 years
    .venv/bin/python scripts/audit_archive.py --out /srv/audit-archive --before 2019-07-01
    make audit-archive OUT=/srv/audit-archive [BEFORE=2019-07-01]

Run by the database's owner (MIGRATIONS_DATABASE_URL): the services' roles may read the trail but not archive it
(they can neither write `audit.anchors` nor detach or drop a partition), and the script refuses to start for them.

The retention: every month partition (`audit.events_YYYY_MM`, see migration 0026) that ends on or before
`--before` is archived; `--before` is 7 years before today by default, and a cutoff less than one year before
today (the CJIS minimum) is refused. Oldest month first, each month:

1. its records, oldest first, are written to OUT/audit-YYYY-MM.jsonl in the export's JSON Lines format
   (GET /v1/audit/export: each record's values as its hash covers them, with `prev_hash` and `hash`), and synced;
2. the file is checked as scripts/audit_verify_export.py checks it, and it must continue the chain where the
   previous archive stopped: its first record follows the newest anchor's record and links to its hash (or starts
   the chain), its records are consecutive, and no record of the chain up to its last is left in another month
   (where a clock set back over a month's end put some there, the months are archived together, as one file
   audit-YYYY-MM-to-YYYY-MM.jsonl, once all of them are past the retention);
3. in one transaction: the anchor (the last record's seq and hash, the file's name and SHA-256) is appended to
   `audit.anchors`, the records' places and ids leave the oversight index, and the partition is detached and
   dropped. Verification (`make audit-verify`) then starts from that anchor.

Each anchor is printed as a line (`{"seq": .., "hash": .., ...}`) and appended to OUT/anchors.jsonl: keep the
files and the anchors together, and the anchor lines also where the database's owner cannot reach them. An archived
file verifies offline: `make audit-verify-export FILE=OUT/audit-2019-06.jsonl ANCHORS=OUT/anchors.jsonl`.

Detaching waits for reads of the trail running at that moment (a long export) and holds appends back while it
waits, for at most `--lock-timeout` seconds; then that month is left as it was, and a later run takes it.

Exit 0 when done (also when nothing is old enough), 1 on a problem (nothing of that month changed), 2 when the
retention asked for is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from scripts.audit_verify_export import GENESIS
from scripts.audit_verify_export import verify as verify_file
from shared.audit import EXPORT_COLUMNS, jsonl_line
from shared.db import asyncpg_dsn
from shared.settings import get_settings

DEFAULT_RETENTION_YEARS = 7
MINIMUM_RETENTION_YEARS = 1  # CJIS Security Policy: audit records kept at least one year
PARTITION = re.compile(r"events_(\d{4})_(\d{2})")
FETCH = 2000


class ArchiveError(Exception):
    """A month that cannot be archived as it is; nothing of it was changed."""


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def check_retention(before: date, today: date) -> str | None:
    """Why a cutoff is refused, or None: it must leave at least a year of records."""
    latest = years_before(today, MINIMUM_RETENTION_YEARS)
    if before > latest:
        return (
            f"refused: --before {before.isoformat()} would keep less than {MINIMUM_RETENTION_YEARS} year of audit"
            f" records (the CJIS minimum); the latest cutoff today is {latest.isoformat()}"
        )
    return None


@dataclass
class Month:
    name: str
    start: date
    end: date


def month_of(name: str) -> Month | None:
    m = PARTITION.fullmatch(name)
    if m is None:
        return None
    year, month = int(m.group(1)), int(m.group(2))
    end = date(year + (month == 12), month % 12 + 1, 1)
    return Month(name, date(year, month, 1), end)


async def months_before(conn: asyncpg.Connection, before: date) -> list[Month]:
    """The trail's month partitions that end on or before `before`, oldest first."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'audit.events'::regclass"
    )
    months = [m for r in rows if (m := month_of(r["relname"])) is not None and m.end <= before]
    return sorted(months, key=lambda m: m.start)


async def is_owner(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = 'audit.events'::regclass"
        )
    )


def _records(months: list[Month]) -> str:
    """The months' records, as one relation (each partition named: a filter on `tableoid` would read them all)."""
    return " UNION ALL ".join(f"SELECT * FROM audit.{m.name}" for m in months)  # noqa: S608 - partitions' names, matched by PARTITION


async def write_file(conn: asyncpg.Connection, months: list[Month], path: Path) -> str:
    """The months' records to `path` (JSON Lines, oldest first), synced; its SHA-256 (hex)."""
    digest = hashlib.sha256()
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as fh:
        sql = f"SELECT {EXPORT_COLUMNS} FROM ({_records(months)}) e ORDER BY e.seq"  # noqa: S608 - see _records
        async for row in conn.cursor(sql, prefetch=FETCH):
            line = jsonl_line(row)
            digest.update(line)
            fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    partial.replace(path)
    return digest.hexdigest()


class Discontinuous(ArchiveError):
    """The months do not hold, alone, the next stretch of the chain: a later month holds some of it."""


async def archive_months(
    conn: asyncpg.Connection, months: list[Month], out: Path, lock_timeout_s: float
) -> dict[str, Any] | None:
    """Archive consecutive months as one stretch of the chain; its anchor line, or None when they hold no record
    (they are only dropped)."""
    names = ", ".join(m.name for m in months)
    async with conn.transaction():
        # One archive at a time: each continues from the anchor the previous one wrote.
        await conn.execute("LOCK TABLE audit.anchors IN SHARE ROW EXCLUSIVE MODE")
        prev = await conn.fetchrow("SELECT seq, hash FROM audit.anchors ORDER BY seq DESC LIMIT 1")
        prev_seq, prev_hash = (prev["seq"], bytes(prev["hash"])) if prev else (0, GENESIS)
        stats = await conn.fetchrow(
            f"SELECT min(seq) AS lo, max(seq) AS hi, count(*) AS n FROM ({_records(months)}) e"  # noqa: S608 - see _records
        )
        anchor: dict[str, Any] | None = None
        if stats["n"]:
            lo, hi, n = stats["lo"], stats["hi"], stats["n"]
            if lo != prev_seq + 1:
                raise Discontinuous(
                    f"{names}: the first record is {lo}, the chain continues at {prev_seq + 1}"
                    " (a later month holds the records between)"
                )
            elsewhere = await conn.fetchval(
                "SELECT count(*) FROM audit.events WHERE seq <= $1 AND tableoid <> ALL($2::regclass[])",
                hi,
                [f"audit.{m.name}" for m in months],
            )
            if elsewhere:
                raise Discontinuous(f"{names}: {elsewhere} records up to {hi} lie in later months")
            if n != hi - lo + 1:
                raise ArchiveError(f"{names}: records {lo} to {hi} are not all there ({n} of them)")
            span = f"{months[0].start:%Y-%m}" + (f"-to-{months[-1].start:%Y-%m}" if len(months) > 1 else "")
            path = out / f"audit-{span}.jsonl"
            sha256 = await write_file(conn, months, path)
            given = [{"seq": prev_seq, "hash": prev_hash.hex(), "line": 0}] if prev_seq else []
            problems, count, _ = verify_file(path, given)
            if count != n:
                problems.append(f"{n} records in the database, {count} in the file")
            if problems:
                raise ArchiveError(f"{path} does not verify: " + "; ".join(problems))
            last = await conn.fetchrow("SELECT seq, hash, at FROM audit.events WHERE seq = $1", hi)
            await conn.execute(
                "INSERT INTO audit.anchors (seq, hash, at, first_seq, records, partition, archive, archive_sha256)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, decode($8, 'hex'))",
                hi,
                last["hash"],
                last["at"],
                lo,
                n,
                names,
                path.name,
                sha256,
            )
            # The oversight index's rows of these records go with them (derived: nothing is lost).
            await conn.execute("DELETE FROM audit.event_places WHERE seq BETWEEN $1 AND $2", lo, hi)
            await conn.execute("DELETE FROM audit.event_refs WHERE seq BETWEEN $1 AND $2", lo, hi)
            anchor = {
                "seq": hi,
                "hash": bytes(last["hash"]).hex(),
                "at": last["at"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "first_seq": lo,
                "records": n,
                "archive": path.name,
                "archive_sha256": sha256,
            }
        await conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
        for m in months:
            try:
                await conn.execute(f"ALTER TABLE audit.events DETACH PARTITION audit.{m.name}")
            except asyncpg.LockNotAvailableError as exc:
                raise ArchiveError(
                    f"{names}: the trail stayed in use for {lock_timeout_s:g} s (a long export?); left as it was,"
                    " run the archive again"
                ) from exc
            await conn.execute(f"DROP TABLE audit.{m.name}")
    if anchor is not None:
        with (out / "anchors.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(anchor) + "\n")
    return anchor


async def archive(url: str, before: date, out: Path, lock_timeout_s: float) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if not await is_owner(conn):
            print(
                "refused: the archive is the database owner's to run (MIGRATIONS_DATABASE_URL); the services'"
                " roles may read the audit trail, not archive or drop it"
            )
            return 1
        months = await months_before(conn, before)
        if not months:
            print(f"nothing to archive: no month of the audit trail ends on or before {before.isoformat()}")
            return 0
        i = 0
        while i < len(months):
            # A month alone, or with the months after it when the chain runs across them out of order (a clock
            # set back over a month's end): they are archived together, as one stretch of the chain.
            group = [months[i]]
            while True:
                try:
                    anchor = await archive_months(conn, group, out, lock_timeout_s)
                    break
                except Discontinuous as exc:
                    if i + len(group) == len(months):
                        print(exc)
                        return 1
                    group.append(months[i + len(group)])
                except ArchiveError as exc:
                    print(exc)
                    return 1
            i += len(group)
            if anchor is None:
                print(f"{', '.join(m.name for m in group)}: no records; dropped")
            else:
                print(json.dumps(anchor))
        return 0
    finally:
        await conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None, help="the owner's database URL (default: MIGRATIONS_DATABASE_URL)")
    p.add_argument(
        "--out", type=Path, required=True, help="the directory the archive files and anchors go to"
    )
    p.add_argument(
        "--before",
        type=date.fromisoformat,
        default=None,
        help=f"archive the months ending on or before this day (default: {DEFAULT_RETENTION_YEARS} years ago)",
    )
    p.add_argument("--lock-timeout", type=float, default=10.0, help="seconds to wait to detach a month")
    args = p.parse_args()
    today = datetime.now(UTC).date()
    before = args.before or years_before(today, DEFAULT_RETENTION_YEARS)
    refused = check_retention(before, today)
    if refused:
        print(refused)
        return 2
    url = args.url or get_settings().migrations_url
    args.out.mkdir(parents=True, exist_ok=True)
    return asyncio.run(archive(url, before, args.out, args.lock_timeout))


if __name__ == "__main__":
    sys.exit(main())
