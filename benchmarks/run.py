"""Benchmark eventlet_handler against kazoo's handlers (issue 6).

    .venv/bin/python benchmarks/run.py            # make bench: 3 rounds, ~8-10 min
    .venv/bin/python benchmarks/run.py --quick    # make bench-quick: 1 round, smaller N

Starts its own ZooKeeper, then runs every (job, family) pair in a fresh
subprocess (benchmarks/family.py): gevent and eventlet never share a process,
and nothing is monkey-patched. Jobs are round-robin over the families, the
family order rotating each round, so drift (CPU heat, JIT-less caches,
ZooKeeper's GC) spreads over all of them. Reports medians over rounds and
ratios against kazoo's eventlet handler (K-E) measured in the same run.

Writes benchmarks/results/latest.json and latest.png and prints the table.
A family that crashes or runs out of time yields "error"/"timeout" cells.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
from rawzk import RawZooKeeper  # noqa: E402

FAMILIES = ["ours-shared", "ours-isolated", "K-E", "K-G", "K-T", "raw", "eventlet-floor"]
ONLY_GROUPS = {"raw": {"zk"}, "eventlet-floor": {"local"}}  # families that run one group only
MEMORY_FAMILIES = {"ours-shared", "ours-isolated", "K-E", "K-G", "K-T"}
LOCAL_METRICS = ["dispatch", "roundtrip", "rawlink_p50", "native_wake_p50", "waiters_1000_ms"]
ZK_METRICS = ["zk_get_p50", "pipelined_ops", "watch_fanout_ms"]
MEMORY_METRICS = ["mem_pending_request", "mem_idle_client"]
RAW_METRICS = ["zk_get_p50", "pipelined_ops"]
SCALE_LEVELS = [1, 100, 1000, 10000]


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


class Job:
    def __init__(self, group: str, budget: float, concurrency: int = 0) -> None:
        self.group = group
        self.budget = budget
        self.concurrency = concurrency

    @property
    def label(self) -> str:
        return f"scale C={self.concurrency}" if self.group == "scale" else self.group

    def metrics(self, family: str) -> List[str]:
        if self.group == "local":
            if family == "eventlet-floor":  # bare eventlet cannot be woken from a native thread
                return [m for m in LOCAL_METRICS if m != "native_wake_p50"]
            extra = ["stats_overhead"] if family == "ours-shared" else []
            return LOCAL_METRICS + extra
        if self.group == "zk":
            return RAW_METRICS if family == "raw" else ZK_METRICS
        if self.group == "memory":
            return MEMORY_METRICS
        return [f"scale_{self.concurrency}"]

    def applies_to(self, family: str) -> bool:
        if self.group == "memory":
            return family in MEMORY_FAMILIES
        return self.group in ONLY_GROUPS.get(family, {self.group})


def run_job(job: Job, family: str, hosts: str, quick: bool, duration: float) -> Dict[str, Dict[str, Any]]:
    """Run one family's job in a subprocess; {metric: record}. Never raises, never hangs."""
    argv = [sys.executable, str(HERE / "family.py"), family, job.group, "--hosts", hosts,
            "--duration", str(duration)]
    if quick:
        argv.append("--quick")
    if job.group == "scale":
        argv += ["--concurrency", str(job.concurrency)]
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    env.pop("EVENTLET_HANDLER_MODE", None)
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True, text=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=job.budget)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate(timeout=10)
    records: Dict[str, Dict[str, Any]] = {}
    finished = False
    for line in out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("metric") == "done":
            finished = True
            continue
        records[record["metric"]] = record
    for metric in job.metrics(family):
        if metric not in records:
            if timed_out:
                records[metric] = {"metric": metric, "status": "timeout", "value": None,
                                   "detail": f"job ran out of its {job.budget:.0f} s"}
            else:
                records[metric] = {"metric": metric, "status": "error", "value": None,
                                   "detail": f"exit {proc.returncode}: {_tail(err)}"}
    if (timed_out or not finished or proc.returncode) and err.strip():
        log(f"  {family} {job.label}: rc={proc.returncode} timed_out={timed_out}: {_tail(err)}")
    log(f"  {family:14s} {job.label:13s} {time.monotonic() - started:5.1f} s  "
        + " ".join(_brief(records[m]) for m in job.metrics(family) if m in records))
    return records


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])[-400:]


def _brief(record: Dict[str, Any]) -> str:
    if record.get("status") != "ok":
        return f"{record['metric']}={record.get('status')}"
    value = record.get("value")
    return f"{record['metric']}={value:.4g}" if isinstance(value, (int, float)) else record["metric"]


def prepare_tree(hosts: str, scale_max: int) -> None:
    zk = RawZooKeeper(hosts)
    try:
        nodes: List[Tuple[str, bytes]] = [
            ("/bench", b""), ("/bench/seq", b"x" * 64), ("/bench/watch", b""), ("/bench/scale", b""),
        ]
        nodes += [(f"/bench/scale/n{i}", b"v") for i in range(scale_max)]
        zk.create_many(nodes)
    finally:
        zk.close()


