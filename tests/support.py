"""Helpers shared by the test modules: ``from support import ...`` (``tests/`` is on
``sys.path`` under pytest, as for ``awaiters``); the fixtures that use them are in
``conftest.py``.

* ``native_threading``, ``native_time``, ...: the unpatched stdlib modules, for a real
  native thread or a real sleep in the monkey-patched process too.
* :func:`run_in_hub`: what the ``hub`` axis runs each test in.
* :class:`Caller`: the ``caller`` axis (same green thread, other green thread, native).
* :func:`until`, :func:`green_wait_native_thread`: bounded waits, never a bare sleep.
* :func:`in_native_thread`, :func:`later`: a body in a native thread (its value or its
  error back), a call a native thread makes after a delay.
* :func:`connected_client`, :func:`expire_session`, :class:`StateLog`, :func:`socket_pairs`,
  :func:`run_python`, :func:`callback`, :func:`runs_a_callback`:
  scenario pieces many tests share.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import subprocess
import sys
import time
import warnings
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import eventlet
    from eventlet import hubs, patcher

from kazoo.protocol.states import Callback

from eventlet_handler import EventletHandler
from eventlet_handler._hubs import current_hub
from eventlet_handler._hubthread import shutdown_current_hub

native_threading: Any = patcher.original("threading")
native_thread: Any = patcher.original("_thread")
native_time: Any = patcher.original("time")
native_os: Any = patcher.original("os")
native_select: Any = patcher.original("select")
native_socket: Any = patcher.original("socket")
_threading = native_threading

MONKEY_PATCHED = os.environ.get("EVENTLET_HANDLER_TEST_MONKEY_PATCH") == "1"
HUBS = ["epolls", "poll", "selects", "asyncio"]
CALLERS = ["same_green", "other_green", "native"]
MODES = ["shared", "isolated"]
#: Both modes for the plugin's ``eventlet_handler`` fixture, which reads the mark.
MODE_PARAMS = [pytest.param(m, marks=pytest.mark.eventlet_handler_options(mode=m), id=m) for m in MODES]
BODY_TIMEOUT = 30.0


def process_is_monkey_patched() -> bool:
    """What ``mode="auto"`` looks at: eventlet patched ``thread`` or ``socket``."""
    return bool(patcher.is_monkey_patched("thread") or patcher.is_monkey_patched("socket"))


def import_or_skip(name: str) -> Any:
    """``pytest.importorskip``, except under EVENTLET_HANDLER_REQUIRE_ZOOKEEPER=1 (``make
    test``, which installs the test extra): there a missing dependency fails the test."""
    if os.environ.get("EVENTLET_HANDLER_REQUIRE_ZOOKEEPER") == "1":
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            pytest.fail(f"{name} is missing but `make test` installs it (the test extra): {exc}")
    return pytest.importorskip(name)


def until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> None:
    """Wait until ``condition()`` is true, bounded; yields green in a thread with a hub,
    sleeps natively in one without. An event check, instead of a sleep that hopes."""
    pause = eventlet.sleep if current_hub() is not None else time.sleep
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        pause(0.001)


def green_wait_native_thread(thread: Any, timeout: float) -> None:
    """Wait for a native thread without blocking the caller's hub."""
    deadline = time.monotonic() + timeout
    while thread.is_alive():
        if time.monotonic() > deadline:
            raise AssertionError(f"{thread.name} still running after {timeout} s")
        eventlet.sleep(0.001)


