"""The benchmark report's comparison with the README's table (benchmarks/report.py).

The table may come from another machine: a row is "slower" only relative to K-T, the
reference handler measured in both runs.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import report  # noqa: E402

TABLE = """\
| metric | ours-isolated | K-T |
|---|---|---|
| ZooKeeper sequential get() p50 (µs) | 400 µs | 400 µs |
| dispatch 100k callbacks (callbacks/s) | 200.0k | 100.0k |
"""


def _summary(ours_get: float, kt_get: float, ours_dispatch: float, kt_dispatch: float) -> Dict[str, Any]:
    cell = lambda v: {"median": v, "status": "ok"}  # noqa: E731
    return {"ours-isolated": {"zk_get_p50": cell(ours_get), "dispatch": cell(ours_dispatch)},
            "K-T": {"zk_get_p50": cell(kt_get), "dispatch": cell(kt_dispatch)}}


def _vs_table(tmp_path: Path, summary: Dict[str, Any]) -> Dict[str, Any]:
    readme = tmp_path / "README.md"
    readme.write_text(TABLE, encoding="utf-8")
    goals = report.goals_issue10(summary, report.readme_table(readme))
    (goal,) = [g for g in goals if g["goal"].startswith("no row slower")]
    return goal


def test_a_machine_twice_as_slow_for_everyone_is_no_regression(tmp_path: Path) -> None:
    goal = _vs_table(tmp_path, _summary(800, 800, 100_000, 50_000))
    assert goal["met"] is True, goal


@pytest.mark.parametrize("summary, row", [
    (_summary(500, 400, 200_000, 100_000), "zk_get_p50"),  # latency up, K-T unchanged
    (_summary(400, 400, 150_000, 100_000), "dispatch"),    # throughput down, K-T unchanged
])
def test_a_row_slower_relative_to_kt_is_flagged(tmp_path: Path, summary: Dict[str, Any], row: str) -> None:
    goal = _vs_table(tmp_path, summary)
    assert goal["met"] is False and row in goal["measured"], goal
