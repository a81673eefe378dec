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

import inspect
from typing import Callable, List, Optional

import pytest

# support first: it imports eventlet with eventlet's deprecation warning silenced.
from support import BODY_TIMEOUT, CALLERS, HUBS, MODES, MONKEY_PATCHED, Caller, HandlerInBody, run_in_hub
from awaiters import AWAITERS, Awaiter  # noqa: I001


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


@pytest.fixture(params=CALLERS)
def caller(request: pytest.FixtureRequest) -> Caller:
    return Caller(request.param)


@pytest.fixture(params=AWAITERS)
def awaiter(request: pytest.FixtureRequest) -> Awaiter:
    return Awaiter(request.param)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def started(mode: str) -> Callable[[], HandlerInBody]:
    """``with started() as handler:`` in a test: a running handler of ``mode``."""
    return lambda: HandlerInBody(mode)


