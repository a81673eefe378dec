"""Ratios, goals, the printed table and the chart for run.py's results."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional

# metric -> (label, unit shown, higher is better)
METRICS = {
    "dispatch": ("dispatch 100k callbacks", "callbacks/s", True),
    "roundtrip": ("result set by spawned green thread, get()", "round trips/s", True),
    "rawlink_p50": ("rawlink callback latency p50", "µs", False),
    "native_wake_p50": ("native-thread set() -> green wake p50", "µs", False),
    "waiters_1000_ms": ("native set(), 1000 green waiters all woken", "ms", False),
    "zk_get_p50": ("ZooKeeper sequential get() p50", "µs", False),
    "pipelined_ops": ("10k pipelined get_async()", "ops/s", True),
    "watch_fanout_ms": ("1000 data watches fired by one set()", "ms", False),
    "mem_pending_request": ("memory per pending request (its async_result)", "bytes", False),
    "mem_idle_client": ("memory per idle connected client (RSS)", "bytes", False),
}
SCALE_PREFIX = "scale_"  # scale_<C>: one metric per concurrency level the run measured


def info(metric: str) -> tuple:
    """(label, unit shown, higher is better) of any metric, scale levels included."""
    if metric.startswith(SCALE_PREFIX):
        level = metric[len(SCALE_PREFIX):]
        return (f"scale C={level} get/set loop", "ops/s", True)
    return METRICS[metric]


def scale_levels(summary: Dict[str, Any]) -> List[int]:
    """The concurrency levels present in a run's results, ascending."""
    return sorted({int(m[len(SCALE_PREFIX):]) for per in summary.values() for m in per
                   if m.startswith(SCALE_PREFIX)})


def metrics_of(summary: Dict[str, Any]) -> List[str]:
    """Every metric of a run, in table order: METRICS, then the scale levels it has."""
    return list(METRICS) + [f"{SCALE_PREFIX}{c}" for c in scale_levels(summary)]

COLUMNS = ["ours-shared", "ours-isolated", "K-E", "K-G", "K-T", "raw", "eventlet-floor"]
FLOOR = "eventlet-floor"
OURS = ["ours-shared", "ours-isolated"]


def _cell(summary: Dict[str, Any], family: str, metric: str) -> Optional[Dict[str, Any]]:
    return summary.get(family, {}).get(metric)


def _median(summary: Dict[str, Any], family: str, metric: str) -> Optional[float]:
    cell = _cell(summary, family, metric)
    return None if cell is None else cell.get("median")


def speedup(metric: str, value: Optional[float], base: Optional[float]) -> Optional[float]:
    """How many times better than `base` (>1 is better), whatever the metric's direction."""
    if value is None or base is None or value <= 0 or base <= 0:
        return None
    return value / base if info(metric)[2] else base / value


def ratios(summary: Dict[str, Any]) -> Dict[str, Dict[str, Optional[float]]]:
    """Per metric and family: speedup over K-E in the same run (None: K-E has no value)."""
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for metric in metrics_of(summary):
        base = _median(summary, "K-E", metric)
        out[metric] = {
            family: speedup(metric, _median(summary, family, metric), base)
            for family in COLUMNS if _cell(summary, family, metric) is not None
        }
    return out


def _goal(name: str, family: str, measured: str, target: str, met: Optional[bool]) -> Dict[str, Any]:
    return {"goal": name, "family": family, "measured": measured, "target": target,
            "met": met}


