"""One handler family's benchmarks, in a process of its own (run.py starts it).

    python benchmarks/family.py FAMILY GROUP --hosts 127.0.0.1:PORT [--quick] [--concurrency C]

FAMILY: ours-shared, ours-isolated, K-E, K-G, K-T, raw, eventlet-floor (the floor: what bare
        eventlet primitives do in one hub, no handler; local group only).
GROUP:  local (no ZooKeeper), zk, scale (one concurrency per process), memory.

Each metric is printed as one JSON line as soon as it is measured, so a
later crash or hang loses only what had not been measured yet. Nothing is
monkey-patched: eventlet and gevent run unpatched, as a library user who
passes a handler would run them. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import queue as native_queue
import statistics
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

now = time.perf_counter

SEQ_PATH = "/bench/seq"
WATCH_PATH = "/bench/watch"
SCALE_PATH = "/bench/scale/n{}"


def emit(metric: str, value: Any = None, unit: str = "", status: str = "ok", **extra: Any) -> None:
    line = {"metric": metric, "status": status, "value": value, "unit": unit}
    line.update(extra)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def p50(samples: List[float]) -> float:
    return statistics.median(samples)


def latencies(call: Callable[[], Any], n: int, warmup: int) -> List[float]:
    """Seconds each of ``n`` sequential ``call()``s took, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        started = now()
        call()
        samples.append(now() - started)
    return samples


# -- runtimes: how a family spawns its "green threads" and sleeps cooperatively --


class Runtime:
    name = ""

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError


class EventletRuntime(Runtime):
    name = "eventlet"

    def __init__(self) -> None:
        import eventlet

        self._eventlet = eventlet
        # The measuring thread is an eventlet app's main thread: it has a hub, so its
        # waits are green waits (an isolated handler would otherwise see a plain native
        # thread and park it on a native lock).
        eventlet.hubs.get_hub()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._eventlet.spawn(fn, *args)

    def sleep(self, seconds: float) -> None:
        self._eventlet.sleep(seconds)


class GeventRuntime(Runtime):
    name = "gevent"

    def __init__(self) -> None:
        import gevent

        self._gevent = gevent

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._gevent.spawn(fn, *args)

    def sleep(self, seconds: float) -> None:
        self._gevent.sleep(seconds)


class ThreadRuntime(Runtime):
    name = "threading"

    def spawn(self, fn: Callable[..., Any], *args: Any) -> Any:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _BareEvent:
    """``threading.Event``'s API on one ``eventlet.event.Event``: one hub only."""

    def __init__(self) -> None:
        from eventlet import event

        self._event = event.Event()

    def set(self) -> None:
        if not self._event.ready():
            self._event.send(True)

    def clear(self) -> None:
        if self._event.ready():
            self._event.reset()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._event.wait(timeout) is not None or self._event.ready()


class _BareTimeout(Exception):
    pass


class _BareResult:
    """A result made of one ``eventlet.event.Event``; rawlinks go to the bare worker."""

    def __init__(self, worker_queue: Any) -> None:
        from eventlet import event

        self._event = event.Event()
        self._queue = worker_queue
        self._links: List[Callable[[Any], Any]] = []

    def set(self, value: Any = None) -> None:
        self._event.send(value)
        for link in self._links:
            self._queue.put((link, (self,)))

    def ready(self) -> bool:
        return bool(self._event.ready())

    def rawlink(self, callback: Callable[[Any], Any]) -> None:
        self._links.append(callback)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        value = self._event.wait(timeout)
        if not self._event.ready():
            raise _BareTimeout(f"no result after {timeout} s")
        return value


class BareEventlet:
    """The floor: the least a handler built on eventlet's own primitives must do.

    ``spawn`` is ``eventlet.spawn_n``, results and events are single
    ``eventlet.event.Event`` objects, callbacks go through one ``LightQueue`` to
    one worker green thread. No locks, no cross-hub support, no stats: only
    correct while everything runs in one hub, so its 1000-waiter metric is set
    from that hub (``same_hub_setter``), not from a native thread.
    """

    timeout_exception = _BareTimeout
    same_hub_setter = True

    def __init__(self) -> None:
        from eventlet.queue import LightQueue

        self._queue: Any = LightQueue()

    def start(self) -> None:
        import eventlet

        eventlet.spawn_n(self._work)

    def stop(self) -> None:
        pass  # the process exits right after the metrics

    def _work(self) -> None:
        get = self._queue.get
        while True:
            func, args = get()
            func(*args)

    def dispatch_callback(self, callback: Any) -> None:
        self._queue.put((callback.func, callback.args))

    def spawn(self, func: Callable[..., Any], *args: Any) -> None:
        import eventlet

        eventlet.spawn_n(func, *args)

    def async_result(self) -> _BareResult:
        return _BareResult(self._queue)

    def event_object(self) -> _BareEvent:
        return _BareEvent()


