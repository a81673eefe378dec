"""The body of one run (imported by :mod:`chaos._run` after the mode's patching)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import eventlet
import eventlet.tpool
from eventlet import patcher
from kazoo.client import KazooClient

from eventlet_handler import EventletHandler
from eventlet_handler.testing.pytest_plugin import take_snapshot
from eventlet_handler.testing.zookeeper import ZooKeeperEnsemble

from . import _checks
from ._checks import Check, ServerState
from ._faults import Injector
from ._history import History
from ._schedule import SESSION_TIMEOUT, make_schedule
from ._workload import CALL_BOUND, Paths, Workload

_native_threading = patcher.original("threading")
_native_time = patcher.original("time")
_SETTLE = 30.0  # seconds for the client and the watches to catch up at the end
# Both bugs these worked around are fixed (tests/integration/test_chaos_regressions.py);
# "0" brings the workarounds back, to tell a new failure from them.
TREECACHE_AFTER_RESTART = os.environ.get("CHAOS_TREECACHE_AFTER_RESTART", "1") == "1"
STOP_WHILE_PAUSED = os.environ.get("CHAOS_STOP_WHILE_PAUSED", "1") == "1"


class Mode:
    """How this mode spawns, sleeps and blocks (Rule 2 of :mod:`chaos._run`).

    ``name`` is the run's mode (``shared``, ``shared-asyncio``, ``isolated``);
    ``handler_mode`` the handler's (``shared-asyncio`` is shared mode on eventlet's asyncio hub).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.handler_mode = "isolated" if name == "isolated" else "shared"

    def spawn_green(self, func: Any, *args: Any) -> Any:
        return eventlet.spawn(func, *args)

    def spawn_native(self, func: Any, *args: Any) -> Any:
        thread = _native_threading.Thread(target=func, args=args, daemon=True)
        thread.start()
        return thread

    def run_blocking(self, func: Any, *args: Any) -> Any:
        if self.handler_mode == "shared":  # patched: blocking calls are green
            return func(*args)
        return eventlet.tpool.execute(func, *args)

    def make_handler(self) -> EventletHandler:
        return EventletHandler(mode=self.handler_mode)


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        eventlet.sleep(0.05)
    return True


def _native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def read_state(client: KazooClient, paths: Paths) -> ServerState:
    client.sync(paths.root)
    seq = {}
    for name in client.get_children(paths.seq):
        data, stat = client.get(f"{paths.seq}/{name}")
        seq[name] = (data, stat.ctime / 1000.0)
    keys = {}
    for key in [*paths.hot, paths.counter]:
        data, stat = client.get(key)
        keys[key] = (data, stat.version, stat.mtime / 1000.0)
    tree: dict[str, bytes] = {}
    stack = [paths.tree]
    while stack:
        path = stack.pop()
        for child in client.get_children(path):
            child_path = f"{path}/{child}"
            tree[child_path] = client.get(child_path)[0]
            stack.append(child_path)
    return ServerState(seq, keys, tree)


def _is_thread(worker: Any) -> bool:
    """A caller that is a native thread (native callers, a plain asyncio loop's), not a green thread."""
    return hasattr(worker, "is_alive")


def _join(workers: list[tuple[str, Any]], timeout: float) -> list[str]:
    """Wait (green, polling) for every caller; name those still running at ``timeout``."""
    def alive(kind: str, worker: Any) -> bool:
        return bool(worker.is_alive()) if _is_thread(worker) else not worker.dead

    _wait(lambda: not any(alive(kind, w) for kind, w in workers), timeout)
    return [f"{kind} caller {w!r}" for kind, w in workers if alive(kind, w)]


