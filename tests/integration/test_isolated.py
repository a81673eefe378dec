"""Isolated mode against a real ZooKeeper (issue 4), compared with shared mode.

- In isolated mode the handler's hub lives in its own native thread, so the
  client keeps working while the application's main thread blocks *natively*
  (``threading.Event().wait()``): watch callbacks fire and wake it.
- Native threads and green threads of the application's hub use one client at
  once, through every recipe that takes primitives from the handler.
- Where each kind of callback runs, per mode.
- How the mode is chosen: ``auto`` follows monkey-patching, the
  ``EVENTLET_HANDLER_MODE`` variable, ``repr()`` and the start log line.

The file runs in all three test processes (plain, monkey-patched, asyncio hub).
Native threads and events come from ``eventlet.patcher.original`` so they stay
native in the monkey-patched process too. Every wait is bounded.
"""

from __future__ import annotations

import gc
import logging
import os
import queue as std_queue
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import eventlet
import pytest
from eventlet import hubs
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.recipe.cache import TreeCache, TreeEvent

from eventlet_handler import EventletHandler
from eventlet_handler._hubthread import shutdown_current_hub
from eventlet_handler.config import MODE_ENV
from eventlet_handler.testing.zookeeper import ZooKeeperServer
from support import MODE_PARAMS, HandlerInBody, in_native_thread, process_is_monkey_patched
from support import native_threading as _threading, native_thread as _thread


pytestmark = pytest.mark.timeout(90)

WAIT = 15.0  # bound of any single wait
WORKLOAD_DEADLINE = 60.0  # bound of the whole concurrent workload
CONNECT_TIMEOUT = 15.0
CHAIN_LENGTH = 10  # watch callbacks that fire while the main thread blocks natively
NATIVE_WORKERS = 4
GREEN_WORKERS = 4

ISOLATED = pytest.mark.eventlet_handler_options(mode="isolated")


def _native_ident() -> int:
    """The OS thread's identity (``threading.get_ident`` is per green thread when patched)."""
    return int(_thread.get_ident())


def _native_thread(ident: int) -> Any:
    """The running native ``Thread`` with this identity, or ``None``."""
    for thread in _threading.enumerate():
        if thread.ident == ident:
            return thread
    return None


@pytest.fixture
def base(kazoo_client: KazooClient) -> Iterator[str]:
    path = f"/isolated/{uuid.uuid4().hex}"
    kazoo_client.ensure_path(path)
    yield path
    if kazoo_client.connected:
        kazoo_client.delete(path, recursive=True)


# -- the main thread blocks natively while callbacks fire ------------------------------


@ISOLATED
def test_isolated_main_thread_blocks_natively_while_watch_callbacks_fire(
    kazoo_client: KazooClient, base: str
) -> None:
    """Two chains of watch callbacks (DataWatch, ChildrenWatch) each drive the next
    change themselves and set a *native* event at the end, while the main thread
    waits on that event natively: nothing of the main thread's hub can run meanwhile,
    so everything happens in the handler's hub thread."""
    client = kazoo_client
    assert client.handler.mode == "isolated"
    main = _native_ident()
    data_done, children_done = _threading.Event(), _threading.Event()
    data_seen: list[tuple[bytes, int]] = []
    children_seen: list[tuple[int, int]] = []
    node, parent = f"{base}/data", f"{base}/children"
    client.create(node, b"0")
    client.create(parent)

    def on_data(data: bytes | None, stat: Any) -> bool | None:
        data_seen.append((data or b"", _native_ident()))
        count = int(data or b"0")
        if count < CHAIN_LENGTH:
            client.set_async(node, str(count + 1).encode())
            return None
        data_done.set()
        return False  # stop watching: the cleanup's changes must not restart the chain

    def on_children(children: list[str]) -> bool | None:
        children_seen.append((len(children), _native_ident()))
        if len(children) < CHAIN_LENGTH:
            client.create_async(f"{parent}/c{len(children):02d}")
            return None
        children_done.set()
        return False

    # The first call of each watch runs here, in the main thread, and starts its chain.
    client.DataWatch(node, on_data)
    client.ChildrenWatch(parent, on_children)

    assert data_done.wait(WAIT), f"DataWatch chain stalled after {data_seen}"
    assert children_done.wait(WAIT), f"ChildrenWatch chain stalled after {children_seen}"

    assert [data for data, _ in data_seen] == [str(n).encode() for n in range(CHAIN_LENGTH + 1)]
    assert [count for count, _ in children_seen] == list(range(CHAIN_LENGTH + 1))
    callback_threads = {ident for _, ident in data_seen[1:] + children_seen[1:]}
    assert len(callback_threads) == 1 and main not in callback_threads, (
        "after the first call, every watch callback runs on the handler's one hub thread"
    )