def make_family(family: str, **options: Any) -> "tuple[Runtime, Any]":
    """(runtime, handler) for a family; the handler is not started."""
    if family == "eventlet-floor":
        return EventletRuntime(), BareEventlet()
    if family.startswith("ours-"):
        runtime: Runtime = EventletRuntime()
        from eventlet_handler import EventletHandler

        return runtime, EventletHandler(mode=family.split("-", 1)[1], **options)
    if family == "K-E":
        runtime = EventletRuntime()
        from kazoo.handlers.eventlet import SequentialEventletHandler

        return runtime, SequentialEventletHandler()
    if family == "K-G":
        runtime = GeventRuntime()
        from kazoo.handlers.gevent import SequentialGeventHandler

        return runtime, SequentialGeventHandler()
    if family == "K-T":
        from kazoo.handlers.threading import SequentialThreadingHandler

        return ThreadRuntime(), SequentialThreadingHandler()
    raise SystemExit(f"unknown family {family!r}")


# -- local metrics (a started handler, no ZooKeeper) ------------------------------


def measure_dispatch(handler: Any, n: int, timeout: float = 30.0) -> Optional[float]:
    """dispatch_callback() n kazoo Callbacks; callbacks/s until the last one ran."""
    from kazoo.protocol.states import Callback

    done = handler.event_object()
    ran = [0]

    def callback() -> None:
        ran[0] += 1

    def last() -> None:
        ran[0] += 1
        done.set()

    callbacks = [Callback("watch", callback, ()) for _ in range(n - 1)]
    callbacks.append(Callback("watch", last, ()))
    dispatch = handler.dispatch_callback
    started = now()
    for cb in callbacks:
        dispatch(cb)
    if not done.wait(timeout):
        return None
    return n / (now() - started)


def metric_dispatch(runtime: Runtime, handler: Any, quick: bool) -> None:
    n = 20_000 if quick else 100_000
    measure_dispatch(handler, 2_000)  # warm-up
    rate = measure_dispatch(handler, n)
    if rate is None:
        emit("dispatch", status="timeout", unit="callbacks/s")
    else:
        emit("dispatch", rate, "callbacks/s", n=n)


def metric_roundtrip(runtime: Runtime, handler: Any, quick: bool) -> None:
    """A result set by a green thread the handler spawned; get() round trips/s."""
    n, budget = (5_000, 1.0) if quick else (30_000, 2.5)
    timeout_exc = handler.timeout_exception
    done = 0
    started = now()
    try:
        for done in range(1, n + 1):
            result = handler.async_result()
            handler.spawn(result.set, done)
            result.get(timeout=5.0)
            if not done % 200 and now() - started > budget:
                break
    except timeout_exc:
        emit("roundtrip", status="timeout", unit="round trips/s", done=done)
        return
    emit("roundtrip", done / (now() - started), "round trips/s", n=done)


def metric_rawlink(runtime: Runtime, handler: Any, quick: bool) -> None:
    """set() -> the rawlink callback starts running, p50 (same thread sets and waits)."""
    n = 500 if quick else 3_000
    ran = handler.event_object()
    stamp = [0.0]

    def callback(result: Any) -> None:
        stamp[0] = now()
        ran.set()

    samples = []
    for _ in range(n):
        ran.clear()
        result = handler.async_result()
        result.rawlink(callback)
        started = now()
        result.set(1)
        if not ran.wait(2.0):
            emit("rawlink_p50", status="never", unit="us", samples=len(samples))
            return
        samples.append(stamp[0] - started)
    emit("rawlink_p50", p50(samples) * 1e6, "us", n=n, p90=sorted(samples)[int(0.9 * n)] * 1e6)


