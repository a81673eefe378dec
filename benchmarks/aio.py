"""asyncio callers: sequential ``await get_async()`` latency and 10k gathered gets (issue 12).

    .venv/bin/python benchmarks/aio.py [--hosts 127.0.0.1:PORT] [--quick] [--rounds N]

Contenders, each in a fresh process, all interleaved in every round (the order
rotating per round) against one ZooKeeper, medians over rounds:

* ``aio-plain``:   a coroutine on a plain ``asyncio.run`` loop, isolated handler
                   (``await client.get_async(p)``; ``gather`` of ``aio.future(...)``);
* ``aio-hub-S`` / ``aio-hub-I``: a coroutine on eventlet's asyncio hub
                   (``EVENTLET_HUB=asyncio``), shared / isolated handler;
* ``green-S`` / ``green-I``: our own green-thread figures (an eventlet main thread:
                   ``client.get()``; 10k ``get_async()`` then ``get()`` each);
* ``green-hub-S`` / ``green-hub-I``: the same green threads on eventlet's asyncio hub;
* ``K-T+to_thread``: kazoo's threading handler driven from a plain loop the way a
                   user does today (``await asyncio.to_thread(client.get, p)``);
* ``aiozk``:       aiozk 0.32 (``await zk.get_data(p)``), the asyncio-native client.

Without ``--hosts`` it starts its own ZooKeeper. Prints a table with ratios and writes
``benchmarks/results/aio.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

HERE = Path(__file__).resolve().parent
PATH = "/bench-aio/seq"
CONTENDERS = ["aio-plain", "aio-hub-S", "aio-hub-I", "green-S", "green-I", "green-hub-S", "green-hub-I",
              "K-T+to_thread", "aiozk"]
GATHERED = 10_000
now = time.perf_counter


def emit(metric: str, value: float) -> None:
    sys.stdout.write(json.dumps({"metric": metric, "value": value}) + "\n")
    sys.stdout.flush()


# -- children ------------------------------------------------------------------------


def _kazoo_client(hosts: str, mode: Any) -> Any:
    from kazoo.client import KazooClient

    if mode is None:
        return KazooClient(hosts)  # kazoo's threading handler
    from eventlet_handler import EventletHandler

    return KazooClient(hosts, handler=EventletHandler(mode))


async def _measure_async(get: Callable[[], Any], gather: Callable[[int], Any], seq: int) -> None:
    for _ in range(200):
        await get()
    samples = []
    for _ in range(seq):
        began = now()
        await get()
        samples.append(now() - began)
    emit("seq_p50_us", statistics.median(samples) * 1e6)
    rates = []
    for _ in range(3):
        began = now()
        replies = await gather(GATHERED)
        assert len(replies) == GATHERED
        rates.append(GATHERED / (now() - began))
    emit("gathered_ops", statistics.median(rates))


def _ours_async(hosts: str, mode: str, seq: int) -> Callable[[], Any]:
    import asyncio

    from eventlet_handler import aio

    async def main() -> None:
        client = _kazoo_client(hosts, mode)
        await aio.start(client, timeout=30)
        try:
            await _measure_async(
                lambda: client.get_async(PATH),
                lambda n: asyncio.gather(*(aio.future(client.get_async(PATH)) for _ in range(n))),
                seq,
            )
        finally:
            await aio.stop(client)
            client.close()

    return main


def _to_thread(hosts: str, seq: int) -> Callable[[], Any]:
    import asyncio

    async def main() -> None:
        client = _kazoo_client(hosts, None)
        await asyncio.to_thread(client.start, 30)
        try:
            await _measure_async(
                lambda: asyncio.to_thread(client.get, PATH),
                lambda n: asyncio.gather(*(asyncio.to_thread(client.get, PATH) for _ in range(n))),
                seq,
            )
        finally:
            await asyncio.to_thread(client.stop)
            client.close()

    return main


def _aiozk(hosts: str, seq: int) -> Callable[[], Any]:
    import asyncio

    import aiozk

    async def main() -> None:
        zk = aiozk.ZKClient(hosts)
        await zk.start()
        try:
            await _measure_async(
                lambda: zk.get_data(PATH),
                lambda n: asyncio.gather(*(zk.get_data(PATH) for _ in range(n))),
                seq,
            )
        finally:
            await zk.close()

    return main


def _green(hosts: str, mode: str, seq: int) -> None:
    import eventlet

    from family import latencies

    eventlet.sleep(0)  # the measuring thread is an eventlet main thread: its waits are green
    client = _kazoo_client(hosts, mode)
    client.start(timeout=30)
    try:
        emit("seq_p50_us", statistics.median(latencies(lambda: client.get(PATH), seq, warmup=200)) * 1e6)
        rates = []
        for _ in range(3):
            began = now()
            results = [client.get_async(PATH) for _ in range(GATHERED)]
            for result in results:
                result.get(timeout=60)
            rates.append(GATHERED / (now() - began))
        emit("gathered_ops", statistics.median(rates))
    finally:
        client.stop()
        client.close()


def child(name: str, hosts: str, quick: bool) -> None:
    import asyncio

    seq = 500 if quick else 2000
    if name == "aio-plain":
        asyncio.run(_ours_async(hosts, "isolated", seq)())
    elif name.startswith("aio-hub-"):
        import eventlet.asyncio

        mode = "shared" if name.endswith("S") else "isolated"
        eventlet.asyncio.spawn_for_awaitable(_ours_async(hosts, mode, seq)()).wait()
    elif name.startswith("green-"):  # green-hub-*: the parent sets EVENTLET_HUB=asyncio
        _green(hosts, "shared" if name.endswith("S") else "isolated", seq)
    elif name == "K-T+to_thread":
        asyncio.run(_to_thread(hosts, seq)())
    elif name == "aiozk":
        asyncio.run(_aiozk(hosts, seq)())
    else:
        raise SystemExit(f"unknown contender {name!r}; one of {CONTENDERS}")


# -- parent --------------------------------------------------------------------------


def run_contender(name: str, hosts: str, quick: bool) -> Dict[str, float]:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("EVENTLET_HUB", None)
    if "-hub-" in name:
        env["EVENTLET_HUB"] = "asyncio"
    argv = [sys.executable, __file__, "--contender", name, "--hosts", hosts] + (["--quick"] if quick else [])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    except subprocess.TimeoutExpired:
        sys.stderr.write(f"[aio bench] {name}: timed out\n")
        return {}
    values = {}
    for line in proc.stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        values[record["metric"]] = record["value"]
    if proc.returncode:
        sys.stderr.write(f"[aio bench] {name}: exit {proc.returncode}: {proc.stderr.strip()[-600:]}\n")
    return values


def ensure_node(hosts: str) -> None:
    from kazoo.client import KazooClient

    client = KazooClient(hosts)
    client.start(timeout=30)
    try:
        client.ensure_path(PATH)
        client.set(PATH, b"x" * 64)
    finally:
        client.stop()
        client.close()


def table(medians: Dict[str, Dict[str, float]]) -> str:
    def cell(name: str, metric: str) -> str:
        value = medians.get(name, {}).get(metric)
        return "error" if value is None else (f"{value:.0f} µs" if metric == "seq_p50_us" else f"{value / 1e3:.1f}k/s")

    def ratio(a: str, b: str, metric: str) -> str:
        x, y = medians.get(a, {}).get(metric), medians.get(b, {}).get(metric)
        if x is None or y is None:
            return "n/a"
        return f"{(y / x if metric == 'seq_p50_us' else x / y):.2f}x"  # >1: a is better

    lines = ["| contender | sequential await p50 | 10k gathered gets |", "|---|---|---|"]
    lines += [f"| {name} | {cell(name, 'seq_p50_us')} | {cell(name, 'gathered_ops')} |" for name in CONTENDERS]
    lines += ["", "| comparison (>1: the first is better) | seq p50 | gathered |", "|---|---|---|"]
    for a, b in [("aio-plain", "K-T+to_thread"), ("aio-hub-S", "K-T+to_thread"), ("aio-hub-I", "K-T+to_thread"),
                 ("aio-plain", "green-I"), ("aio-hub-S", "green-S"), ("aio-hub-I", "green-I"),
                 ("aio-hub-S", "green-hub-S"), ("aio-hub-I", "green-hub-I"),
                 ("aio-plain", "aiozk"), ("aio-hub-S", "aiozk"), ("aio-hub-I", "aiozk")]:
        lines.append(f"| {a} vs {b} | {ratio(a, b, 'seq_p50_us')} | {ratio(a, b, 'gathered_ops')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "aio.json"))
    args = parser.parse_args()
    if args.contender:
        child(args.contender, args.hosts, args.quick)
        return 0
    server = None
    if not args.hosts:
        sys.path.insert(0, str(HERE.parent))
        from eventlet_handler.testing.zookeeper import ZooKeeperServer

        server = ZooKeeperServer(tick_time_ms=2000, global_outstanding_limit=200_000)
        server.start()
        args.hosts = server.hosts
    rounds = args.rounds or (1 if args.quick else 3)
    samples: Dict[str, Dict[str, List[float]]] = {name: {} for name in CONTENDERS}
    try:
        ensure_node(args.hosts)
        for index in range(rounds):
            order = CONTENDERS[index % len(CONTENDERS):] + CONTENDERS[:index % len(CONTENDERS)]
            for name in order:
                for metric, value in run_contender(name, args.hosts, args.quick).items():
                    samples[name].setdefault(metric, []).append(value)
                sys.stderr.write(f"[aio bench] round {index + 1}/{rounds} {name}: "
                                 f"{ {m: round(v[-1], 1) for m, v in samples[name].items()} }\n")
    finally:
        if server is not None:
            server.stop()
    medians = {name: {m: statistics.median(v) for m, v in per.items()} for name, per in samples.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rounds": rounds, "quick": args.quick,
        "nproc": os.cpu_count(), "medians": medians, "samples": samples,
    }, indent=1) + "\n")
    print(table(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
