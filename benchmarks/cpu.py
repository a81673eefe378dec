"""CPU time per operation, per thread: a load-robust view of where a handler's time goes.

    python benchmarks/cpu.py --hosts HOST:PORT [--families ours-isolated,K-T] [--rounds 3]

Wall-clock latency on a shared machine measures the neighbours as much as the
handler; CPU time per operation (and context switches per operation) does not.
Each (family, metric) pair runs in a fresh subprocess, the families interleaved
round by round; the report gives medians and the ratio to K-T from the same run.

Per operation it reports: process CPU (user+sys, ``resource``), each thread's CPU
(``pthread_getcpuclockid``: the caller's thread, the handler's hub thread or
kazoo's connection thread, workers), voluntary and involuntary context switches.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = ["zk_get", "pipelined", "fanout", "roundtrip", "rawlink", "dispatch"]
ZK_METRICS = ("zk_get", "pipelined", "fanout")
NATIVE_CALLER = "ours-isolated-native"  # isolated mode, called from a thread with no hub


def thread_cpu() -> Dict[str, float]:
    """CPU seconds of every live Python thread, by name."""
    from eventlet import patcher  # the handler's hub threads use the unpatched module

    out: Dict[str, float] = {}
    threads = {t.ident: t for module in (threading, patcher.original("threading")) for t in module.enumerate()}
    for thread in threads.values():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            seconds = time.clock_gettime(clock)
        except (OSError, ProcessLookupError):
            continue
        name = "caller" if thread.ident == threading.main_thread().ident else re.sub(r"[-_ ]?\d+", "", thread.name)
        out[name] = out.get(name, 0.0) + seconds
    return out


def sample(run: Callable[[], int]) -> Dict[str, Any]:
    before_threads = thread_cpu()
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    n = run()
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    after_threads = thread_cpu()
    per = lambda x: x / n * 1e6  # noqa: E731  µs (or count) per op
    return {
        "n": n,
        "wall_us": per(wall),
        "cpu_us": per(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime),
        "threads_us": {k: per(v - before_threads.get(k, 0.0)) for k, v in after_threads.items()},
        "vcsw": (after.ru_nvcsw - before.ru_nvcsw) / n,
        "ivcsw": (after.ru_nivcsw - before.ru_nivcsw) / n,
    }


def child(family: str, metric: str, hosts: str, n: int, profile_dir: str = "") -> None:
    sys.path.insert(0, HERE)
    import family as fam

    if family == NATIVE_CALLER:  # the caller is a plain native thread: it waits natively
        from eventlet_handler import EventletHandler

        handler = EventletHandler(mode="isolated")
    else:
        runtime, handler = fam.make_family(family)
    for name in filter(None, os.environ.get("CPU_PROTOTYPES", "").split(",")):
        __import__(name)  # a prototype module that patches the package (measuring ideas)
    if metric in ZK_METRICS:
        client = fam.start_client(hosts, handler)
        for _ in range(200):
            client.get_async(fam.SEQ_PATH).get(timeout=5)

        def run() -> int:
            for _ in range(n):
                client.get_async(fam.SEQ_PATH).get(timeout=5)
            return n

        if metric == "pipelined":
            def run() -> int:
                results = [client.get_async(fam.SEQ_PATH) for _ in range(n * 5)]
                for result in results:
                    result.get(timeout=60)
                return n * 5
        elif metric == "fanout":  # per watch callback: 1000 watches, one set()
            def run() -> int:
                done = handler.event_object()
                count = [0]

                def watcher(event: Any) -> None:
                    count[0] += 1
                    if count[0] == 1000:
                        done.set()

                for result in [client.get_async(fam.WATCH_PATH, watch=lambda e: watcher(e))
                               for _ in range(1000)]:
                    result.get(timeout=20)
                client.set_async(fam.WATCH_PATH, b"x").get(timeout=10)
                done.wait(10)
                return 1000
    else:
        handler.start()
        if metric == "roundtrip":
            def run() -> int:
                for i in range(n):
                    result = handler.async_result()
                    handler.spawn(result.set, i)
                    result.get(timeout=5.0)
                return n
        elif metric == "rawlink":
            def run() -> int:
                ran = handler.event_object()
                for _ in range(n):
                    ran.clear()
                    result = handler.async_result()
                    result.rawlink(lambda r: ran.set())
                    result.set(1)
                    ran.wait(5)
                return n
        else:
            from kazoo.protocol.states import Callback

            def run() -> int:
                done = handler.event_object()
                for _ in range(n - 1):
                    handler.dispatch_callback(Callback("watch", int, ()))
                handler.dispatch_callback(Callback("watch", done.set, ()))
                done.wait(30)
                return n
        run_ = run
        run_()  # warm-up

    if profile_dir:
        profile_threads(handler, run, os.path.join(profile_dir, f"{family}-{metric}"))
    else:
        print(json.dumps(sample(run)), flush=True)
    os._exit(0)


def profile_threads(handler: Any, run: Callable[[], int], stem: str) -> None:
    """cProfile the caller and (isolated mode) the handler's hub thread; STEM-caller.pstats, STEM-hub.pstats."""
    import cProfile

    hub_profile = cProfile.Profile()
    home = getattr(handler, "_home", None)  # the handler's home (_home.Home): its hub thread and bridge
    hubthread = getattr(home, "hubthread", None)
    if hubthread is not None:  # enabled from the hub greenlet: profiles every green thread of that hub
        home.bridge.call_soon_threadsafe(hub_profile.enable)
        time.sleep(0.05)
    caller = cProfile.Profile()
    caller.enable()
    run()
    caller.disable()
    caller.dump_stats(f"{stem}-caller.pstats")
    if hubthread is not None:
        done = threading.Event()
        home.bridge.call_soon_threadsafe(lambda: (hub_profile.disable(), done.set()))
        done.wait(5)
        hub_profile.dump_stats(f"{stem}-hub.pstats")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--families", default="ours-isolated,ours-shared,K-T",
                        help="comma-separated; FAMILY@DIR imports eventlet_handler from DIR (a baseline)")
    parser.add_argument("--metrics", default=",".join(METRICS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "METRIC"))
    parser.add_argument("--profile", default="", metavar="DIR",
                        help="with --child: write cProfile stats of the caller and the hub thread to DIR")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.hosts, args.n, args.profile)
        return 0
    families = args.families.split(",")
    metrics = args.metrics.split(",")
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    for round_index in range(args.rounds):
        shift = round_index % len(families)
        for metric in metrics:
            for family in families[shift:] + families[:shift]:
                n = args.n * (30 if metric == "dispatch" else 1)
                name, _, base = family.partition("@")
                env = dict(os.environ)
                if base:  # FAMILY@DIR: the same family with the package found first in DIR
                    env["PYTHONPATH"] = os.pathsep.join(filter(None, [base, env.get("PYTHONPATH")]))
                out = subprocess.run(
                    [sys.executable, __file__, "--hosts", args.hosts, "-n", str(n), "--child", name, metric],
                    capture_output=True, text=True, timeout=180, env=env,
                )
                lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
                if not lines:
                    print(f"{family} {metric}: failed: {out.stderr[-300:]}", file=sys.stderr)
                    continue
                results.setdefault(metric, {}).setdefault(family, []).append(json.loads(lines[-1]))
    for metric, per in results.items():
        print(f"\n{metric} (per operation, median of {args.rounds} rounds; (x) = ratio to K-T, <1 is cheaper)")
        base = per.get("K-T")
        base_cpu = statistics.median(r["cpu_us"] for r in base) if base else None
        for family, rows in per.items():
            med = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
            names = sorted({k for r in rows for k in r["threads_us"]})
            threads = ", ".join(
                f"{k} {statistics.median(r['threads_us'].get(k, 0.0) for r in rows):.1f}" for k in names)
            ratio = f" ({med('cpu_us') / base_cpu:.2f}x)" if base_cpu else ""
            print(f"  {family:14s} cpu {med('cpu_us'):6.1f} µs{ratio}  wall {med('wall_us'):6.1f} µs  "
                  f"switches {med('vcsw'):.2f} vol {med('ivcsw'):.2f} invol  threads: {threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