class NativeSetter:
    """A native thread that sets the results it is handed, 1 ms after receiving each."""

    def __init__(self) -> None:
        self.queue: "native_queue.Queue[Any]" = native_queue.Queue()
        self.thread = threading.Thread(target=self._run, name="native-setter", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            result = self.queue.get()
            if result is None:
                return
            time.sleep(0.001)  # let the waiter park
            result.set(now())

    def close(self) -> None:
        self.queue.put(None)


def metric_native_wake(runtime: Runtime, handler: Any, quick: bool) -> None:
    """A native thread calls set(); the waiting green thread wakes, p50."""
    n = 100 if quick else 400
    timeout = 0.2
    timeout_exc = handler.timeout_exception
    setter = NativeSetter()
    samples: List[float] = []
    misses = 0
    try:
        for _ in range(n):
            result = handler.async_result()
            setter.queue.put(result)
            try:
                set_at = result.get(timeout=timeout)
                woke = now()
            except timeout_exc:
                misses += 1
            else:
                if woke - set_at >= timeout * 0.5:  # woke only because its timeout ran out
                    misses += 1
                else:
                    samples.append(woke - set_at)
            if misses >= 3 and not samples:
                break
            if misses:
                runtime.sleep(0.01)  # let a late set() land before the next sample
    finally:
        setter.close()
    if not samples or misses > len(samples):
        emit("native_wake_p50", status="never", unit="us", woke=len(samples), missed=misses)
    else:
        emit("native_wake_p50", p50(samples) * 1e6, "us", woke=len(samples), missed=misses)


def metric_waiters(runtime: Runtime, handler: Any, quick: bool) -> None:
    """1000 green waiters on one result; a native thread sets it; ms until the last woke."""
    count = 1000
    timeout = 2.0
    timeout_exc = handler.timeout_exception
    result = handler.async_result()
    woke: List[float] = []
    finished = [0]

    def waiter() -> None:
        try:
            result.get(timeout=timeout)
            woke.append(now())
        except timeout_exc:
            pass
        finally:
            finished[0] += 1

    if runtime.name == "threading":
        threading.stack_size(512 * 1024)
    for _ in range(count):
        runtime.spawn(waiter)
    runtime.sleep(0.2)  # every waiter parked
    setter = None if getattr(handler, "same_hub_setter", False) else NativeSetter()
    if setter is None:
        runtime.spawn(lambda: (runtime.sleep(0.001), result.set(now())))
    else:
        setter.queue.put(result)
    deadline = now() + timeout + 3.0
    while finished[0] < count and now() < deadline:
        runtime.sleep(0.005)
    if setter is not None:
        setter.close()
    set_at = result.get(timeout=0) if _ready(result) else None
    if set_at is None:
        emit("waiters_1000_ms", status="error", unit="ms", detail="the native setter never ran")
        return
    in_time = [t for t in woke if t - set_at < timeout * 0.5]
    if len(in_time) < count:
        status = "never" if not in_time else "partial"
        emit("waiters_1000_ms", status=status, unit="ms", woke=len(in_time), of=count)
    else:
        emit("waiters_1000_ms", (max(in_time) - set_at) * 1e3, "ms", woke=len(in_time))


def _ready(result: Any) -> bool:
    return bool(result.ready())


def metric_stats_overhead(runtime: Runtime, quick: bool, family: str) -> None:
    """Dispatch throughput: stats on (default), threshold off, and stats recording stubbed."""
    from eventlet_handler import EventletHandler
    from eventlet_handler import stats as stats_module

    n = 20_000 if quick else 100_000
    reps = 1 if quick else 3
    mode = family.split("-", 1)[1]
    original = stats_module.QueueStats.record
    rates: Dict[str, List[float]] = {"default": [], "threshold_off": [], "record_stubbed": []}
    for _ in range(reps):
        for variant in rates:
            if variant == "record_stubbed":
                stats_module.QueueStats.record = lambda self, func, seconds, failed: None  # type: ignore
            try:
                options = {"slow_callback_threshold": None} if variant == "threshold_off" else {}
                handler = EventletHandler(mode=mode, **options)
                handler.start()
                try:
                    rate = measure_dispatch(handler, n)
                finally:
                    handler.stop(timeout=10)
            finally:
                stats_module.QueueStats.record = original  # type: ignore
            if rate is not None:
                rates[variant].append(rate)
    medians = {k: (statistics.median(v) if v else None) for k, v in rates.items()}
    emit("stats_overhead", medians["default"], "callbacks/s", **{f"dispatch_{k}": v for k, v in medians.items()})


# -- ZooKeeper metrics ------------------------------------------------------------


def start_client(hosts: str, handler: Any) -> Any:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts, handler=handler, timeout=10.0)
    client.start(timeout=15)
    return client


def metric_zk_get(client: Any, quick: bool) -> None:
    n = 500 if quick else 3_000
    samples = latencies(lambda: client.get_async(SEQ_PATH).get(timeout=5), n, warmup=100)
    emit("zk_get_p50", p50(samples) * 1e6, "us", n=n)


