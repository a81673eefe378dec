"""pytest fixtures for eventlet applications that use kazoo.

Registration: **automatic**. Installing eventlet-handler registers this module in
pytest's ``pytest11`` entry-point group under the name ``eventlet_handler``, so its
fixtures are available in every test session of an environment that has the package.
Importing it starts nothing: ZooKeeper servers start only when a test requests a
fixture that needs one (and are skipped, with the reason, when Java or the ZooKeeper
jars are missing). To turn it off: ``pytest -p no:eventlet_handler``. With
``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, turn it on with
``pytest -p eventlet_handler.testing.pytest_plugin`` (or ``pytest_plugins = [...]`` in
a root ``conftest.py``). Your own fixtures of the same names override these.

Fixtures
--------
``zookeeper_server``
    session scope: a standalone :class:`~eventlet_handler.testing.zookeeper.ZooKeeperServer`
    (use ``.hosts``), stopped at the end of the session.
``zookeeper_ensemble``
    session scope, started only if requested: a 3-member
    :class:`~eventlet_handler.testing.zookeeper.ZooKeeperEnsemble`.
``eventlet_handler``
    a started :class:`~eventlet_handler.EventletHandler`, stopped after the test. The
    test then fails if green threads or file descriptors it created are still alive
    after a short settle (up to ``LEAK_SETTLE_SECONDS``). Options come from the marker
    ``@pytest.mark.eventlet_handler_options(mode=..., slow_callback_threshold=...,
    check_leaks=True)``.
``kazoo_client``
    a ``KazooClient`` on ``eventlet_handler`` connected to ``zookeeper_server``; stopped
    and closed after the test (before the leak check).
``deterministic_handler``
    a :class:`~eventlet_handler.testing.DeterministicHandler` (not started: kazoo starts
    it), with the same leak check.

Fixtures run in the test's own thread and hub (pytest's main thread).
"""

from __future__ import annotations

import gc
import os
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from kazoo.client import KazooClient

    from eventlet_handler.handler import EventletHandler
    from eventlet_handler.testing._deterministic import DeterministicHandler
    from eventlet_handler.testing.zookeeper import ZooKeeperEnsemble, ZooKeeperServer

