"""Verify an exported audit file offline: every record's chain hash, the links between consecutive records, and
the anchors the file reaches — without the database.

    .venv/bin/python scripts/audit_verify_export.py audit-milwaukee-pd.jsonl
    .venv/bin/python scripts/audit_verify_export.py audit-milwaukee-pd.csv --anchors anchors.jsonl
    make audit-verify-export FILE=audit-milwaukee-pd.jsonl ANCHORS=anchors.jsonl

An export (GET /v1/audit/export, JSON Lines or CSV) carries each record's values exactly as its hash covers them
and its `prev_hash` and `hash`. This recomputes, for every record, SHA-256(prev_hash || canonical record) (the
function `audit.canonical` of the database, rewritten here) and checks:

- each record's hash: a record whose any value was changed after export (or in the database before it) fails;
- each link: where two exported records are consecutive in the chain (seq n and n + 1), the second's prev_hash
  is the first's hash, so a record removed from a complete export fails too;
- the anchors (lines `{"seq": .., "hash": ..}` from `make audit-anchor`, kept outside the database): an anchored
  record in the file must have the anchored hash, and the record after it must link to it.

An export filtered to one agency skips the records of the others, so its records are consecutive only in places:
each record is proved to be the one its hash names, and an anchor that falls in the file binds the chain there.
Checking that a filtered file's hashes are those of the live chain is `make audit-verify` against the database.

The file is read a line at a time: memory stays flat whatever its length. Exit 0 when everything holds, 1 with a
line per problem otherwise.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.audit_verify import read_anchors
from shared.audit import CANONICAL_FIELDS

SEPARATOR = "\x1f"
GENESIS = hashlib.sha256(b"canvass-audit-genesis").digest()


def canonical(record: dict[str, Any]) -> bytes:
    return SEPARATOR.join("" if record.get(k) is None else str(record[k]) for k in CANONICAL_FIELDS).encode()


def chain_hash(record: dict[str, Any]) -> bytes:
    return hashlib.sha256(bytes.fromhex(record["prev_hash"]) + canonical(record)).digest()


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a JSON Lines or CSV export, one at a time."""
    with path.open(encoding="utf-8", newline="") as fh:
        first = fh.read(1)
        fh.seek(0)
        if first == "{":
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield n, json.loads(line)
        else:
            reader = csv.DictReader(fh)
            for row in reader:
                yield reader.line_num, dict(row)


def verify(path: Path, anchors: list[dict[str, Any]]) -> tuple[list[str], int, int]:
    """The problems found, the number of records read, and the number of anchors the file reached."""
    by_seq = {a["seq"]: a for a in anchors}
    after = {a["seq"] + 1: a for a in anchors}
    reached: set[int] = set()
    problems: list[str] = []
    prev: tuple[int, str] | None = None
    count = 0
    for line, r in records(path):
        count += 1
        try:
            seq = int(r["seq"])
            got = chain_hash(r).hex()
            stated = str(r["hash"]).lower()
            prev_hash = str(r["prev_hash"]).lower()
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"line {line}: not an exported audit record ({exc})")
            continue
        where = f"line {line} (record {seq})"
        if got != stated:
            problems.append(f"{where}: record altered (its values do not hash to its hash)")
        if prev is not None:
            if seq <= prev[0]:
                problems.append(f"{where}: out of order (after record {prev[0]})")
            elif seq == prev[0] + 1 and prev_hash != prev[1]:
                problems.append(f"{where}: link to the previous record broken")
        if seq == 1 and prev_hash != GENESIS.hex():
            problems.append(f"{where}: the first record does not start the chain")
        if seq in by_seq:
            reached.add(seq)
            if stated != by_seq[seq]["hash"]:
                problems.append(f"{where}: another hash than anchored (anchor line {by_seq[seq]['line']})")
        if seq in after:
            reached.add(seq - 1)
            if prev_hash != after[seq]["hash"]:
                problems.append(
                    f"{where}: does not link to the anchored record (anchor line {after[seq]['line']})"
                )
        prev = (seq, stated)
    return problems, count, len(reached)


def archive_problems(path: Path, anchors_path: Path, count: int) -> list[str]:
    """An archive file (`make audit-archive`) is the only copy of its records: its anchor names it with its
    SHA-256 and its number of records, so a line removed anywhere in it (which a chain with gaps, as a filtered
    export has, would not show) fails."""
    problems = []
    for line in anchors_path.read_text().splitlines():
        try:
            anchor = json.loads(line)
        except ValueError:
            continue
        if not isinstance(anchor, dict) or anchor.get("archive") != path.name:
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != str(anchor.get("archive_sha256", "")).lower():
            problems.append(f"{path.name}: not the archive its anchor names (its SHA-256 differs)")
        if anchor.get("records") != count:
            problems.append(f"{path.name}: {count} records, its anchor says {anchor.get('records')}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="an export (JSON Lines or CSV)")
    p.add_argument("--anchors", type=Path, default=None, help="a file of anchor lines (make audit-anchor)")
    p.add_argument(
        "--require-anchor", action="store_true", help="fail when no anchor falls in the exported records"
    )
    args = p.parse_args()
    anchors = read_anchors(args.anchors) if args.anchors else []
    try:
        problems, count, reached = verify(args.file, anchors)
    except (OSError, ValueError) as exc:  # unreadable, or a line that is not JSON
        print(f"{args.file}: {exc}")
        return 1
    if args.require_anchor and not reached:
        problems.append("no anchor falls in the exported records")
    if args.anchors:
        problems += archive_problems(args.file, args.anchors, count)
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"export verified: {count} records" + (f", {reached} anchors reached" if anchors else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
