"""Verify the audit trail's hash chain: every record's hash, every link, and the chain's head; and, given anchors
kept outside the database, that the chain still passes through each of them.

    .venv/bin/python scripts/audit_verify.py                      # DATABASE_URL, or the local cluster
    .venv/bin/python scripts/audit_verify.py --anchor             # print the head as an anchor (one JSON line)
    .venv/bin/python scripts/audit_verify.py --anchors FILE       # also check every anchor line in FILE
    make audit-verify / make audit-anchor

Why anchors: the chain shows any record altered or removed by anyone who cannot rewrite the whole chain after it,
which the services cannot (they may only append). Whoever owns the database could recompute every hash after a
change. An anchor is the head's (seq, hash) written somewhere that owner cannot reach (the agency's log system, a
ticket, a signed mail): once anchored, a record at or before that seq cannot be changed or removed, even with the
chain recomputed, without the check against the anchor failing. Anchor as often as the agency's policy asks (a
daily `make audit-anchor >> anchors.jsonl` on another machine).

Archived months (scripts/audit_archive.py, `make audit-archive`) have left the database, each after an archive
anchor in `audit.anchors`: the chain is checked from the newest of them (the first record left must link to its
hash). An anchor line from FILE that names an archived record is checked against the archive anchors when it is
one of them, and otherwise left to the archive files (`make audit-verify-export`), which carry those records.

Exit 0 when the chain is intact and passes every anchor; 1, with one line per broken place, otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from shared.db import asyncpg_dsn
from shared.settings import get_settings


async def verify(url: str) -> tuple[list[tuple[int, bool, str]], int]:
    """The chain's problems and its last line; and the seq of the newest archive anchor it starts from (0: none)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch("SELECT seq, ok, reason FROM audit.verify_chain()")
            archived = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM audit.anchors")
    finally:
        await conn.close()
    return [(r["seq"], r["ok"], r["reason"]) for r in rows], archived


async def head(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        row = await conn.fetchrow(
            "SELECT h.seq, h.hash, e.at FROM audit.chain_head h LEFT JOIN audit.events e ON e.seq = h.seq"
        )
    finally:
        await conn.close()
    assert row is not None
    at = row["at"].isoformat().replace("+00:00", "Z") if row["at"] is not None else None
    return {"seq": row["seq"], "hash": bytes(row["hash"]).hex(), "at": at}


def read_anchors(path: Path) -> list[dict[str, Any]]:
    anchors = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            a = json.loads(line)
            anchors.append({"seq": int(a["seq"]), "hash": str(a["hash"]).lower(), "line": n})
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}:{n}: not an anchor ({exc})") from exc
    return anchors


async def check_anchors(url: str, anchors: list[dict[str, Any]]) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        wanted = [a["seq"] for a in anchors]
        rows = await conn.fetch(
            "SELECT seq, hash FROM audit.events WHERE seq = ANY($1::bigint[])"
            " UNION ALL SELECT seq, hash FROM audit.anchors WHERE seq = ANY($1::bigint[])",
            wanted,
        )
        archived = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM audit.anchors")
        kept_inside = await conn.fetch("SELECT seq, hash FROM audit.anchors ORDER BY seq")
    finally:
        await conn.close()
    stored = {r["seq"]: bytes(r["hash"]).hex() for r in rows}
    problems = []
    # Verification starts from the newest archive anchor in the database: each must be one the archive wrote and
    # the operator kept outside with the others (its anchors.jsonl), or whoever owns the database could "archive"
    # recent records away by inserting an anchor and deleting what lies before it.
    outside = {(a["seq"], a["hash"]) for a in anchors}
    for r in kept_inside:
        if (r["seq"], bytes(r["hash"]).hex()) not in outside:
            problems.append(
                f"archive anchor at record {r['seq']} is not among the anchors kept outside the database:"
                " add the archive's anchors.jsonl lines to them, or the trail before it was removed unverified"
            )
    for a in anchors:
        got = stored.get(a["seq"])
        if got is None and a["seq"] <= archived:
            continue  # an archived record: its archive file carries it
        if got is None:
            problems.append(f"anchor (line {a['line']}): audit record {a['seq']} is missing")
        elif got != a["hash"]:
            problems.append(
                f"anchor (line {a['line']}): audit record {a['seq']} has another hash than anchored:"
                " the chain was rewritten"
            )
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None, help="database URL (default: DATABASE_URL)")
    p.add_argument("--anchor", action="store_true", help="print the chain's head as an anchor line and exit")
    p.add_argument(
        "--anchors", type=Path, default=None, help="a file of anchor lines to check the chain against"
    )
    args = p.parse_args()
    url = args.url or get_settings().database_url
    if args.anchor:
        print(json.dumps(asyncio.run(head(url))))
        return 0
    results, archived = asyncio.run(verify(url))
    problems = [f"audit record {seq}: {reason}" for seq, ok, reason in results if not ok]
    anchors = read_anchors(args.anchors) if args.anchors else []
    if anchors:
        problems += asyncio.run(check_anchors(url, anchors))
    for line in problems:
        print(line)
    if problems:
        return 1
    print(
        f"audit chain intact: {results[-1][0]} records"
        + (f", from the archive anchor at record {archived}" if archived else "")
        + (f", {len(anchors)} anchors hold" if anchors else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