#: How long a leak check waits for green threads and fds to go away on their own.
LEAK_SETTLE_SECONDS: Final = 2.0
_SETTLE_STEP: Final = 0.02
_CLIENT_START_TIMEOUT: Final = 15.0
_MARKER: Final = "eventlet_handler_options"
_HANDLER_OPTION_NAMES: Final = frozenset({"mode", "slow_callback_threshold"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(mode=None, slow_callback_threshold=..., check_leaks=True): options of "
        "the eventlet_handler fixture's EventletHandler and of its leak check",
    )


# -- ZooKeeper -----------------------------------------------------------------------


def _require_zookeeper() -> None:
    from eventlet_handler.testing.zookeeper import zookeeper_available

    if not zookeeper_available():
        pytest.skip("ZooKeeper is not available here (needs java and the ZooKeeper 3.8 jars)")


@pytest.fixture(scope="session")
def zookeeper_server() -> Iterator[ZooKeeperServer]:
    """A standalone ZooKeeper on 127.0.0.1 for the whole session (``.hosts``)."""
    from eventlet_handler.testing.zookeeper import ZooKeeperServer

    _require_zookeeper()
    server = ZooKeeperServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def zookeeper_ensemble() -> Iterator[ZooKeeperEnsemble]:
    """A 3-member ZooKeeper quorum on 127.0.0.1, started on first request (``.hosts``)."""
    from eventlet_handler.testing.zookeeper import ZooKeeperEnsemble

    _require_zookeeper()
    ensemble = ZooKeeperEnsemble(3)
    ensemble.start()
    try:
        yield ensemble
    finally:
        ensemble.stop()


# -- leak checks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Alive greenlets and open file descriptors of the process at one moment.

    The greenlets themselves, weakly: an id() of one that died could be reused by a
    leaked one, and holding them strongly would keep finished ones alive.
    """

    greenlets: "weakref.WeakSet[Any]"
    fds: dict[int, str]


def _alive_greenlets() -> "weakref.WeakSet[Any]":
    import greenlet

    return weakref.WeakSet(
        obj for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and not obj.dead
    )


def _describe_greenlet(glet: Any) -> str:
    frame = glet.gr_frame
    if frame is None:
        return f"{type(glet).__name__} (not started)"
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    return f"{type(glet).__name__} at {name} ({code.co_filename}:{frame.f_lineno})"


def _open_fds() -> dict[int, str]:
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        return {}
    found: dict[int, str] = {}
    for name in os.listdir(fd_dir):
        try:
            found[int(name)] = os.readlink(os.path.join(fd_dir, name))
        except OSError:  # the fd listdir itself used, already closed
            continue
    return found


def take_snapshot() -> Snapshot:
    """Record alive greenlets and open fds (after a ``gc.collect()``). Test thread."""
    gc.collect()
    return Snapshot(_alive_greenlets(), _open_fds())


def leaks_since(before: Snapshot, settle: float = LEAK_SETTLE_SECONDS) -> list[str]:
    """Green threads and fds alive now but not in ``before``, after letting them settle.

    Yields to the calling thread's hub (``eventlet.sleep``) between looks, so green
    threads of that hub that are finishing can finish; call it from the test's thread.
    Returns one line per leak; empty when nothing leaked.
    """
    import eventlet

    deadline = time.monotonic() + settle
    while True:
        leaks = _diff(before, take_snapshot())
        if not leaks or time.monotonic() >= deadline:
            return leaks
        eventlet.sleep(_SETTLE_STEP)


def _diff(before: Snapshot, after: Snapshot) -> list[str]:
    leaks = [
        f"green thread still alive: {_describe_greenlet(glet)}"
        for glet in list(after.greenlets)
        if glet not in before.greenlets and not glet.dead
    ]
    leaks += [
        f"file descriptor {fd} still open: {target}"
        for fd, target in sorted(after.fds.items())
        if before.fds.get(fd) != target
    ]
    return leaks


def _warm_up_hub() -> None:
    """Create what outlives every handler by design (the test hub's bridge) before the
    baseline, so it is not counted as a leak of the first test that needs it."""
    from eventlet import hubs

    from eventlet_handler._bridge import bridge_of

    bridge_of(hubs.get_hub(), create=True)


def _check_leaks(before: Snapshot, what: str) -> None:
    leaks = leaks_since(before)
    if leaks:
        pytest.fail(
            f"{what} left {len(leaks)} green threads or fds behind after "
            f"{LEAK_SETTLE_SECONDS} s: stop every client and green thread the test started.\n  "
            + "\n  ".join(leaks),
            pytrace=False,
        )


# -- handlers and clients ------------------------------------------------------------


def _marker_options(request: pytest.FixtureRequest) -> tuple[dict[str, Any], bool]:
    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    check_leaks = bool(options.pop("check_leaks", True))
    unknown = set(options) - _HANDLER_OPTION_NAMES
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER}: unknown options {sorted(unknown)}; valid are "
            f"{sorted(_HANDLER_OPTION_NAMES | {'check_leaks'})}"
        )
    return options, check_leaks


@pytest.fixture
def eventlet_handler(request: pytest.FixtureRequest) -> Iterator[EventletHandler]:
    """A started ``EventletHandler``; stopped after the test, then checked for leaks."""
    from eventlet_handler.handler import EventletHandler

    options, check_leaks = _marker_options(request)
    _warm_up_hub()
    before = take_snapshot()
    handler = EventletHandler(**options)
    handler.start()
    try:
        yield handler
    finally:
        handler.stop(timeout=10.0)
    if check_leaks:
        _check_leaks(before, f"the test (handler {handler!r})")


@pytest.fixture
def deterministic_handler(request: pytest.FixtureRequest) -> Iterator[DeterministicHandler]:
    """A ``DeterministicHandler`` for stepping callbacks; leak-checked after the test."""
    from eventlet_handler.testing._deterministic import DeterministicHandler

    _, check_leaks = _marker_options(request)
    _warm_up_hub()
    before = take_snapshot()
    handler = DeterministicHandler()
    try:
        yield handler
    finally:
        handler.stop()
    if check_leaks:
        _check_leaks(before, "the test (deterministic handler)")


@pytest.fixture
def kazoo_client(eventlet_handler: EventletHandler, zookeeper_server: ZooKeeperServer) -> Iterator[KazooClient]:
    """A ``KazooClient`` on ``eventlet_handler``, connected to ``zookeeper_server``."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=zookeeper_server.hosts, handler=eventlet_handler)
    client.start(timeout=_CLIENT_START_TIMEOUT)
    try:
        yield client
    finally:
        client.stop()
        client.close()
