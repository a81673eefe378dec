"""``python -m chaos._summary DIR``: a campaign's reports (``DIR/*.json``) as Markdown tables.

One table per mode (seed, result, faults by kind, calls by outcome, callers, longest
stall, worst recovery, failed or known-upstream checks), then one of the expire faults
(how long the client was cut off, how many of its connections were shut, when it was
back on a new session). For the README a campaign's directory keeps.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import sys
from typing import Any

_HEAD = (
    "| mode | seed | result | faults | calls (ok) | callers g/n/a | longest stall s | max recovery s "
    "| failed or known-upstream checks |\n|---|---|---|---|---|---|---|---|---|"
)


def row(report: dict[str, Any]) -> str:
    """One report as a table row."""
    faults = ", ".join(f"{kind} {sum(counts.values())}" for kind, counts in sorted(report["faults"].items()))
    outcomes: collections.Counter[str] = collections.Counter()
    for counts in report["calls"].values():
        outcomes.update(counts)
    callers = report.get("callers", {})
    stall = max(report["longest_stall_s"].values(), default=0.0)
    recovery = max((r["max"] for r in report["recovery_s"].values()), default=0.0)
    noted = "; ".join(c["name"] for c in report["checks"] if c["passed"] is not True)
    return (
        f"| {report['mode']} | {report['seed']} | {'PASS' if report['passed'] else 'FAIL'} | {faults} "
        f"| {sum(outcomes.values())} ({outcomes['ok']} ok) "
        f"| {callers.get('green', 0)}/{callers.get('native', 0)}/{callers.get('asyncio', 0)} "
        f"| {stall:.2f} | {recovery:.2f} | {noted} |"
    )


def expire_rows(report: dict[str, Any]) -> list[str]:
    """The report's expire faults: cut off for, connections shut, back on a new session after."""
    rows = []
    for at, what, detail in report["timeline"]:
        if what != "fault" or detail.get("kind") != "expire":
            continue
        if "skipped" in detail or "error" in detail:
            rows.append(f"| {report['mode']} | {report['seed']} | {at:.1f} | {detail.get('skipped') or detail.get('error')} | | |")
            continue
        back = detail.get("back_after_s") if detail.get("new_session") else "not within the bound"
        rows.append(f"| {report['mode']} | {report['seed']} | {at:.1f} | {detail['held_s']:.2f} | {detail['drops']} | {back} |")
    return rows


def summary(directory: str) -> str:
    reports = [json.load(open(path)) for path in sorted(glob.glob(os.path.join(directory, "*.json")))]
    by_mode: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for report in reports:
        by_mode[report["mode"]].append(report)
    parts = []
    for mode, runs in sorted(by_mode.items()):
        runs.sort(key=lambda r: r["seed"])
        passed = sum(1 for r in runs if r["passed"])
        parts.append(f"**{mode}: {passed} of {len(runs)} passed.**\n\n{_HEAD}\n" + "\n".join(row(r) for r in runs))
    expires = [line for mode in sorted(by_mode) for r in by_mode[mode] for line in expire_rows(r)]
    if expires:
        parts.append(
            "Expire faults: the client cut off until no member listed its session.\n\n"
            "| mode | seed | at s | cut off s | connections shut | back on a new session after s |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(expires)
        )
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(summary(sys.argv[1] if len(sys.argv) > 1 else os.path.join("chaos", "results")))