# -- native threads and green threads share one client ---------------------------------


class Workload:
    """What every worker does on the shared client, and the checks over all of them.

    Workers run in native threads and in green threads of the test's hub at the same
    time. They wait on the handler's primitives, never on native ones, so a green
    worker never blocks the hub the other green workers run in.
    """

    def __init__(self, client: KazooClient, base: str, names: list[str]) -> None:
        self.client = client
        self.base = base
        self.names = names
        self.results = client.handler.queue_impl()
        self.guard = _threading.Lock()
        self.inside = {"lock": 0, "election": 0}
        self.most_inside = {"lock": 0, "election": 0}
        self.entered: dict[str, list[str]] = {"lock": [], "election": []}
        self.cancellables: list[Any] = []
        self.rendezvous = client.handler.event_object()
        self.tree_added: set[str] = set()
        self.tree_complete = client.handler.event_object()
        self.gate = client.Barrier(f"{base}/gate")
        for path in ("crud", "rendezvous", "tree"):
            client.ensure_path(f"{base}/{path}")
        self.tree = TreeCache(client, f"{base}/tree")
        self.tree.listen(self._on_tree_event)

    def _on_tree_event(self, event: Any) -> None:
        if event.event_type == TreeEvent.NODE_ADDED and event.event_data is not None:
            name = event.event_data.path.rsplit("/", 1)[-1]
            if name in self.names:
                self.tree_added.add(name)
                if self.tree_added == set(self.names):
                    self.tree_complete.set()

    def _on_rendezvous(self, children: list[str]) -> bool | None:
        if set(children) >= set(self.names):
            self.rendezvous.set()
            return False  # stop watching
        return None

    def start(self) -> None:
        self.gate.create()
        self.tree.start()
        self.client.ChildrenWatch(f"{self.base}/rendezvous", self._on_rendezvous)

    def open_gate(self) -> None:
        self.gate.remove()

    def run(self, name: str) -> None:
        """One worker's whole body; reports ("ok", name) or ("error", name, text)."""
        try:
            self._run(name)
        except BaseException:
            self.results.put(("error", name, traceback.format_exc()))
        else:
            self.results.put(("ok", name, ""))

    def _critical(self, what: str, name: str) -> None:
        with self.guard:
            self.inside[what] += 1
            self.most_inside[what] = max(self.most_inside[what], self.inside[what])
            self.entered[what].append(name)
        try:
            # A round trip while holding it: other workers get to run meanwhile.
            self.client.set(f"{self.base}/crud", name.encode())
        finally:
            with self.guard:
                self.inside[what] -= 1

    def _run(self, name: str) -> None:
        client, base = self.client, self.base
        assert self.gate.wait(WAIT), "the start gate (Barrier) never opened"

        # CRUD, and a DataWatch on the worker's own node.
        node = f"{base}/crud/{name}"
        client.create(node, b"v0")
        assert client.get(node)[0] == b"v0"
        client.set(node, b"v1")
        assert name in client.get_children(f"{base}/crud")
        changed = client.handler.event_object()
        seen: list[bytes | None] = []

        def on_data(data: bytes | None, stat: Any) -> None:
            seen.append(data)
            if data == b"v2":
                changed.set()

        client.DataWatch(node, on_data)
        client.set(node, b"v2")
        assert changed.wait(WAIT), f"DataWatch saw only {seen}"
        client.delete(node)
        assert client.exists(node) is None

        # Every worker is in flight at once: each waits until a ChildrenWatch has
        # seen all of them.
        client.create(f"{base}/rendezvous/{name}", ephemeral=True)
        assert self.rendezvous.wait(WAIT), "not every worker reached the rendezvous"

        # TreeCache sees the worker's node.
        client.create(f"{base}/tree/{name}", name.encode())

        # Lock: mutual exclusion across native and green threads.
        lock = client.Lock(f"{base}/lock", name)
        self.cancellables.append(lock)
        assert lock.acquire(timeout=WAIT), "Lock not acquired in time"
        try:
            self._critical("lock", name)
        finally:
            lock.release()

        # Counter.
        counter = client.Counter(f"{base}/counter")
        counter += 1

        # Election: every worker is leader once, one at a time.
        election = client.Election(f"{base}/election", name)
        self.cancellables.append(election)
        election.run(self._critical, "election", name)

    def collect(self) -> dict[str, str]:
        """Wait (bounded) for every worker's report; on a timeout cancel what blocks."""
        reports: dict[str, str] = {}
        deadline = time.monotonic() + WORKLOAD_DEADLINE
        while len(reports) < len(self.names):
            try:
                status, name, text = self.results.get(timeout=max(0.0, deadline - time.monotonic()))
            except std_queue.Empty:
                for recipe in list(self.cancellables):
                    recipe.cancel()  # a worker stuck in Lock/Election raises CancelledError
                missing = sorted(set(self.names) - set(reports))
                pytest.fail(f"workers {missing} did not finish in {WORKLOAD_DEADLINE} s; done: {reports}")
            reports[name] = text if status == "error" else "ok"
        return reports

    def close(self) -> None:
        self.tree.close()


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_client_used_by_native_and_green_threads_at_once(
    mode: str, kazoo_client: KazooClient, base: str
) -> None:
    """CRUD, Lock, Election, Barrier, Counter, DataWatch, ChildrenWatch and TreeCache
    from native threads and green threads of the test's hub on one client, at once."""
    client = kazoo_client
    assert client.handler.mode == mode
    native = [f"native-{i}" for i in range(NATIVE_WORKERS)]
    green = [f"green-{i}" for i in range(GREEN_WORKERS)]
    work = Workload(client, base, native + green)
    work.start()
    threads = [_threading.Thread(target=work.run, args=(name,), name=name, daemon=True)
               for name in native]
    try:
        for thread in threads:
            thread.start()
        for name in green:
            eventlet.spawn_n(work.run, name)
        work.open_gate()
        # The test's green thread waits green: green workers keep running meanwhile.
        reports = work.collect()
        for thread in threads:
            thread.join(WAIT)
            assert not thread.is_alive(), f"{thread.name} still running after its report"
        assert work.tree_complete.wait(WAIT), f"TreeCache saw only {sorted(work.tree_added)}"
    finally:
        work.close()

    failures = {name: text for name, text in reports.items() if text != "ok"}
    assert not failures, "\n".join(f"--- {name}\n{text}" for name, text in failures.items())
    everyone = sorted(work.names)
    assert sorted(work.entered["lock"]) == everyone
    assert sorted(work.entered["election"]) == everyone
    assert work.most_inside == {"lock": 1, "election": 1}, "mutual exclusion broken"
    assert client.Counter(f"{base}/counter").value == len(everyone)
    assert sorted(client.get_children(f"{base}/tree")) == everyone


