"""Session expiry, connection loss and "nothing lost", under load, on a real ZooKeeper.

Each test shares one KazooClient among many green threads of the test's hub and
breaks its session or connection while they work. Every wait is bounded.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import eventlet
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionClosedError, ConnectionLoss, SessionExpiredError
from kazoo.protocol.states import KazooState

from eventlet_handler import EventletHandler
from eventlet_handler.testing.zookeeper import ZooKeeperServer
from support import StateLog, expire_session, kazoo_socket

pytestmark = pytest.mark.timeout(120)

CONNECT_TIMEOUT = 15.0
WAIT = 20.0
#: The errors kazoo documents for a request cut off by a lost connection or session.
CONNECTION_ERRORS = (ConnectionLoss, ConnectionClosedError, SessionExpiredError)


@pytest.fixture
def make_client(eventlet_handler: EventletHandler, zookeeper_server: ZooKeeperServer) -> Iterator[Any]:
    """KazooClients on their own handlers (the first on the leak-checked fixture)."""
    made: list[tuple[KazooClient, EventletHandler]] = []

    def make(**kwargs: Any) -> KazooClient:
        handler = eventlet_handler if not made else EventletHandler()
        client = KazooClient(hosts=zookeeper_server.hosts, handler=handler, **kwargs)
        made.append((client, handler))
        client.start(timeout=CONNECT_TIMEOUT)
        return client

    yield make
    for client, handler in reversed(made):
        client.stop()
        client.close()
        handler.stop(timeout=10)


class Load:
    """``count`` green threads doing set/get on their own node until stopped; errors are
    counted by type, none may escape, and every thread must finish when asked."""

    def __init__(self, client: KazooClient, base: str, count: int) -> None:
        self.client, self.base = client, base
        self.running = True
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.unexpected: list[str] = []
        self.pool = eventlet.GreenPool(count)
        for index in range(count):
            self.pool.spawn_n(self._work, index)

    def _work(self, index: int) -> None:
        path = f"{self.base}/w{index}"
        n = 0
        while self.running:
            n += 1
            try:
                self.client.set(path, str(n).encode()) if n > 1 else self.client.ensure_path(path)
                self.client.get(path)
                self.ok += 1
            except CONNECTION_ERRORS as exc:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
                eventlet.sleep(0.01)
            except Exception as exc:
                self.unexpected.append(repr(exc))
                eventlet.sleep(0.01)

    def wait_progress(self, ops: int, timeout: float = WAIT) -> None:
        target = self.ok + ops
        deadline = time.monotonic() + timeout
        while self.ok < target:
            assert time.monotonic() < deadline, f"load made no progress ({self.ok}/{target})"
            eventlet.sleep(0.01)

    def stop(self, timeout: float = WAIT) -> None:
        self.running = False
        with eventlet.Timeout(timeout, False):
            self.pool.waitall()
        assert not self.pool.running(), f"{self.pool.running()} green threads left hanging"
        assert not self.unexpected, f"unexpected errors: {self.unexpected[:5]}"


def test_session_expiry_under_load_listeners_see_LOST_then_CONNECTED(
    make_client: Any, zookeeper_server: ZooKeeperServer
) -> None:
    client = make_client()
    other = make_client()
    base = f"/expiry/{uuid.uuid4().hex}"
    client.ensure_path(base)
    client.create(f"{base}/ephemeral", b"mine", ephemeral=True)
    lock = client.Lock(f"{base}/lock", "first")
    assert lock.acquire(timeout=WAIT)
    old_session = client.client_id[0]
    states = StateLog(client)
    seen, connected_again = states.seen, states.when(KazooState.CONNECTED, after=KazooState.LOST)

    load = Load(client, base, 200)
    try:
        load.wait_progress(500)
        began = time.monotonic()
        expire_session(client, zookeeper_server.hosts)
        assert connected_again.wait(WAIT), f"no CONNECTED after LOST; states seen: {seen}"
        recovered = time.monotonic() - began
        load.wait_progress(500)
    finally:
        load.stop()
    print(f"\nexpiry: new session after {recovered:.2f} s; load {load.ok} ok, errors {load.errors}")

    lost_at = seen.index(KazooState.LOST)
    assert KazooState.CONNECTED in seen[lost_at:], seen
    assert client.client_id[0] != old_session, "the session was not replaced"
    # The ephemeral node went with the old session and can be created again.
    assert other.exists(f"{base}/ephemeral") is None
    client.create(f"{base}/ephemeral", b"mine again", ephemeral=True)
    assert other.get(f"{base}/ephemeral")[0] == b"mine again"
    # The lock's node went too: another session can take the lock, then we can again.
    other_lock = other.Lock(f"{base}/lock", "second")
    assert other_lock.acquire(timeout=WAIT), "the expired session still holds the lock"
    other_lock.release()
    lock = client.Lock(f"{base}/lock", "first again")
    assert lock.acquire(timeout=WAIT)
    lock.release()
    client.delete(base, recursive=True)


def _drop_connection(client: KazooClient) -> None:
    """Cut the client's TCP connection as a network fault would (both directions)."""
    kazoo_socket(client).shutdown(socket.SHUT_RDWR)