def run(mode_name: str, seed: int, seconds: float, members: int, log_path: str) -> dict[str, Any]:
    logging.basicConfig(
        level=logging.WARNING, filename=log_path, filemode="w",
        format="%(relativeCreated)9.0f %(threadName)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("kazoo").setLevel(logging.INFO)  # connects and state changes: what a stall needs
    mode = Mode(mode_name)
    began = time.monotonic()
    groups = make_schedule(seed, seconds)
    if mode_name == "isolated":
        eventlet.tpool.execute(lambda: None)  # the tpool threads belong to the baseline
    from eventlet import hubs

    from eventlet_handler._bridge import bridge_of

    bridge_of(hubs.get_hub(), create=True)  # the main hub's bridge belongs to the baseline
    baseline, threads_before = take_snapshot(), _native_threads()
    history = History(_native_threading.Lock())
    paths = Paths(f"/chaos-{mode_name}-{seed}")
    checks: list[Check] = []
    unwatch = _watch_null_creates(history)
    ensemble = ZooKeeperEnsemble(members)
    ensemble.start(timeout=120)
    handler = mode.make_handler()
    client = KazooClient(
        hosts=ensemble.hosts, handler=handler, timeout=SESSION_TIMEOUT,
        command_retry={"max_tries": 20, "delay": 0.1, "max_delay": 1.0, "sleep_func": handler.sleep_func},
    )
    client.start(timeout=30)
    workload = Workload(
        client, history, paths, seed=seed,
        spawn_green=mode.spawn_green, spawn_native=mode.spawn_native,
        green_sleep=eventlet.sleep, native_sleep=_native_time.sleep,
    )
    injector = Injector(
        ensemble, client, history,
        run_blocking=mode.run_blocking, spawn_green=mode.spawn_green,
        green_sleep=eventlet.sleep, hog_sleep=_native_time.sleep,
        wait_for_resume_before_stop=not STOP_WHILE_PAUSED,
    )
    verifier = None
    stranded_detail: list[dict[str, Any]] = []
    watch_state: dict[str, Any] = {}
    start = time.monotonic()
    try:
        workload.prepare()
        workload.start()
        start = time.monotonic()
        for group in groups:
            _wait(lambda: time.monotonic() >= start + group[0].at, seconds + 60)
            injector.run_group(group)
        _wait(lambda: time.monotonic() >= start + seconds, seconds + 60)
        workload.stopping = True
        stranded = _join(workload.workers, CALL_BOUND + 10)
        stranded_detail = _describe_stranded(history, workload, start)
        end_of_run = time.monotonic()
        reconnected = _wait(lambda: client.connected, _SETTLE)
        checks.append(Check("client connected again after the run", reconnected, f"within {_SETTLE:.0f}s"))
        checks.append(_faults_repaired(history))
        verifier = KazooClient(hosts=ensemble.hosts, handler=mode.make_handler(), timeout=10.0)
        verifier.start(timeout=30)
        state = read_state(verifier, paths)
        restarted = any(e.detail["kind"] == "restart_client" for e in history.events_of("fault"))
        tree_checked = mode.handler_mode == "shared" or not restarted or TREECACHE_AFTER_RESTART
        _wait(lambda: all(c.passed for c in _watch_checks(workload, state, tree_checked) if c.passed is not None), _SETTLE)
        watch_state = _watch_state(client, ensemble, workload)
        checks += [
            _checks.acknowledged_writes(history.calls, state, paths.seq),
            _checks.uncertain_writes(history.calls, state),
            _checks.nothing_applied_after_stop(history.calls, history.events, state),
            *_checks.calls_bounded(history),
            Check("every caller finished", not stranded, "; ".join(stranded) or f"{len(workload.workers)} callers joined"),
            _checks.lock_ledger(workload.ledger, history.events, end_of_run, history.calls),
            *_attributed(_watch_checks(workload, state, tree_checked), watch_state, workload, history),
        ]
    except Exception as exc:  # the report is still written, with what failed
        checks.append(Check("the run completed", False, f"{type(exc).__name__}: {exc}"))
    finally:
        workload.stopping = True
        checks.extend(_teardown(workload, [client, verifier], ensemble))
    unwatch()
    checks.append(_leak_check(baseline, threads_before))
    if mode_name == "isolated":
        # Before tpool's own atexit hook would: it sleeps on the main hub, which the
        # routed _bridge bug has closed by then (tests/integration/test_chaos_regressions.py).
        eventlet.tpool.killall()
    meta = {
        "mode": mode_name, "seed": seed, "members": members, "seconds": seconds,
        "elapsed_s": time.monotonic() - began, "session_timeout_s": SESSION_TIMEOUT,
        "timeline": [(round(e.at - start, 3), e.what, e.detail) for e in history.events],
        "watch_last_fired_s": {k: round(v - start, 3) for k, v in workload.watch_times.items()},
        "callers": dict(workload.caller_kinds),
        "stranded": stranded_detail,
        "watch_state": watch_state,
    }
    from ._report import build

    return build(meta, history, checks, [fault.describe() for group in groups for fault in group])


def _watch_null_creates(history: History) -> Any:
    """Record each Create that ZooKeeper answers with success and a null path (an
    upstream failure, see ``_checks.calls_bounded``), by the token it wrote. Observes
    kazoo's reply handling, changes nothing; returns the function that removes it."""
    from kazoo.protocol import connection
    from kazoo.protocol.serialization import Create, Create2

    original = connection.ConnectionHandler._read_response

    def read_response(self: Any, header: Any, buffer: Any, offset: int) -> Any:
        pending = self.client._pending
        request = pending[0][0] if pending else None
        if isinstance(request, (Create, Create2)) and not header.err:
            reply = request.deserialize(buffer, offset)
            if (reply[0] if isinstance(reply, tuple) else reply) is None:
                history.event("null_create", token=request.data, xid=header.xid, zxid=header.zxid)
        return original(self, header, buffer, offset)

    connection.ConnectionHandler._read_response = read_response

    def unwatch() -> None:
        connection.ConnectionHandler._read_response = original

    return unwatch


def _watch_state(client: KazooClient, ensemble: ZooKeeperEnsemble, workload: Workload) -> dict[str, Any]:
    """Where the ChildrenWatch's watch is: the recipe's flags and the client's table. (The
    servers cannot be asked: ZooKeeper 3.8's four-letter ``wchp`` lists data watches only.)"""
    watch, path = workload.children_watch, workload.paths.seq
    return {
        "children_watch": {"established": watch._watch_established, "stopped": watch._stopped},
        "client_child_watchers": len(client._child_watchers.get(path, ())),
        "session": client.client_id[0] if client.client_id else None,
    }


def _describe_stranded(history: History, workload: Workload, start: float) -> list[dict[str, Any]]:
    """Open calls, with the stack of each caller still running (native: its frame; green: its greenlet)."""
    import sys
    import traceback

    frames = sys._current_frames()
    stacks = {}
    awaited = {}
    for kind, worker in workload.workers:
        if _is_thread(worker) and worker.is_alive():
            frame = frames.get(worker.ident)
        elif not _is_thread(worker) and not worker.dead:
            frame = worker.gr_frame
        else:
            continue
        name = worker.name if _is_thread(worker) else repr(worker)
        stacks[name] = traceback.format_stack(frame) if frame else []
        awaited[name] = _awaited_result(frame, workload.client)
    calls = [
        {"op": c.op, "worker": c.worker, "caller": c.caller, "started_s": round(c.start - start, 3), "detail": repr(c.detail)}
        for c in history.calls if c.end is None
    ]
    return [{"calls": calls, "stacks": stacks, "awaited": awaited}] if calls or stacks else []


def _awaited_result(frame: Any, client: KazooClient) -> dict[str, Any]:
    """The async result a stranded caller waits on, and where kazoo holds it (if anywhere)."""
    from eventlet_handler.result import AsyncResult

    while frame is not None:
        result = frame.f_locals.get("self")
        if isinstance(result, AsyncResult):
            return {
                "result": repr(result), "waiters": len(result._waiters), "links": len(result._links),
                "in_queue": any(item[1] is result for item in list(client._queue)),
                "in_pending": any(item[1] is result for item in list(client._pending)),
                "queue_len": len(client._queue), "pending_len": len(client._pending),
                "client_state": str(client._state),
            }
        frame = frame.f_back
    return {}


def _faults_repaired(history: History) -> Check:
    errors = [f"{e.detail['kind']}: {e.detail['error']}" for e in history.events_of("fault") if "error" in e.detail]
    return Check("every fault injected and repaired", not errors, "; ".join(errors) or "yes")


def _teardown(workload: Workload, clients: list[Any], ensemble: ZooKeeperEnsemble) -> list[Check]:
    """Close everything the run opened, each step on its own; a failing step is a failed check."""
    steps: list[tuple[str, Any]] = []
    if workload.tree_cache is not None:
        steps.append(("TreeCache.close()", workload.tree_cache.close))
    for kazoo in filter(None, clients):
        steps += [("client.stop()", kazoo.stop), ("client.close()", kazoo.close)]
    steps.append(("ensemble.stop()", ensemble.stop))
    problems = []
    for name, step in steps:
        try:
            step()
        except Exception as exc:
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
    return [Check("teardown", not problems, "; ".join(problems) or "clean")] if problems else []


def _watch_checks(workload: Workload, state: ServerState, tree_checked: bool) -> list[Check]:
    return _checks.watches_final(
        workload, state, tree_cache_checked=tree_checked,
        why_not="not checked: isolated mode with client.stop()/start() in the run, TreeCache stops "
        "receiving events (bug 9.1, fixed); CHAOS_TREECACHE_AFTER_RESTART=0 skipped the check",
    )


def _attributed(checks: list[Check], watch_state: dict[str, Any], workload: Workload, history: History) -> list[Check]:
    """The watch checks, a ChildrenWatch failure of kazoo's known bug reported as such (``_checks.children_watch_upstream``)."""
    dropped_at = [event.at for event in history.events if event.what in ("lost", "suspended")]
    last = workload.watch_times.get("ChildrenWatch")
    return [
        _checks.children_watch_upstream(c, watch_state, last, dropped_at) if c.name == "ChildrenWatch ends on the final children" else c
        for c in checks
    ]


def _leaks(baseline: Any) -> list[str]:
    """Green threads and fds alive now and not in ``baseline``.  A thread's *main*
    greenlet (no parent) belongs to a native thread, counted on its own: a tpool thread
    that ran a fault gains one, which is no leaked green thread."""
    now = take_snapshot()
    glets = [g for g in list(now.greenlets) if g not in baseline.greenlets and not g.dead and g.parent is not None]
    leaks = [f"green thread still alive: {g!r} at {g.gr_frame.f_code.co_name if g.gr_frame else '(not started)'}" for g in glets]
    leaks += [f"file descriptor {fd} still open: {target}" for fd, target in sorted(now.fds.items()) if baseline.fds.get(fd) != target]
    return leaks


def _leak_check(baseline: Any, threads_before: int) -> Check:
    _wait(lambda: not _leaks(baseline), 10.0)
    leaks = _leaks(baseline)
    _wait(lambda: _native_threads() <= threads_before, 10.0)
    extra = _native_threads() - threads_before
    if extra > 0:
        leaks.append(f"{extra} native threads more than before the run")
    return Check("no leaked green threads, native threads or fds", not leaks, "; ".join(leaks[:6]) or "none")
