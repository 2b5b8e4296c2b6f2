"""Verify the audit trail's hash chain: every record's hash, every link, and the chain's head.

    .venv/bin/python scripts/audit_verify.py            # DATABASE_URL, or the local cluster
    make audit-verify

Exit 0 when the chain is intact; 1, with one line per broken place, when a record was altered or removed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from shared.db import asyncpg_dsn
from shared.settings import get_settings


async def verify(url: str) -> list[tuple[int, bool, str]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT seq, ok, reason FROM audit.verify_chain()")
    finally:
        await conn.close()
    return [(r["seq"], r["ok"], r["reason"]) for r in rows]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None, help="database URL (default: DATABASE_URL)")
    url = p.parse_args().url or get_settings().database_url
    results = asyncio.run(verify(url))
    broken = [r for r in results if not r[1]]
    for seq, _, reason in broken:
        print(f"audit record {seq}: {reason}")
    if broken:
        return 1
    print(f"audit chain intact: {results[-1][0]} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
