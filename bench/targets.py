"""The performance targets, read from docs/performance.md (its "Targets the bench checks" table): the one place
they are written. Each row gives a key the report knows, the target in words, and a threshold such as `≥ 60 %`,
`≤ 12 ms` or `< 300 MB`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from bench.settings import ROOT

TARGETS_FILE = ROOT / "docs" / "performance.md"
_THRESHOLD = re.compile(r"^(≥|≤|<|>)\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(.*)$")


@dataclass(frozen=True)
class Target:
    key: str
    text: str
    op: str  # ≥ ≤ < >
    value: float
    unit: str  # as written after the number: %, ×, ms, /s, MB

    @property
    def threshold(self) -> str:
        return f"{self.op} {self.value:,g}{'' if self.unit.startswith('/') else ' '}{self.unit}"

    def met(self, measured: float) -> bool:
        """Whether `measured` (a share for %, a factor for ×, else in the target's unit) meets the target."""
        limit = self.value / 100 if self.unit == "%" else self.value
        return {
            "≥": measured >= limit,
            "≤": measured <= limit,
            "<": measured < limit,
            ">": measured > limit,
        }[self.op]


@cache
def targets() -> dict[str, Target]:
    out: dict[str, Target] = {}
    for line in TARGETS_FILE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("key", "") or set(cells[0]) <= {"-"}:
            continue
        m = _THRESHOLD.match(cells[2])
        if m is None:
            raise ValueError(f"{TARGETS_FILE.name}: the threshold of {cells[0]!r} is not read: {cells[2]!r}")
        out[cells[0]] = Target(cells[0], cells[1], m[1], float(m[2].replace(",", "")), m[3].strip())
    return out


def target(key: str) -> Target:
    try:
        return targets()[key]
    except KeyError:
        raise KeyError(f"{TARGETS_FILE.name} has no target {key!r}") from None