def metric_pipelined(client: Any, quick: bool) -> None:
    n = 10_000
    started = now()
    results = [client.get_async(SEQ_PATH) for _ in range(n)]
    deadline = started + 60.0
    for result in results:
        result.get(timeout=max(0.01, deadline - now()))
    emit("pipelined_ops", n / (now() - started), "ops/s", n=n)


def metric_watch_fanout(client: Any, handler: Any, quick: bool) -> None:
    count = 1000
    ran = [0]
    last = [0.0]
    all_ran = handler.event_object()

    def make_watcher() -> Callable[[Any], None]:
        def watcher(event: Any) -> None:
            ran[0] += 1
            if ran[0] == count:
                last[0] = now()
                all_ran.set()
        return watcher

    watchers = [make_watcher() for _ in range(count)]
    pending = [client.get_async(WATCH_PATH, watch=w) for w in watchers]
    for result in pending:
        result.get(timeout=20)
    started = now()
    client.set_async(WATCH_PATH, b"fired").get(timeout=10)
    if not all_ran.wait(10):
        emit("watch_fanout_ms", status="timeout", unit="ms", ran=ran[0])
        return
    emit("watch_fanout_ms", (last[0] - started) * 1e3, "ms", n=count)


def raw_zk_metrics(hosts: str, quick: bool) -> None:
    from rawzk import RawZooKeeper

    from kazoo.protocol.serialization import GetData

    zk = RawZooKeeper(hosts)
    try:
        n = 500 if quick else 3_000
        samples = latencies(lambda: zk.get(SEQ_PATH), n, warmup=100)
        emit("zk_get_p50", p50(samples) * 1e6, "us", n=n)
        n = 10_000
        started = now()
        zk.pipeline([GetData(SEQ_PATH, False) for _ in range(n)])
        emit("pipelined_ops", n / (now() - started), "ops/s", n=n)
    finally:
        zk.close()


# -- memory -------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _thread_count(family: str) -> int:
    """Live native threads, the handler's hub threads (unpatched threading) included."""
    idents = {t.ident for t in threading.enumerate()}
    if family.startswith("ours-"):
        from eventlet import patcher

        idents |= {t.ident for t in patcher.original("threading").enumerate()}
    return len(idents)


def metric_memory(runtime: Runtime, hosts: str, family: str, quick: bool) -> None:
    """Bytes per pending request and per idle client, beside kazoo's handlers.

    Pending request: what the handler adds to each request kazoo holds in flight,
    one ``async_result()`` (kazoo's request objects are the same for every handler);
    tracemalloc over 10,000 of them. Idle client: a started, connected, idle
    ``KazooClient`` with the family's handler; process RSS (thread stacks included)
    and tracemalloc, over 8 clients started one after the other.
    """
    import gc
    import tracemalloc

    _, handler = make_family(family)
    handler.start()
    count = 10_000
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    results = [handler.async_result() for _ in range(count)]
    per_result = (tracemalloc.get_traced_memory()[0] - base) / count
    tracemalloc.stop()
    del results
    handler.stop()
    emit("mem_pending_request", per_result, "bytes", n=count)

    clients = []
    n = 4 if quick else 8
    first = start_client(hosts, make_family(family)[1])  # imports, first-use caches
    runtime.sleep(0.2)
    gc.collect()
    rss = _rss_bytes()
    tracemalloc.start()
    traced = tracemalloc.get_traced_memory()[0]
    threads = _thread_count(family)
    for _ in range(n):
        clients.append(start_client(hosts, make_family(family)[1]))
    runtime.sleep(0.5)  # idle: pings only
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced
    tracemalloc.stop()
    rss = _rss_bytes() - rss
    emit("mem_idle_client", rss / n, "bytes", n=n, traced_bytes=traced / n,
         threads=(_thread_count(family) - threads) / n)
    for client in clients + [first]:
        bounded_cleanup(client.stop)


# -- scale ----------------------------------------------------------------------------