@pytest.mark.eventlet_handler_options(mode="isolated", check_leaks=False)  # the test checks fds itself
def test_native_thread_that_gained_a_hub_leaves_no_fds_behind(kazoo_client: KazooClient, base: str) -> None:
    """What a thread-pool worker does when it calls ``eventlet.sleep`` (which gives
    the thread a hub; the handler's own ``sleep_func`` no longer does, unpatched),
    then waits on the client (which gives that hub a bridge); then the thread ends
    without any clean-up call. It must not leave file descriptors behind."""
    before = set(os.listdir("/proc/self/fd"))
    errors: list[str] = []

    def worker() -> None:
        try:
            eventlet.sleep(0.001)  # gives this native thread a hub
            kazoo_client.get(base)  # parks on the result in the thread's (new) hub
        except BaseException:
            errors.append(traceback.format_exc())

    for _ in range(3):
        thread = _threading.Thread(target=worker, daemon=True)
        thread.start()
        thread.join(WAIT)
        assert not thread.is_alive()
    assert not errors, errors[0]
    gc.collect()
    leaked = {fd: _fd_target(fd) for fd in set(os.listdir("/proc/self/fd")) - before}
    leaked = {fd: target for fd, target in leaked.items() if target is not None}
    assert not leaked, f"fds left by 3 ended native threads: {leaked}"


