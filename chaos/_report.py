"""The report of a run: seed, faults by kind, calls by outcome, stalls, recovery, checks."""

from __future__ import annotations

import collections
import statistics
from typing import Any

from ._checks import WRITE_OPS, Check
from ._history import History
from ._schedule import SESSION_TIMEOUT


def faults_by_kind(history: History) -> dict[str, dict[str, int]]:
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for event in history.events_of("fault"):
        status = "skipped" if "skipped" in event.detail else "error" if "error" in event.detail else "injected"
        table[event.detail["kind"]][status] += 1
    return {kind: dict(counts) for kind, counts in sorted(table.items())}


def calls_by_outcome(history: History) -> dict[str, dict[str, int]]:
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for call in history.calls:
        table[call.caller][call.outcome or "never returned"] += 1
    return {caller: dict(counts.most_common()) for caller, counts in sorted(table.items())}


def stalls_and_recovery(history: History) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Longest call overlapping each fault's window, and fault-to-first-acknowledged-write, by kind."""
    stalls: dict[str, float] = {}
    recovery: dict[str, list[float]] = collections.defaultdict(list)
    writes = sorted((c for c in history.calls if c.op in WRITE_OPS and c.acked), key=lambda c: c.start)
    done = [c for c in history.calls if c.end is not None]
    for event in history.events_of("fault"):
        if "skipped" in event.detail or "error" in event.detail:
            continue
        kind, began = event.detail["kind"], event.at
        window_end = event.detail.get("repaired_at", began) + SESSION_TIMEOUT
        overlapping = [c.duration or 0.0 for c in done if c.start < window_end and (c.end or 0.0) > began]
        stalls[kind] = max(stalls.get(kind, 0.0), max(overlapping, default=0.0))
        first = next((c for c in writes if c.start >= began), None)
        if first is not None and first.end is not None:
            recovery[kind].append(first.end - began)
    summary = {
        kind: {"n": len(times), "median": round(statistics.median(times), 3), "max": round(max(times), 3)}
        for kind, times in sorted(recovery.items())
    }
    return {kind: round(value, 3) for kind, value in sorted(stalls.items())}, summary


def build(meta: dict[str, Any], history: History, checks: list[Check], schedule: list[str]) -> dict[str, Any]:
    stalls, recovery = stalls_and_recovery(history)
    return {
        **meta,
        "schedule": schedule,
        "faults": faults_by_kind(history),
        "calls": calls_by_outcome(history),
        "longest_stall_s": stalls,
        "recovery_s": recovery,
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks],
        "passed": all(c.passed is not False for c in checks),
    }


def text(report: dict[str, Any]) -> str:
    mark = {True: "PASS", False: "FAIL", None: "n/a "}
    lines = [
        f"chaos {report['mode']} seed={report['seed']} members={report['members']} "
        f"seconds={report['seconds']} (ran {report['elapsed_s']:.0f}s): {'PASSED' if report['passed'] else 'FAILED'}",
        "  faults: " + ", ".join(f"{k} {v}" for k, v in report["faults"].items()),
        "  callers: " + ", ".join(f"{k} {v}" for k, v in report.get("callers", {}).items())
        + ("" if report.get("callers", {}).get("asyncio") else " (no coroutine callers: shared mode offers them on the asyncio hub only)"),
        "  calls:  " + "; ".join(f"{k}: {v}" for k, v in report["calls"].items()),
        "  longest stall (s): " + ", ".join(f"{k} {v}" for k, v in report["longest_stall_s"].items()),
        "  recovery (s): " + ", ".join(f"{k} {v['median']}/{v['max']}" for k, v in report["recovery_s"].items())
        + " (median/max)",
    ]
    lines += [f"  [{mark[c['passed']]}] {c['name']}: {c['detail']}" for c in report["checks"]]
    return "\n".join(lines)
