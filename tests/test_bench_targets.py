"""The performance targets live in one place, docs/performance.md, and the bench's verdicts come from it."""

from __future__ import annotations

from pathlib import Path

from bench.http import Cell
from bench.queries import PLAN
from bench.report import Results, targets
from bench.targets import TARGETS_FILE, target
from bench.targets import targets as read_targets

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "geo_vs_raw_16",
    "geo_vs_raw_1",
    "geo_vs_tipg_16",
    "cad_p99_ms",
    "import_features_per_s",
    "import_peak_mb",
    "registrations_per_s",
}


def test_every_target_the_bench_checks_is_read_from_the_repository() -> None:
    assert TARGETS_FILE == ROOT / "docs" / "performance.md"
    assert set(read_targets()) == KEYS
    assert target("geo_vs_raw_16").op == "≥" and target("geo_vs_raw_16").unit == "%"


def test_the_verdicts_use_the_files_thresholds() -> None:
    layout, shape = next((lay, s) for lay, s in PLAN if s.key == "nearest")
    share = target("geo_vs_raw_16").value / 100

    def verdict(geo_rps: float) -> str:
        res = Results(quick=True)
        raw = Cell("raw", layout.key, shape.key, 16, requests=1000, seconds=1.0)
        geo = Cell("geo_query", layout.key, shape.key, 16, requests=round(geo_rps), seconds=1.0)
        res.add(raw)
        res.add(geo)
        line = next(v for v in targets(res) if shape.title in v and layout.title in v and "16 clients" in v)
        return line.rsplit("→", 1)[1].strip()

    assert verdict(1000 * share + 10) == "**met**"
    assert verdict(1000 * share - 10) == "**missed**"


def test_the_results_and_the_bench_name_no_file_outside_the_repository() -> None:
    for path in [
        ROOT / "docs" / "bench-results.md",
        ROOT / "docs" / "performance.md",
        *ROOT.glob("bench/*.py"),
    ]:
        text = path.read_text()
        assert "../shared" not in text and "PERFORMANCE.md" not in text, path