def test_connection_loss_during_get_async_flood_leaves_nothing_pending(make_client: Any) -> None:
    client = make_client()
    path = f"/flood/{uuid.uuid4().hex}"
    client.create(path, b"value", makepath=True)
    results = []
    for i in range(5000):
        results.append(client.get_async(path))
        if i == 2500:
            _drop_connection(client)
        if i % 500 == 0:
            eventlet.sleep(0)  # let the connection loop send some and notice the drop
    done, failed, pending = 0, {}, []
    deadline = time.monotonic() + 60
    for index, result in enumerate(results):
        try:
            value, _ = result.get(timeout=max(0.0, deadline - time.monotonic()))
            assert value == b"value"
            done += 1
        except CONNECTION_ERRORS as exc:
            failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
        except client.handler.timeout_exception:
            pending.append(index)
    print(f"\nget_async flood across a dropped connection: {done} ok, failed {failed}, pending {len(pending)}")
    assert not pending, f"{len(pending)} results still pending after 60 s, e.g. #{pending[:5]}"
    assert done + sum(failed.values()) == len(results)
    assert client.get(path)[0] == b"value"  # and the client recovered
    client.delete(path)


def _flood_creates(client: KazooClient, base: str, count: int, breaker: Any) -> tuple[set, set, dict]:
    """Issue ``count`` creates of unique paths from green threads; call ``breaker`` midway.
    Returns (acknowledged, failed, failures by type)."""
    acknowledged: set[str] = set()
    failed: set[str] = set()
    kinds: dict[str, int] = {}

    def create(index: int) -> None:
        path = f"{base}/c{index:05d}"
        try:
            client.create(path, b"")
            acknowledged.add(path)
        except CONNECTION_ERRORS as exc:
            failed.add(path)
            kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1

    pool = eventlet.GreenPool(count)
    for index in range(count):
        pool.spawn_n(create, index)
        if index == count // 2:
            # Break once the server has acknowledged some: a cut with requests on both sides.
            deadline = time.monotonic() + 10
            while len(acknowledged) < count // 10 and time.monotonic() < deadline:
                eventlet.sleep(0.001)
            breaker()
    with eventlet.Timeout(60, False):
        pool.waitall()
    assert not pool.running(), f"{pool.running()} creates never returned"
    assert len(acknowledged) + len(failed) == count
    return acknowledged, failed, kinds


def _children(client: KazooClient, base: str) -> set[str]:
    client.sync(base)
    return {f"{base}/{name}" for name in client.get_children(base)}


def test_nothing_lost_across_a_dropped_connection(make_client: Any) -> None:
    """What kazoo's semantics let us prove:

    * every create returns (success or one of kazoo's connection errors): none hangs;
    * every acknowledged create is on the server;
    * a create that failed with ``ConnectionLoss`` has an *unknown* outcome (it may have
      reached the server before the cut), so its presence proves nothing; but ZooKeeper
      applies a session's requests in order, so once a later write of the same session
      is acknowledged, no earlier request can still be applied. Hence: the set of failed
      paths present must not grow after that barrier, however long we wait
      (a request stranded in kazoo's queue, design notes section 3, would appear late).
    """
    client = make_client()
    observer = make_client()
    base = f"/nothing-lost/{uuid.uuid4().hex}"
    client.ensure_path(base)
    acknowledged, failed, kinds = _flood_creates(client, base, 2000, lambda: _drop_connection(client))
    client.create(f"{base}/barrier", b"")  # acknowledged: everything before it is settled
    present = _children(observer, base)
    assert acknowledged <= present, f"{len(acknowledged - present)} acknowledged creates missing"
    failed_present = failed & present
    # Give any stranded request every chance to go out: more traffic and pings.
    for _ in range(3):
        client.set(f"{base}/barrier", b"")
        eventlet.sleep(0.5)
    later = _children(observer, base)
    print(f"\ndropped connection: {len(acknowledged)} acknowledged, failed {kinds}, "
          f"{len(failed_present)} failed-but-applied before the barrier")
    assert failed & later == failed_present, (
        f"{len(failed & later - failed_present)} creates whose callers got an error were applied later"
    )
    client.delete(base, recursive=True)


def test_nothing_lost_when_the_client_stops_mid_flood(make_client: Any) -> None:
    """``stop()`` mid-flood: callers of requests that were never sent get
    ``ConnectionClosedError``; none of them may reach the server afterwards, not even
    once the same client starts again."""
    client = make_client()
    observer = make_client()
    base = f"/nothing-lost/{uuid.uuid4().hex}"
    client.ensure_path(base)
    acknowledged, failed, kinds = _flood_creates(client, base, 2000, client.stop)
    present = _children(observer, base)
    assert acknowledged <= present
    failed_present = failed & present
    client.start(timeout=CONNECT_TIMEOUT)
    for _ in range(3):
        client.create(f"{base}/after-{uuid.uuid4().hex}", b"")
        eventlet.sleep(0.3)
    later = _children(observer, base)
    print(f"\nstopped mid-flood: {len(acknowledged)} acknowledged, failed {kinds}, "
          f"{len(failed_present)} failed-but-applied before the stop returned")
    assert failed & later == failed_present, (
        f"{len(failed & later - failed_present)} creates whose callers got an error were applied later"
    )
    client.delete(base, recursive=True)