def goals(summary: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Issue 6's goals, evaluated for each of our rows.

    Where the run has the eventlet floor (bare eventlet primitives in one hub,
    no handler), a goal's measured text says what the floor itself reaches:
    a goal beyond the floor is beyond any handler built on eventlet's hub.
    """
    m = lambda fam, metric: _median(summary, fam, metric)  # noqa: E731

    def floor_note(metric: str, other: str) -> str:
        r = speedup(metric, m(FLOOR, metric), m(other, metric))
        return "" if r is None else f"; floor {r:.2f}x {other}"

    results = []
    for fam in OURS:
        if fam not in summary:
            continue

        def failed(metric: str) -> Optional[str]:
            cell = _cell(summary, fam, metric)
            return None if cell is None or cell["median"] is not None else cell["status"]

        def ratio_goal(name: str, metric: str, other: str, at_least: float) -> None:
            if failed(metric):
                results.append(_goal(name, fam, failed(metric), f">= {at_least:g}x {other}", False))
                return
            r = speedup(metric, m(fam, metric), m(other, metric))
            results.append(_goal(
                name, fam, "n/a" if r is None else f"{r:.2f}x {other}" + floor_note(metric, other),
                f">= {at_least:g}x {other}", None if r is None else r >= at_least))

        ratio_goal("callback dispatch >= 8x K-E", "dispatch", "K-E", 8.0)
        ratio_goal("get() round trips >= 2.2x K-E", "roundtrip", "K-E", 2.2)
        ratio_goal("rawlink p50 no worse than K-G", "rawlink_p50", "K-G", 1.0)
        wake = m(fam, "native_wake_p50")
        results.append(_goal("native set() -> green wake p50 < 50 µs", fam,
                             "n/a" if wake is None else f"{wake:.1f} µs", "< 50 µs",
                             None if wake is None else wake < 50))
        many, floor = m(fam, "waiters_1000_ms"), m(FLOOR, "waiters_1000_ms")
        floor_text = "" if floor is None else f"; floor {floor:.2f} ms, set in its own hub"
        results.append(_goal("1000 waiters woken < 10 ms", fam,
                             "n/a" if many is None else f"{many:.2f} ms{floor_text}", "< 10 ms",
                             None if many is None else many < 10))
        for metric in ("native_wake_p50", "waiters_1000_ms"):
            if failed(metric):
                results.append(_goal(info(metric)[0], fam, failed(metric), "a value", False))
        get, raw = m(fam, "zk_get_p50"), m("raw", "zk_get_p50")
        results.append(_goal("sequential get() p50 <= 1.7x raw socket", fam,
                             "n/a" if get is None or raw is None else f"{get / raw:.2f}x raw ({get:.0f} µs vs {raw:.0f} µs)",
                             "<= 1.7x raw", None if get is None or raw is None else get <= 1.7 * raw))
        ratio_goal("pipelined get_async() >= K-T", "pipelined_ops", "K-T", 1.0)
        ratio_goal("1000-watch fan-out no slower than K-G", "watch_fanout_ms", "K-G", 1.0)
        ratio_goal("C=10,000 more ops/s than K-T", "scale_10000", "K-T", 1.0 + 1e-9)
    return results


# -- issue 10: isolated mode at native speed ----------------------------------------

ISOLATED_VS_KT = ["dispatch", "roundtrip", "rawlink_p50", "native_wake_p50", "waiters_1000_ms",
                  "zk_get_p50", "pipelined_ops", "watch_fanout_ms"]  # + every scale level
SHARED_VS_FLOOR = ["dispatch", "roundtrip", "rawlink_p50", "waiters_1000_ms"]
FLOOR_SHARE = 0.95
NORM_TOLERANCE = 0.95  # a row within 5% of the table's ratio to K-T is not 'slower'
_NUMBER = re.compile(r"^([0-9][0-9.]*)(k?)")


def readme_table(path: Path) -> Dict[str, Dict[str, float]]:
    """{family: {metric: value}} from the README's Performance table ({} if absent).

    The table is the one ``render_markdown`` writes, so its row labels name the metrics.
    Each value is moved by half its last printed digit towards "worse", so a run is
    never called slower than the table only because the table rounds.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    labels = {f"{info(m)[0]} ({info(m)[1]})": m for m in METRICS}
    out: Dict[str, Dict[str, float]] = {}
    families: List[str] = []
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2:
            families = [] if not line.startswith("|") else families
            continue
        if cells[0] == "metric":
            families = cells[1:]
            continue
        scale = re.match(r"scale C=(\d+) get/set loop", cells[0])
        metric = f"{SCALE_PREFIX}{scale.group(1)}" if scale else labels.get(cells[0])
        if not families or metric is None:
            continue
        for family, text in zip(families, cells[1:]):
            number = _NUMBER.match(text)
            if number:
                digits = number.group(1)
                scale_by = (1000 if number.group(2) else 1) * (1024 if "KiB" in text else 1)
                decimals = len(digits.split(".")[1]) if "." in digits else 0
                half = 0.5 * 10 ** -decimals * scale_by
                value = float(digits) * scale_by
                out.setdefault(family, {})[metric] = value - (half if info(metric)[2] else -half)
    return out


def _vs_table(summary: Dict[str, Any], baseline: Dict[str, Dict[str, float]], fam: str) -> Dict[str, Any]:
    """Is any row of `fam` slower than the README's table?

    The table may come from another machine, so a row is compared *relative to K-T*
    (the same reference handler measured in both runs): our value over K-T's now, against
    our value over K-T's in the table. Without a K-T value on both sides the row is
    compared as measured. `NORM_TOLERANCE` absorbs round-to-round noise of a median.
    """
    then_kt, slower, compared = baseline.get("K-T", {}), [], 0
    for metric, before in baseline[fam].items():
        if metric.startswith("mem_") or _cell(summary, fam, metric) is None:
            continue
        compared += 1
        now, kt_now, kt_then = _median(summary, fam, metric), _median(summary, "K-T", metric), then_kt.get(metric)
        normed = kt_now is not None and kt_then is not None
        r = (speedup(metric, now, kt_now) or 0) / (speedup(metric, before, kt_then) or 1) if normed \
            else speedup(metric, now, before)
        if r is None or r < NORM_TOLERANCE:
            slower.append(f"{metric} " + ("failed" if r is None else f"{r:.2f}x") + ("" if normed else " (as measured)"))
    return _goal("no row slower than the README's table, relative to K-T", fam,
                 f"{len(slower)} of {compared} rows slower" + (": " + ", ".join(slower) if slower else ""),
                 f"0 rows below {NORM_TOLERANCE:g}x", not slower)


def goals_issue10(summary: Dict[str, Any], baseline: Dict[str, Dict[str, float]]) -> List[Dict[str, Any]]:
    """Issue 10's goals: isolated mode >= K-T on every row both measure, shared mode's
    three targets, no row slower than the README's table, memory beside K-T's."""
    m = lambda fam, metric: _median(summary, fam, metric)  # noqa: E731
    results: List[Dict[str, Any]] = []

    def ratio_goal(fam: str, metric: str, other: str, at_least: float, label: str) -> None:
        mine_cell, theirs_cell = _cell(summary, fam, metric), _cell(summary, other, metric)
        if mine_cell is None or theirs_cell is None:
            return
        mine, theirs = m(fam, metric), m(other, metric)
        target = f">= {at_least:g}x {other}"
        if mine is None or theirs is None:  # a side measured no value: say which
            measured = f"{mine_cell['status']} vs {theirs_cell['status']}"
            results.append(_goal(label, fam, measured, target, False if mine is None else None))
            return
        r = speedup(metric, mine, theirs)
        values = f"{fmt_value(metric, mine)} vs {fmt_value(metric, theirs)}"
        if r is None:  # a zero: ops/s of 0 loses to anything above it
            met = False if info(metric)[2] and mine <= 0 < theirs else None
            results.append(_goal(label, fam, values, target, met))
            return
        results.append(_goal(label, fam, f"{r:.2f}x {other} ({values})", target, r >= at_least))

    scale = [f"{SCALE_PREFIX}{c}" for c in scale_levels(summary)]
    for metric in ISOLATED_VS_KT + scale:
        ratio_goal("ours-isolated", metric, "K-T", 1.0, info(metric)[0])
    ratio_goal("ours-shared", "zk_get_p50", "K-T", 1.0, info("zk_get_p50")[0])
    ratio_goal("ours-shared", "watch_fanout_ms", "K-G", 1.0, info("watch_fanout_ms")[0])
    for metric in SHARED_VS_FLOOR:
        ratio_goal("ours-shared", metric, FLOOR, FLOOR_SHARE, info(metric)[0])
    for fam in OURS:
        if fam in summary and fam in baseline:
            results.append(_vs_table(summary, baseline, fam))
    for metric in ("mem_pending_request", "mem_idle_client"):
        fams = [f for f in ("ours-shared", "ours-isolated", "K-T") if m(f, metric) is not None]
        if fams:
            text = ", ".join(f"{f} {fmt_value(metric, m(f, metric))}" for f in fams)
            threads = [f"{f} {_threads(summary, f, metric)}" for f in fams if _threads(summary, f, metric)]
            if threads:
                text += "; native threads per client: " + ", ".join(threads)
            results.append(_goal(info(metric)[0], "all", text, "reported beside K-T", None))
    return results


def _threads(summary: Dict[str, Any], family: str, metric: str) -> str:
    cell = _cell(summary, family, metric)
    values = sorted(r["threads"] for r in (cell or {}).get("rounds", []) if r.get("threads") is not None)
    return f"{values[len(values) // 2]:g}" if values else ""


def stats_overhead(summary: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    cell = _cell(summary, "ours-shared", "stats_overhead")
    if not cell or not cell["rounds"]:
        return None
    keys = ("dispatch_default", "dispatch_threshold_off", "dispatch_record_stubbed")
    out: Dict[str, Any] = {}
    for key in keys:
        values = sorted(r[key] for r in cell["rounds"] if r.get(key))
        out[key] = values[len(values) // 2] if values else None
    if out["dispatch_default"] and out["dispatch_record_stubbed"]:
        out["cost_of_stats_pct"] = 100.0 * (1 - out["dispatch_default"] / out["dispatch_record_stubbed"])
    if out["dispatch_default"] and out["dispatch_threshold_off"]:
        out["threshold_off_gain_pct"] = 100.0 * (out["dispatch_threshold_off"] / out["dispatch_default"] - 1)
    return out


def fmt_value(metric: str, value: float) -> str:
    unit = info(metric)[1]
    if unit in ("callbacks/s", "round trips/s", "ops/s"):
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    if unit == "µs":
        return f"{value:.1f} µs" if value < 100 else f"{value:.0f} µs"
    if unit == "bytes":
        return f"{value / 1024:.1f} KiB" if value >= 10 * 1024 else f"{value:.0f} B"
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def fmt_cell(summary: Dict[str, Any], family: str, metric: str, ratio: Optional[float]) -> str:
    cell = _cell(summary, family, metric)
    if cell is None:
        return ""
    if cell["median"] is None:
        return cell["status"]
    text = fmt_value(metric, cell["median"])
    if family != "K-E" and ratio is not None:
        text += f" ({ratio:.2f}x)"
    failed = [r.get("status", "error") for r in cell["rounds"] if r.get("status") != "ok"]
    if failed:
        text += f" [{len(failed)}/{len(cell['rounds'])} {max(set(failed), key=failed.count)}]"
    if metric.startswith("scale_"):
        rounds = [r for r in cell["rounds"] if r.get("status") == "ok"]
        errors = sum(r.get("errors", 0) + r.get("timeouts", 0) + r.get("hung", 0) for r in rounds)
        if errors:
            text += f" [{errors} err]"
    return text


def _table(headers: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])


def render_table(doc: Dict[str, Any]) -> str:
    summary, rat = doc["metrics"], doc["ratios_vs_KE"]
    families = [f for f in COLUMNS if f in summary]
    machine = doc["machine"]
    versions = machine["versions"]
    out = [
        f"eventlet_handler benchmarks, {doc['date']} ({doc['config']['rounds']} round(s), medians; "
        f"(Nx) = times better than K-E in the same run)",
        f"machine: {machine['nproc']} cores, Python {machine['python']}, kazoo {versions.get('kazoo')}, "
        f"eventlet {versions.get('eventlet')}, gevent {versions.get('gevent')}, "
        f"ZooKeeper {versions.get('zookeeper')}; nothing monkey-patched",
        "",
    ]
    out.append(render_markdown(doc))
    scale_notes = []
    for family in families:
        for c in scale_levels(summary):
            cell = _cell(summary, family, f"scale_{c}")
            if not cell:
                continue
            for r in cell["rounds"]:
                if r.get("errors") or r.get("timeouts") or r.get("hung") or r.get("spawn_failed"):
                    scale_notes.append(
                        f"  {family} C={c}: errors={r.get('errors')} timeouts={r.get('timeouts')} "
                        f"hung={r.get('hung')} spawn_failed={r.get('spawn_failed')} first={r.get('first_error')}")
                    break
    if scale_notes:
        out += ["", "scale runs with errors (first failing round):"] + scale_notes
    out += ["", "[k/n status]: k of n rounds failed (median over the others); [N err]: scale "
            "errors + timeouts (an op over 3 s) + hung workers, summed over rounds"]
    failures = []
    for family in families:
        for metric, cell in summary.get(family, {}).items():
            for r in cell["rounds"]:
                if r.get("status") not in ("ok", "never") and r.get("detail"):
                    failures.append(f"  {family} {metric}: {r['status']}: {r['detail']}")
    if failures:
        out += ["failed rounds:"] + failures
    out += ["", "goals (issue 6):"]
    for g in doc["goals"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[g["met"]]
        out.append(f"  [{mark:6s}] {g['family']:13s} {g['goal']}: {g['measured']} (target {g['target']})")
    if doc.get("goals_issue10"):
        out += ["", "goals (issue 10: isolated mode >= K-T, shared mode's targets, vs the README's table):"]
        for g in doc["goals_issue10"]:
            mark = {True: "met", False: "MISSED", None: "info"}[g["met"]]
            out.append(f"  [{mark:6s}] {g['family']:13s} {g['goal']}: {g['measured']} (target {g['target']})")
    so = doc.get("stats_overhead")
    if so:
        out += ["", "stats overhead (ours-shared dispatch, callbacks/s): "
                f"default {fmt_value('dispatch', so['dispatch_default'])}, "
                f"slow_callback_threshold=None {fmt_value('dispatch', so['dispatch_threshold_off'])}, "
                f"stats recording stubbed out {fmt_value('dispatch', so['dispatch_record_stubbed'])}"
                + (f"; stats cost {so['cost_of_stats_pct']:.1f}% of dispatch throughput"
                   if so.get("cost_of_stats_pct") is not None else "")]
    return "\n".join(out)


def render_markdown(doc: Dict[str, Any]) -> str:
    """The results table (Markdown, so the README shows it as printed)."""
    summary, rat = doc["metrics"], doc["ratios_vs_KE"]
    families = [f for f in COLUMNS if f in summary]
    rows = [
        [f"{info(metric)[0]} ({info(metric)[1]})"]
        + [fmt_cell(summary, f, metric, rat.get(metric, {}).get(f)) for f in families]
        for metric in metrics_of(summary)
        if any(_cell(summary, f, metric) for f in families)
    ]
    return _table(["metric"] + families, rows)


def plot(doc: Dict[str, Any], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, rat = doc["metrics"], doc["ratios_vs_KE"]
    colors = {"ours-shared": "#1f77b4", "ours-isolated": "#6baed6", "K-E": "#999999",
              "K-G": "#2ca02c", "K-T": "#ff7f0e", "raw": "#7f7f7f", FLOOR: "#d9d9d9"}
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5), gridspec_kw={"width_ratios": [3, 1.3, 1.6]})

    ax = axes[0]
    ratio_metrics = [m for m in ("dispatch", "roundtrip", "rawlink_p50", "zk_get_p50", "pipelined_ops",
                                 "watch_fanout_ms", "scale_1000", "scale_10000")
                     if any(v for v in rat.get(m, {}).values())]
    fams = [f for f in ("ours-shared", "ours-isolated", "K-G", "K-T", "raw", FLOOR) if f in summary]
    width = 0.8 / max(1, len(fams))
    for i, fam in enumerate(fams):
        xs, ys = [], []
        for j, metric in enumerate(ratio_metrics):
            r = rat[metric].get(fam)
            if r:
                xs.append(j + (i - (len(fams) - 1) / 2) * width)
                ys.append(r)
        ax.bar(xs, ys, width, label=fam, color=colors[fam])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(ratio_metrics)))
    short = {"dispatch": "dispatch", "roundtrip": "get() round\ntrips", "rawlink_p50": "rawlink\np50",
             "zk_get_p50": "ZK get()\np50", "pipelined_ops": "10k pipelined\nget_async()",
             "watch_fanout_ms": "1000-watch\nfan-out", "scale_1000": "scale\nC=1000", "scale_10000": "scale\nC=10000"}
    ax.set_xticklabels([short.get(m, m) for m in ratio_metrics], fontsize=8)
    ax.set_ylabel("times better than kazoo's eventlet handler (log)")
    ax.set_title("ratio to K-E, same run (higher is better)")
    ax.legend(fontsize=8)

    ax = axes[1]
    wake_fams = [f for f in ("ours-shared", "ours-isolated", "K-E", "K-G", "K-T", FLOOR) if f in summary]
    labelled: set = set()
    for j, metric in enumerate(("native_wake_p50", "waiters_1000_ms")):
        for i, fam in enumerate(wake_fams):
            x = j + (i - (len(wake_fams) - 1) / 2) * (0.8 / len(wake_fams))
            value = summary[fam].get(metric, {}).get("median")
            if value:
                ax.bar(x, value, 0.8 / len(wake_fams), color=colors[fam],
                       label=None if fam in labelled else fam)
                labelled.add(fam)
            elif metric in summary[fam]:  # measured, but no value: say why
                status = summary[fam][metric].get("status", "")
                ax.text(x, 0.03, f"{fam}: {status}", rotation=90, ha="center", va="bottom", fontsize=7,
                        transform=ax.get_xaxis_transform())
    ax.set_yscale("log")
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["native set() -> green\nwake p50 (µs)", "1000 waiters\nall woken (ms)"], fontsize=7)
    ax.set_title("cross-thread wake-up (lower is better)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)

    ax = axes[2]
    for fam in ("ours-shared", "ours-isolated", "K-E", "K-G", "K-T"):
        if fam not in summary:
            continue
        pts = [(c, summary[fam].get(f"{SCALE_PREFIX}{c}", {}).get("median")) for c in scale_levels(summary)]
        pts = [(c, v) for c, v in pts if v]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=fam, color=colors[fam])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent green threads on one client (K-T: native threads)")
    ax.set_ylabel("ops/s (get+set, log)")
    ax.set_title("scale")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)

    fig.suptitle(f"eventlet_handler vs kazoo handlers — {doc['date']}, {doc['machine']['nproc']} cores, "
                 f"Python {doc['machine']['python']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
