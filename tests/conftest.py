"""Test axes shared by the whole suite.

* Process axis (set by the Makefile, one pytest process each): unpatched;
  ``EVENTLET_HANDLER_TEST_MONKEY_PATCH=1`` (patched here, before anything else
  imports eventlet); ``EVENTLET_HUB=asyncio``.
* ``hub`` axis (contract tests): a test that takes the ``hub`` fixture runs,
  whole, in a fresh native thread whose hub is ``epolls``, ``poll``, ``selects``
  or ``asyncio`` (:func:`pytest_pyfunc_call`, as anyio's plugin runs a test in
  its event loop); fixtures are set up in pytest's thread. eventlet keeps one hub
  per thread, so hubs are switched per thread, in-process; the thread retires its
  hub afterwards so no fds are left. ``@pytest.mark.hub_timeout(s)`` bounds the
  body (default 30 s).
* ``caller`` axis: who calls the operation under test, relative to the test's
  green thread: the same green thread, another green thread of its hub, or a
  native thread.
* ``mode`` axis: the handler's ``shared`` and ``isolated`` modes.
* ``awaiter`` axis (``tests/awaiters.py``): who awaits, as a coroutine: one on
  eventlet's asyncio hub, one on a plain asyncio loop in a native thread.

The ZooKeeper fixtures (``zookeeper_server``, ``zookeeper_ensemble``,
``eventlet_handler``, ``kazoo_client``) come from the package's pytest plugin.
"""

from __future__ import annotations

import os

if os.environ.get("EVENTLET_HANDLER_TEST_MONKEY_PATCH") == "1":
    import eventlet

    eventlet.monkey_patch()

import importlib
import inspect
import time
import warnings
from typing import Any, Callable, List, Optional

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import eventlet
    from eventlet import hubs, patcher

from awaiters import AWAITERS, Awaiter
from eventlet_handler import EventletHandler
from eventlet_handler._hubthread import shutdown_current_hub

_threading: Any = patcher.original("threading")

MONKEY_PATCHED = os.environ.get("EVENTLET_HANDLER_TEST_MONKEY_PATCH") == "1"
HUBS = ["epolls", "poll", "selects", "asyncio"]
CALLERS = ["same_green", "other_green", "native"]
MODES = ["shared", "isolated"]
BODY_TIMEOUT = 30.0


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"eventlet_handler tests: monkey_patched={MONKEY_PATCHED} "
        f"EVENTLET_HUB={os.environ.get('EVENTLET_HUB', '(default)')}"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """``make test`` installs ZooKeeper first and sets EVENTLET_HANDLER_REQUIRE_ZOOKEEPER:
    there a missing server must fail the run, not quietly skip every integration test."""
    from eventlet_handler.testing.zookeeper import zookeeper_available

    if os.environ.get("EVENTLET_HANDLER_REQUIRE_ZOOKEEPER") == "1" and not zookeeper_available(tls=True):
        pytest.exit(
            "EVENTLET_HANDLER_REQUIRE_ZOOKEEPER=1 but java, the ZooKeeper 3.8 jars (with netty for "
            "TLS) or cryptography are missing: run `make zookeeper` (Debian's zookeeper package)",
            returncode=3,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="contract tests switch hubs per thread; run in the unpatched process")
    for item in items:
        if MONKEY_PATCHED and "tests/contract" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


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
    from eventlet_handler._bridge import current_hub

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


_RUN_IN_HUB = pytest.StashKey[str]()


@pytest.fixture(params=HUBS)
def hub(request: pytest.FixtureRequest) -> str:
    """The eventlet hub the test runs in: the test function runs in a fresh native
    thread with that hub (see :func:`pytest_pyfunc_call`)."""
    request.node.stash[_RUN_IN_HUB] = request.param
    return request.param


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    """Run a test that took the ``hub`` fixture in its hub's thread. A test parametrized
    with its own ``hub`` argument never ran the fixture, and runs as usual."""
    name = pyfuncitem.stash.get(_RUN_IN_HUB, None)
    if name is None:
        return None
    marker = pyfuncitem.get_closest_marker("hub_timeout")
    timeout = float(marker.args[0]) if marker is not None else BODY_TIMEOUT
    args = {arg: pyfuncitem.funcargs[arg] for arg in inspect.signature(pyfuncitem.obj).parameters}
    run_in_hub(name, lambda: pyfuncitem.obj(**args), timeout)
    return True


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


@pytest.fixture(params=CALLERS)
def caller(request: pytest.FixtureRequest) -> Caller:
    return Caller(request.param)


@pytest.fixture(params=AWAITERS)
def awaiter(request: pytest.FixtureRequest) -> Awaiter:
    return Awaiter(request.param)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


class HandlerInBody:
    """Starts a handler inside the test body's thread and always stops it."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.handler: Optional[EventletHandler] = None

    def __enter__(self) -> EventletHandler:
        self.handler = EventletHandler(self.mode)
        self.handler.start()
        return self.handler

    def __exit__(self, *exc: Any) -> None:
        assert self.handler is not None
        self.handler.stop(timeout=10.0)


@pytest.fixture
def started(mode: str) -> Callable[[], HandlerInBody]:
    """``with started() as handler:`` inside a body: a running handler of ``mode``."""
    return lambda: HandlerInBody(mode)


def home_thread_ident(handler: EventletHandler) -> int:
    """The native thread whose hub runs the handler's workers."""
    home = handler._home
    if home is not None and home.hubthread is not None:
        ident = home.hubthread.ident
        assert ident is not None
        return ident
    return _threading.get_ident()
