"""The handler's lifecycle against a real ZooKeeper (issue 9.1, 9.5).

- Spawned work outlives ``stop()``: kazoo's TreeCache, whose background loop is
  spawned once, keeps delivering events on a client stopped and started again.
- ``mode="auto"`` is chosen per start, by the starting thread: a client started in
  a native thread that has no eventlet hub works in a monkey-patched process too.

Runs in all three test processes; every wait is bounded.
"""

from __future__ import annotations

import queue as std_queue
import uuid
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent

from eventlet_handler import EventletHandler
from eventlet_handler.config import MODE_ENV
from eventlet_handler.testing.zookeeper import ZooKeeperServer
from support import connected_client, home_retired, home_thread, in_native_thread, process_is_monkey_patched


pytestmark = pytest.mark.timeout(90)

WAIT = 15.0


def _next_event(events: Any, wanted: int, path: str | None = None) -> Any:
    """The next event of type ``wanted`` (for ``path``), skipping others; bounded."""
    seen = []
    while True:
        try:
            event = events.get(timeout=WAIT)
        except std_queue.Empty:
            raise AssertionError(f"no TreeEvent {wanted} for {path} within {WAIT} s; saw {seen}") from None
        seen.append(event.event_type)
        data_path = event.event_data.path if event.event_data is not None else None
        if event.event_type == wanted and (path is None or data_path == path):
            return event


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_tree_cache_keeps_delivering_events_after_client_stop_and_start(
    mode: str, zookeeper_server: ZooKeeperServer
) -> None:
    handler = EventletHandler(mode)
    client = KazooClient(hosts=zookeeper_server.hosts, handler=handler)
    client.start(timeout=WAIT)
    home = home_thread(handler)
    base = f"/lifecycle/{uuid.uuid4().hex}"
    client.ensure_path(base)
    events = handler.queue_impl()
    cache = TreeCache(client, base)
    cache.listen(events.put)
    try:
        cache.start()
        _next_event(events, TreeEvent.INITIALIZED)
        client.stop()
        client.start(timeout=WAIT)
        _next_event(events, TreeEvent.CONNECTION_LOST)  # queued while stopped, run by the loop
        client.create(f"{base}/after-restart", b"x")
        _next_event(events, TreeEvent.NODE_ADDED, f"{base}/after-restart")
        assert cache.get_data(f"{base}/after-restart") is not None
    finally:
        cache.close()
        if client.connected:
            client.delete(base, recursive=True)
        client.stop()
        client.close()
    handler.stop(timeout=WAIT)  # TreeCache's loop ended with close(): the home retires
    assert home_retired(handler, home), f"{handler!r} kept its home after everything ended"


def test_auto_client_started_in_a_native_thread_without_a_hub(
    zookeeper_server: ZooKeeperServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a ``concurrent.futures`` / ``asyncio.to_thread`` worker under the asyncio hub
    is: a native thread with no hub. ``auto`` gives it isolated mode, whatever the
    patching, and says why; the main thread's start of the same handler says shared
    when patched."""
    monkeypatch.delenv(MODE_ENV, raising=False)
    handler = EventletHandler()

    def worker() -> dict[str, Any]:
        with connected_client(zookeeper_server.hosts, handler, WAIT) as client:
            outcome = {"repr": repr(handler) + " " + handler.stats()["mode_reason"], "mode": handler.mode}
            client.ensure_path("/lifecycle")
            return {**outcome, "exists": client.exists("/lifecycle") is not None}

    outcome = in_native_thread(worker, WAIT * 3, name="executor-like")
    assert outcome["mode"] == "isolated" and outcome["exists"]
    if process_is_monkey_patched():
        assert outcome["repr"].count("native thread with no eventlet hub") == 2, outcome["repr"]
        handler.start()  # from the main thread: shared again, chosen per start
        try:
            assert handler.mode == "shared", repr(handler)
        finally:
            handler.stop(timeout=WAIT)


PATCHED_ASYNCIO_SCRIPT = r"""
import sys, warnings
warnings.simplefilter("ignore")
import eventlet
eventlet.monkey_patch()
import asyncio, concurrent.futures
from kazoo.client import KazooClient
from eventlet_handler import EventletHandler

def use_client(where):
    handler = EventletHandler()
    client = KazooClient(sys.argv[1], handler=handler)
    client.start(timeout=15)
    try:
        client.ensure_path("/lifecycle")
        return "%s %s %s" % (where, handler.mode, client.exists("/lifecycle") is not None)
    finally:
        client.stop()
        client.close()

# Reported through a queue of this package: a Future's own wake-up would not cross
# from the native worker into the main thread's green wait (eventlet's limitation).
reports = EventletHandler().queue_impl()
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    pool.submit(lambda: reports.put(use_client("executor")))
    print(reports.get(timeout=30), flush=True)
print(use_client("main"), flush=True)
"""


def test_auto_in_executor_worker_under_monkey_patched_asyncio_hub(zookeeper_server: ZooKeeperServer) -> None:
    """The cell of issue 9.5 itself, in a process of its own: ``monkey_patch()`` on
    ``EVENTLET_HUB=asyncio`` gives ``concurrent.futures`` real native threads with no
    hub; a client started there used to get shared mode and raise ``RuntimeError``."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, EVENTLET_HUB="asyncio")
    env.pop(MODE_ENV, None)
    proc = subprocess.run(
        [sys.executable, "-c", PATCHED_ASYNCIO_SCRIPT, zookeeper_server.hosts],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.split()
    assert lines[0] == "executor" and lines[2] == "True", proc.stdout
    assert lines[3:] == ["main", "shared", "True"], proc.stdout