def _fd_target(fd: str) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None  # closed meanwhile (listdir's own fd)


# -- which thread each callback runs on --------------------------------------------------


class Where:
    """Records the native thread and the hub each kind of callback ran in."""

    KINDS = ("listener", "watch", "data_watch", "completion", "spawn")

    def __init__(self, handler: Any) -> None:
        self.seen: dict[str, tuple[int, Any]] = {}
        self.threads: dict[int, Any] = {}  # native ident -> its Thread object
        self.done = {kind: handler.event_object() for kind in self.KINDS}

    def mark(self, kind: str) -> None:
        if kind not in self.seen:
            self.seen[kind] = (_native_ident(), hubs.get_hub())
            self.threads[_native_ident()] = _threading.current_thread()
        self.done[kind].set()

    def wait_all(self) -> None:
        for kind, event in self.done.items():
            assert event.wait(WAIT), f"no {kind} callback ran; saw {sorted(self.seen)}"

    def only_place(self) -> tuple[int, Any]:
        """The one (native thread, hub) every callback ran in."""
        places = {(ident, id(hub)) for ident, hub in self.seen.values()}
        assert len(places) == 1, f"callbacks ran in several places: {self.seen}"
        return next(iter(self.seen.values()))


def _exercise_every_callback_kind(hosts: str, handler: Any) -> Where:
    """Connect a client on ``handler`` and fire each kind of callback once: a state
    listener (run by kazoo's connection loop, i.e. spawned work), a watch, a
    DataWatch, a completion (``rawlink``) and a spawned task."""
    where = Where(handler)
    client = KazooClient(hosts=hosts, handler=handler)
    client.add_listener(lambda state: where.mark("listener") if state == KazooState.CONNECTED else None)
    client.start(timeout=CONNECT_TIMEOUT)
    path = f"/isolated/{uuid.uuid4().hex}"
    try:
        client.create(path, b"0", makepath=True)
        client.get(path, watch=lambda event: where.mark("watch"))
        client.DataWatch(path, lambda data, stat: where.mark("data_watch") if data == b"1" else None)
        client.get_async(path).rawlink(lambda result: where.mark("completion"))
        assert handler.spawn(where.mark, "spawn").join(WAIT)
        client.set(path, b"1")
        where.wait_all()
        client.delete(path)
    finally:
        client.stop()
        client.close()
    return where


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_callbacks_run_in_the_home_hub(
    mode: str, eventlet_handler: Any, zookeeper_server: ZooKeeperServer
) -> None:
    """shared: every callback runs in the hub of the thread that started the handler
    (here the test's main thread). isolated: every callback runs in the handler's own
    hub thread, a native daemon thread that ends when the handler stops."""
    main, main_hub = _native_ident(), hubs.get_hub()
    where = _exercise_every_callback_kind(zookeeper_server.hosts, eventlet_handler)
    ident, hub = where.only_place()
    if mode == "shared":
        assert ident == main and hub is main_hub
        return
    assert ident != main and hub is not main_hub
    hub_thread = where.threads[ident]
    assert hub_thread.daemon, f"the hub thread {hub_thread!r} is not a daemon thread"
    # kazoo's client.stop() stopped the handler too: its hub thread is gone.
    eventlet_handler.stop(timeout=WAIT)
    assert not hub_thread.is_alive() and _native_thread(ident) is None, "the hub thread outlived stop()"