def aggregate(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Median of the rounds that measured a value; else the dominant failure status."""
    values = [r["value"] for r in rounds if r.get("status") == "ok" and isinstance(r.get("value"), (int, float))]
    statuses = [r.get("status", "error") for r in rounds]
    if values:
        median: Optional[float] = statistics.median(values)
        status = "ok"
    else:
        median = None
        failures = [s for s in statuses if s != "ok"] or ["error"]
        status = max(set(failures), key=failures.count)
    return {"median": median, "status": status, "values": values, "rounds": rounds}


def machine_info(server: Any) -> Dict[str, Any]:
    versions = {}
    for dist in ("kazoo", "eventlet", "gevent", "greenlet", "matplotlib", "eventlet-handler"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        srvr = server.four_letter("srvr")
        versions["zookeeper"] = srvr.splitlines()[0].split(":", 1)[1].strip().split("-")[0]
    except Exception:
        versions["zookeeper"] = None
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "eventlet_hub": os.environ.get("EVENTLET_HUB") or "default (epolls)",
        "versions": versions,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round, smaller N (about 3 minutes)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3, --quick 1)")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--scale", default=",".join(map(str, SCALE_LEVELS)), help="concurrency levels")
    parser.add_argument("--duration", type=float, default=None, help="seconds per scale run")
    parser.add_argument("--jobs", default="local,zk,scale,memory,aio", help="which job groups to run")
    parser.add_argument("--baseline", default=str(HERE.parent / "README.md"),
                        help="the README whose Performance table no row may fall behind (issue 10)")
    parser.add_argument("--out", default=str(HERE / "results"), help="directory for latest.json/png")
    parser.add_argument("--name", default="latest", help="output file stem")
    parser.add_argument("--report-only", metavar="JSON", help="re-print the table and chart of a results file")
    parser.add_argument("--markdown", action="store_true", help="with --report-only: print the README's table")
    args = parser.parse_args()
    if args.report_only:
        doc = json.loads(Path(args.report_only).read_text())
        doc["goals"] = report.goals(doc["metrics"])
        doc["goals_issue10"] = report.goals_issue10(doc["metrics"], report.readme_table(Path(args.baseline)))
        if args.markdown:
            print(report.render_markdown(doc))
            return 0
        print(report.render_table(doc))
        report.plot(doc, Path(args.report_only).with_suffix(".png"))
        return 0

    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (1.5 if args.quick else 2.5)
    families = [f for f in args.families.split(",") if f]
    levels = [int(c) for c in args.scale.split(",") if c]
    groups = set(args.jobs.split(","))
    jobs: List[Job] = []
    if "local" in groups:
        jobs.append(Job("local", 60.0 if args.quick else 120.0))
    if "zk" in groups:
        jobs.append(Job("zk", 90.0 if args.quick else 120.0))
    if "scale" in groups:
        jobs += [Job("scale", duration + 45.0, c) for c in levels]
    if "memory" in groups:
        jobs.append(Job("memory", 90.0))

    from eventlet_handler.testing.zookeeper import ZooKeeperServer

    began = time.monotonic()
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    server = ZooKeeperServer(tick_time_ms=2000, global_outstanding_limit=200_000)
    log("starting ZooKeeper")
    server.start()
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {f: {} for f in families}
    extras: Dict[str, List[Any]] = {}
    try:
        prepare_tree(server.hosts, max(levels) if "scale" in groups else 0)
        machine = machine_info(server)
        log(f"ZooKeeper {machine['versions'].get('zookeeper')} at {server.hosts}; "
            f"{rounds} round(s), {len(jobs)} jobs x {len(families)} families")
        for round_index in range(rounds):
            log(f"round {round_index + 1}/{rounds}")
            for job_index, job in enumerate(jobs):
                shift = (round_index + job_index) % len(families)
                for family in families[shift:] + families[:shift]:
                    if not job.applies_to(family):
                        continue
                    records = run_job(job, family, server.hosts, args.quick, duration)
                    for metric, record in records.items():
                        if record.get("status") == "info":
                            extras.setdefault(f"{family}:{metric}", []).append(record)
                            continue
                        results[family].setdefault(metric, []).append(record)
        if "aio" in groups:  # asyncio callers: benchmarks/aio.py, its own table and results/aio.json
            subprocess.run([sys.executable, str(HERE / "aio.py"), "--hosts", server.hosts] + ["--quick"] * args.quick)
    finally:
        log("stopping ZooKeeper")
        server.stop()

    summary = {
        family: {metric: aggregate(rounds_) for metric, rounds_ in per.items()}
        for family, per in results.items()
    }
    doc = {
        "date": date,
        "elapsed_seconds": round(time.monotonic() - began, 1),
        "machine": machine,
        "config": {
            "rounds": rounds, "quick": args.quick, "families": families, "scale_levels": levels,
            "scale_duration_seconds": duration, "zookeeper": {"tickTime": 2000, "globalOutstandingLimit": 200_000},
            "monkey_patched": False,
        },
        "metrics": summary,
        "extras": extras,
    }
    doc["ratios_vs_KE"] = report.ratios(summary)
    doc["goals"] = report.goals(summary)
    doc["goals_issue10"] = report.goals_issue10(summary, report.readme_table(Path(args.baseline)))
    doc["stats_overhead"] = report.stats_overhead(summary)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{args.name}.json"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    tmp.replace(json_path)
    print(report.render_table(doc))
    try:
        report.plot(doc, out / f"{args.name}.png")
    except Exception as exc:  # a chart must not lose the numbers
        log(f"chart failed: {exc!r}")
    log(f"wrote {json_path} and {args.name}.png in {doc['elapsed_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