def metric_scale(runtime: Runtime, client: Any, handler: Any, concurrency: int, duration: float) -> None:
    """C workers, each get()+set() on its own node in a loop for `duration` s.

    ops/s counts operations completed inside the window. Every wait is bounded
    (3 s); an error (kazoo raising, e.g. K-E's ConnectionClosedError when its
    wake socket overflows) is counted and the worker backs off 10 ms.
    """
    op_timeout = 3.0
    timeout_exc = handler.timeout_exception
    counters = [[0, 0, 0] for _ in range(concurrency)]  # ops in window, errors, timeouts
    done = [False] * concurrency
    first_error: List[str] = []

    def worker(index: int) -> None:
        path = SCALE_PATH.format(index)
        mine = counters[index]
        try:
            while now() < stop_at:
                try:
                    client.get_async(path).get(timeout=op_timeout)
                    if now() <= stop_at:
                        mine[0] += 1
                    client.set_async(path, b"v").get(timeout=op_timeout)
                    if now() <= stop_at:
                        mine[0] += 1
                except timeout_exc:
                    mine[2] += 1
                except Exception as exc:
                    mine[1] += 1
                    if not first_error:
                        first_error.append(repr(exc))
                    runtime.sleep(0.01)
        finally:
            done[index] = True

    if runtime.name == "threading":
        threading.stack_size(512 * 1024)
    started = now()
    stop_at = started + duration
    spawn_failed = 0
    for index in range(concurrency):
        try:
            runtime.spawn(worker, index)
        except Exception as exc:  # e.g. cannot start more native threads
            spawn_failed += 1
            done[index] = True
            if not first_error:
                first_error.append(f"spawn: {exc!r}")
    spawned_at = now()
    deadline = stop_at + op_timeout + 5.0
    while not all(done) and now() < deadline:
        runtime.sleep(0.02)
    ops = sum(c[0] for c in counters)
    errors = sum(c[1] for c in counters)
    timeouts = sum(c[2] for c in counters)
    hung = done.count(False)
    emit(
        f"scale_{concurrency}", ops / duration, "ops/s",
        concurrency=concurrency, ops=ops, errors=errors, timeouts=timeouts, hung=hung,
        spawn_failed=spawn_failed, spawn_seconds=round(spawned_at - started, 3),
        first_error=first_error[0] if first_error else None,
    )


# -- main ---------------------------------------------------------------------------------


def guarded(name: str, fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - report every failure as a cell
        if isinstance(exc, KeyboardInterrupt):
            raise
        emit(name, status="error", detail=f"{type(exc).__name__}: {exc}"[:300])
        traceback.print_exc(file=sys.stderr)


def bounded_cleanup(fn: Callable[[], Any], seconds: float = 2.0) -> None:
    """Run a cleanup step; if it hangs, a native timer ends the process anyway."""
    timer = threading.Timer(seconds, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    try:
        fn()
    except BaseException:
        traceback.print_exc(file=sys.stderr)
    timer.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("family")
    parser.add_argument("group", choices=["local", "zk", "scale", "memory"])
    parser.add_argument("--hosts", default="")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=2.5)
    parser.add_argument("--only", default="", help="comma-separated metric names (local group)")
    args = parser.parse_args()
    quick = args.quick

    if args.family == "raw":
        if args.group == "zk":
            guarded("zk_get_p50", raw_zk_metrics, args.hosts, quick)
        emit("done")
        os._exit(0)

    if args.group == "memory":
        runtime = make_family(args.family)[0]
        guarded("mem_pending_request", metric_memory, runtime, args.hosts, args.family, quick)
        emit("done")
        sys.stdout.flush()
        os._exit(0)

    runtime, handler = make_family(args.family)
    cleanups: List[Callable[[], Any]] = []
    if args.group == "local":
        handler.start()
        cleanups.append(handler.stop)
        local = [
            ("dispatch", metric_dispatch),
            ("roundtrip", metric_roundtrip),
            ("rawlink_p50", metric_rawlink),
            ("native_wake_p50", metric_native_wake),
            ("waiters_1000_ms", metric_waiters),
        ]
        if args.family == "eventlet-floor":  # a native setter cannot wake bare eventlet
            local = [item for item in local if item[0] != "native_wake_p50"]
        only = set(filter(None, args.only.split(",")))
        for name, fn in local:
            if not only or name in only:
                guarded(name, fn, runtime, handler, quick)
        if args.family == "ours-shared" and (not only or "stats_overhead" in only):
            guarded("stats_overhead", metric_stats_overhead, runtime, quick, args.family)
    else:
        client = start_client(args.hosts, handler)
        cleanups.append(client.stop)
        cleanups.append(client.close)
        if args.group == "zk":
            guarded("zk_get_p50", metric_zk_get, client, quick)
            guarded("pipelined_ops", metric_pipelined, client, quick)
            guarded("watch_fanout_ms", metric_watch_fanout, client, handler, quick)
            if args.family.startswith("ours-"):
                emit("handler_stats", status="info", stats=handler.stats())
        else:
            name = f"scale_{args.concurrency}"
            guarded(name, metric_scale, runtime, client, handler, args.concurrency, args.duration)
    emit("done")
    for step in cleanups:
        bounded_cleanup(step)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