def test_shared_callbacks_run_in_the_starting_native_threads_hub(zookeeper_server: ZooKeeperServer) -> None:
    """shared mode started in a native thread that runs a hub of its own (an
    application thread living in eventlet): callbacks run in that thread's hub, not
    in the main thread's."""

    def service() -> Any:
        home = (_native_ident(), hubs.get_hub())  # this thread's own hub
        try:
            with HandlerInBody("shared") as handler:
                return _exercise_every_callback_kind(zookeeper_server.hosts, handler).only_place(), home
        finally:
            shutdown_current_hub()

    # The main thread is not that handler's home: it may wait natively.
    (ident, hub), (home_ident, home_hub) = in_native_thread(service, WORKLOAD_DEADLINE, "service-with-its-own-hub")
    assert ident == home_ident and hub is home_hub
    assert ident != _native_ident()


# -- mode selection --------------------------------------------------------------------


def _start_and_stop(handler: EventletHandler, caplog: pytest.LogCaptureFixture) -> tuple[str, int]:
    """Start and stop ``handler``; return its one start log line and its home thread."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="eventlet_handler"):
        handler.start()
        try:
            home = _home_thread(handler)
        finally:
            handler.stop(timeout=WAIT)
    lines = [r.getMessage() for r in caplog.records if r.name == "eventlet_handler" and "started" in r.getMessage()]
    assert len(lines) == 1, f"one start log line expected, got {lines}"
    return lines[0], home


def _home_thread(handler: EventletHandler) -> int:
    """The native thread spawned work runs on (the home hub's thread)."""
    seen: list[int] = []
    assert handler.spawn(lambda: seen.append(_native_ident())).join(WAIT)
    return seen[0]


def test_auto_mode_follows_monkey_patching(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """No argument, no variable: isolated in an unpatched process, shared in a
    monkey-patched one; repr() and the start log line say which and why."""
    monkeypatch.delenv(MODE_ENV, raising=False)
    patched = process_is_monkey_patched()
    expected = "shared" if patched else "isolated"
    reason = "the process is monkey-patched" if patched else "the process is not monkey-patched"
    handler = EventletHandler()
    assert handler.mode == expected
    assert handler.options.requested_mode == "auto"
    line, home = _start_and_stop(handler, caplog)
    for text in (repr(handler), line):
        assert f"mode={expected!r}" in text and reason in text and "auto" in text, text
    assert (home == _native_ident()) == (expected == "shared")


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_mode_from_environment(mode: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """``EVENTLET_HANDLER_MODE`` picks the mode of a handler built with no arguments
    (as tooz builds them), whatever the patching; repr() and the log say so."""
    monkeypatch.setenv(MODE_ENV, mode)
    handler = EventletHandler()
    assert handler.mode == mode
    line, home = _start_and_stop(handler, caplog)
    for text in (repr(handler), line):
        assert f"mode={mode!r}" in text and f"{MODE_ENV}={mode}" in text, text
    assert (home == _native_ident()) == (mode == "shared")


def test_mode_environment_auto_still_follows_monkey_patching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_ENV, "auto")
    handler = EventletHandler()
    assert handler.mode == ("shared" if process_is_monkey_patched() else "isolated")
    assert f"{MODE_ENV}=auto" in repr(handler) and "monkey-patched" in repr(handler)


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_mode_argument_beats_environment(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    other = "isolated" if mode == "shared" else "shared"
    monkeypatch.setenv(MODE_ENV, other)
    handler = EventletHandler(mode)
    assert handler.mode == mode
    assert f"mode={mode!r} argument" in repr(handler)


def test_mode_from_environment_invalid_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_ENV, "separate")
    with pytest.raises(ValueError, match=MODE_ENV):
        EventletHandler()