def in_native_thread(body: Callable[[], Any], timeout: float = 10.0, name: Optional[str] = None) -> Any:
    """Run ``body`` in a fresh native daemon thread (no hub of its own unless ``body``
    makes one); its value, or its exception re-raised here. Fails if it runs past
    ``timeout``. The caller waits natively: call it where nothing green must run."""
    outcome: dict = {}

    def main() -> None:
        try:
            outcome["value"] = body()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = _threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{thread.name} still running after {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def later(delay: float, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)`` from a native daemon thread after a native sleep of ``delay``;
    returns that (started) thread."""

    def run() -> None:
        native_time.sleep(delay)
        fn(*args)

    thread = _threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def socket_pairs(count: int = 1) -> Iterator[List[Tuple[socket.socket, socket.socket]]]:
    """``count`` real socketpairs, every end closed on the way out."""
    pairs = [socket.socketpair() for _ in range(count)]
    try:
        yield pairs
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@contextlib.contextmanager
def connected_client(
    hosts: str, handler: Any = None, start_timeout: float = 15.0, **kwargs: Any
) -> Iterator[Any]:
    """A started ``KazooClient`` on ``handler`` (default: an ``EventletHandler`` of its
    own, stopped afterwards too); stopped and closed on the way out."""
    from kazoo.client import KazooClient

    own = handler is None
    if own:
        handler = EventletHandler()
    client = KazooClient(hosts=hosts, handler=handler, **kwargs)
    try:
        client.start(timeout=start_timeout)
        yield client
    finally:
        client.stop()
        client.close()
        if own:
            handler.stop(timeout=10)


def expire_session(client: Any, hosts: str) -> None:
    """Expire ``client``'s session the way the server does it: another connection takes
    the session over (same id and password) and closes it (kazoo's own test recipe)."""
    with connected_client(hosts, client_id=client.client_id):
        pass


class StateLog:
    """The states kazoo reports to a listener of ``client``, in order (``seen``).
    ``when(state, after)`` is an event set once ``state`` is reported with ``after``
    (any state) reported before it; ``close()`` removes the listener."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seen: List[str] = []
        self._waits: List[Tuple[str, Optional[str], Any]] = []
        client.add_listener(self._record)

    def when(self, state: str, after: Optional[str] = None) -> Any:
        event = self.client.handler.event_object()
        self._waits.append((state, after, event))
        return event

    def _record(self, state: str) -> None:
        self.seen.append(state)
        for wanted, after, event in self._waits:
            if state == wanted and (after is None or after in self.seen):
                event.set()

    def close(self) -> None:
        self.client.remove_listener(self._record)


def run_python(script: str, timeout: float = 60.0) -> "subprocess.CompletedProcess[str]":
    """Run ``script`` in a fresh interpreter (warnings off); its completed process, with
    stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, timeout=timeout
    )


def callback(func: Callable[..., Any], *args: Any) -> Callback:
    """A kazoo watch ``Callback`` of ``func(*args)``."""
    return Callback("watch", func, args)


def runs_a_callback(handler: EventletHandler, timeout: float = 5.0) -> bool:
    """Whether a callback dispatched to ``handler`` now runs within ``timeout``."""
    ran = handler.event_object()
    handler.dispatch_callback(callback(ran.set))
    return bool(ran.wait(timeout))


def run_in_hub(name: str, body: Callable[[], Any], timeout: float = BODY_TIMEOUT) -> Any:
    """Run ``body`` in a fresh native thread whose hub is ``name``; its value, or its
    exception re-raised here. The thread retires its hub afterwards."""
    outcome: dict = {}

    def main() -> None:
        hubs.use_hub(name)
        hubs.get_hub()  # this thread lives in its hub, like an eventlet app thread
        try:
            outcome["value"] = body()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc
        finally:
            shutdown_current_hub()

    thread = _threading.Thread(target=main, name=f"hub-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"test body did not finish within {timeout} s on the {name} hub")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class Done:
    """What ``Caller.run`` returns: ``join()`` waits green, bounded."""

    def __init__(self, waiter: Callable[[float], None]) -> None:
        self._waiter = waiter

    def join(self, timeout: float = 10.0) -> None:
        self._waiter(timeout)


class Caller:
    """Calls ``fn`` from the context named by ``kind``; must run in a green context."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.errors: List[BaseException] = []

    def __repr__(self) -> str:
        return f"Caller({self.kind})"

    def run(self, fn: Callable[[], Any]) -> Done:
        if self.kind == "same_green":
            fn()
            return Done(lambda timeout: None)
        if self.kind == "other_green":
            gt = eventlet.spawn(self._guarded, fn)

            def wait_green(timeout: float) -> None:
                with eventlet.Timeout(timeout):
                    gt.wait()
                self._raise_errors()

            return Done(wait_green)
        thread = _threading.Thread(target=self._guarded, args=(fn,), daemon=True)
        thread.start()

        def wait_native(timeout: float) -> None:
            green_wait_native_thread(thread, timeout)
            self._raise_errors()

        return Done(wait_native)

    def _guarded(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except BaseException as exc:
            self.errors.append(exc)

    def _raise_errors(self) -> None:
        if self.errors:
            raise self.errors[0]

    @property
    def is_concurrent(self) -> bool:
        """False for ``same_green``: it cannot act while the test's green thread waits."""
        return self.kind != "same_green"


class HandlerInBody:
    """Starts a handler (``EventletHandler(mode, **options)``) inside the test body's
    thread and always stops it."""

    def __init__(self, mode: str, **options: Any) -> None:
        self.mode, self.options = mode, options
        self.handler: Optional[EventletHandler] = None

    def __enter__(self) -> EventletHandler:
        self.handler = EventletHandler(self.mode, **self.options)
        self.handler.start()
        return self.handler

    def __exit__(self, *exc: Any) -> None:
        assert self.handler is not None
        self.handler.stop(timeout=10.0)


def home_thread(handler: EventletHandler) -> Any:
    """The native thread (its ``threading.Thread``) whose hub runs the callbacks of the
    started ``handler``: found by running one there."""
    threads: List[Any] = []
    ran = handler.event_object()

    def record() -> None:
        threads.append(_threading.current_thread())
        ran.set()

    handler.dispatch_callback(Callback("watch", record, ()))
    assert ran.wait(5), f"{handler!r} ran no callback within 5 s"
    return threads[0]


def home_thread_ident(handler: EventletHandler) -> int:
    """:func:`home_thread`'s ident."""
    ident = home_thread(handler).ident
    assert ident is not None
    return ident


def home_retired(handler: EventletHandler, old_home: Any) -> bool:
    """True if the stopped ``handler`` let its home (run by thread ``old_home``) go: a
    start from a fresh thread with a hub then makes a new home (that thread's hub in
    shared mode, a new hub thread in isolated mode), where a kept home would be reused.
    Leaves the handler stopped."""
    kind = type(hubs.get_hub()).__module__.rsplit(".", 1)[-1]  # the caller's kind of hub

    def start_elsewhere() -> Any:
        handler.start()
        try:
            return home_thread(handler)
        finally:
            handler.stop(timeout=10)

    return run_in_hub(kind, start_elsewhere) is not old_home


def kazoo_socket(client: Any) -> Any:
    """The socket of ``client``'s current connection. kazoo has no public handle on it;
    the tests that drop a connection under kazoo, or ask which server it went to, need
    it (a private read of kazoo's, kept in this one place)."""
    return client._connection._socket


def fill_send_buffer(sock: Any) -> None:
    """Make ``sock`` unwritable: shrink its send buffer and fill it; it is left blocking."""
    sock.setsockopt(native_socket.SOL_SOCKET, native_socket.SO_SNDBUF, 4096)
    sock.setblocking(False)
    try:
        while True:
            sock.send(b"x" * 65536)
    except BlockingIOError:
        pass
    sock.setblocking(True)
