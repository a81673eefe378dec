"""Failover on a 3-member ZooKeeper ensemble under a steady load of green workers.

The module has its own ensemble: a test's damage (a stopped or paused member) is
repaired after each test and never reaches other modules. Recovery times are printed
(run with ``-s``).

What ZooKeeper promises here, and so what is asserted: while a quorum (2 of 3) stays up
and the client reaches a serving member within its session timeout, the *session*
survives (same session id, no ``LOST``; kazoo goes ``SUSPENDED`` -> ``CONNECTED``), so
its ephemeral nodes survive; kazoo fires every one-shot watch once with
``EventType.NONE`` (state ``CONNECTING``) when the connection drops, and its
``DataWatch`` recipe re-reads on reconnect, so it sees a change made while the client
was away; and every write the server acknowledged is durable. A write that failed with ``ConnectionLoss`` has an unknown
outcome and is not checked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import eventlet
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionClosedError, ConnectionLoss, SessionExpiredError
from kazoo.protocol.states import EventType, KazooState

from eventlet_handler import EventletHandler
from eventlet_handler.testing.zookeeper import EnsembleMember, ZooKeeperEnsemble, zookeeper_available
from support import kazoo_socket

pytestmark = pytest.mark.timeout(180)

CONNECT_TIMEOUT = 30.0
RECOVERY_TIMEOUT = 45.0
WORKERS = 50


@pytest.fixture(scope="module")
def ensemble() -> Iterator[ZooKeeperEnsemble]:
    if not zookeeper_available():
        pytest.skip("ZooKeeper is not available here (needs java and the ZooKeeper 3.8 jars)")
    with ZooKeeperEnsemble(3) as started:
        yield started


@pytest.fixture(autouse=True)
def repair(ensemble: ZooKeeperEnsemble) -> Iterator[None]:
    """After each test: every member resumed and serving again."""
    yield
    for member in ensemble.members:
        if member.paused:
            member.resume()
    for member in ensemble.members:
        if not member.running:
            member.start(timeout=60)


@pytest.fixture
def verifier(ensemble: ZooKeeperEnsemble) -> Iterator[Any]:
    """``verifier(avoid)``: a client on its own handler connected to members other than ``avoid``."""
    made: list[tuple[KazooClient, EventletHandler]] = []

    def make(avoid: EnsembleMember) -> KazooClient:
        hosts = ",".join(m.hosts for m in ensemble.members if m is not avoid)
        handler = EventletHandler()
        client = KazooClient(hosts=hosts, handler=handler)
        made.append((client, handler))
        client.start(timeout=CONNECT_TIMEOUT)
        return client

    yield make
    for client, handler in made:
        client.stop()
        client.close()
        handler.stop(timeout=10)


def connected_member(client: KazooClient, ensemble: ZooKeeperEnsemble) -> EnsembleMember:
    return ensemble.member_by_port(kazoo_socket(client).getpeername()[1])


class Writers:
    """Green workers that create unique nodes in a steady loop and remember which the
    server acknowledged."""

    def __init__(self, client: KazooClient, base: str, count: int = WORKERS) -> None:
        self.client, self.base = client, base
        self.running = True
        self.acknowledged: list[str] = []
        self.last_ack = 0.0
        self.errors: dict[str, int] = {}
        self.error_times: list[float] = []
        self.unexpected: list[str] = []
        self.pool = eventlet.GreenPool(count)
        for index in range(count):
            self.pool.spawn_n(self._work, index)

    def _work(self, index: int) -> None:
        n = 0
        while self.running:
            n += 1
            path = f"{self.base}/w{index}-{n}"
            try:
                created = self.client.create(path, b"")
            except (ConnectionLoss, ConnectionClosedError, SessionExpiredError) as exc:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
                self.error_times.append(time.monotonic())
            except Exception as exc:
                self.unexpected.append(repr(exc))
            else:
                # What the server said it created, not what was asked: a swallowed error
                # would come back as some other value and be caught against the server.
                self.acknowledged.append(created)
                if created != path:
                    self.unexpected.append(f"create({path!r}) returned {created!r}")
                self.last_ack = time.monotonic()
            eventlet.sleep(0.01)

    def wait_acks_after(self, since: float, count: int, timeout: float = RECOVERY_TIMEOUT) -> float:
        """Wait until ``count`` more writes are acknowledged after ``since``; return when the first was."""
        first = None
        target = len(self.acknowledged) + count
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < target or first is None:
            if first is None and self.last_ack > since:
                first = self.last_ack
            assert time.monotonic() < deadline, f"no acknowledged writes within {timeout} s"
            eventlet.sleep(0.01)
        return first

    def errors_after(self, since: float) -> int:
        return sum(1 for t in self.error_times if t >= since)

    def stop(self) -> None:
        self.running = False
        with eventlet.Timeout(30, False):
            self.pool.waitall()
        assert not self.pool.running(), f"{self.pool.running()} workers left hanging"
        assert not self.unexpected, self.unexpected[:5]


class States:
    def __init__(self, client: KazooClient) -> None:
        self.seen: list[tuple[float, str]] = []
        self.reconnected = client.handler.event_object()
        client.add_listener(self._record)

    def _record(self, state: str) -> None:
        self.seen.append((time.monotonic(), state))
        if state == KazooState.CONNECTED and any(s == KazooState.SUSPENDED for _, s in self.seen):
            self.reconnected.set()

    def names(self) -> list[str]:
        return [state for _, state in self.seen]

    def connected_at(self) -> float:
        return [t for t, s in self.seen if s == KazooState.CONNECTED][-1]


def _start_client(ensemble: ZooKeeperEnsemble, handler: EventletHandler, timeout: float) -> KazooClient:
    client = KazooClient(hosts=ensemble.hosts, handler=handler, timeout=timeout)
    client.start(timeout=CONNECT_TIMEOUT)
    return client


# Restarting a member opens the harness's watchdog pipe, which lives as long as the
# member does: the fixture's fd check would count it; the workers are checked instead.
@pytest.mark.eventlet_handler_options(check_leaks=False)
def test_failover_when_the_connected_member_stops(
    ensemble: ZooKeeperEnsemble, eventlet_handler: EventletHandler, verifier: Any
) -> None:
    client = _start_client(ensemble, eventlet_handler, timeout=10.0)
    try:
        base = f"/failover/{uuid.uuid4().hex}"
        client.ensure_path(base)
        client.create(f"{base}/ephemeral", b"", ephemeral=True)
        client.create(f"{base}/watched", b"before")
        fired = client.handler.event_object()
        events: list[Any] = []

        def watch(event: Any) -> None:
            events.append(event)
            fired.set()

        client.get(f"{base}/watched", watch=watch)
        seen_data: list[Any] = []
        saw_change = client.handler.event_object()

        def data_watch(data: Any, stat: Any) -> None:
            seen_data.append(data)
            if data == b"changed while the client was away":
                saw_change.set()

        client.DataWatch(f"{base}/watched", data_watch)
        session = client.client_id[0]
        states = States(client)
        writers = Writers(client, base)
        try:
            writers.wait_acks_after(0, 200)
            victim = connected_member(client, ensemble)
            other = verifier(victim)
            was = "leader" if victim.mode() == "leader" else "follower"
            began = time.monotonic()
            victim.stop()
            other.set(f"{base}/watched", b"changed while the client was away")
            assert states.reconnected.wait(RECOVERY_TIMEOUT), f"no reconnect; states {states.names()}"
            reconnected = states.connected_at() - began
            first_ack = writers.wait_acks_after(states.connected_at(), 200) - began
            assert fired.wait(RECOVERY_TIMEOUT), "the one-shot watch did not fire on the drop"
            assert saw_change.wait(RECOVERY_TIMEOUT), f"DataWatch missed the change: {seen_data}"
            new_member = connected_member(client, ensemble)
            victim.start(timeout=60)
            writers.wait_acks_after(time.monotonic(), 100)
        finally:
            writers.stop()
        print(f"\nfailover ({was} member {victim.server_id} stopped): reconnected to member {new_member.server_id} after {reconnected:.2f} s, first write "
              f"acknowledged after the reconnect at {first_ack:.2f} s; writes {len(writers.acknowledged)} acknowledged, errors {writers.errors}")
        assert new_member is not victim
        # No "errors > 0" here (the pause test has it): a member stopped with SIGTERM may
        # answer the requests in flight before it closes, so a stop with no ConnectionLoss
        # is legitimate (seen in CI: 617 acknowledged, 0 errors). What catches a handler
        # that swallows ConnectionLoss is the check below: every create() result against
        # what the server holds.
        assert KazooState.LOST not in states.names(), states.names()
        assert states.names()[:1] == [KazooState.SUSPENDED]
        assert client.client_id[0] == session, "the session did not survive the failover"
        assert other.exists(f"{base}/ephemeral") is not None, "the ephemeral node did not survive"
        assert [(e.type, e.state) for e in events] == [(EventType.NONE, "CONNECTING")], events
        other.sync(base)
        present = {f"{base}/{name}" for name in other.get_children(base)}
        missing = set(writers.acknowledged) - present
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
        client.delete(base, recursive=True)
    finally:
        client.stop()
        client.close()


def test_failover_when_the_connected_member_is_paused_past_the_session_timeout(
    ensemble: ZooKeeperEnsemble, eventlet_handler: EventletHandler, verifier: Any
) -> None:
    session_timeout = 6.0
    client = _start_client(ensemble, eventlet_handler, timeout=session_timeout)
    try:
        base = f"/failover/{uuid.uuid4().hex}"
        client.ensure_path(base)
        client.create(f"{base}/ephemeral", b"", ephemeral=True)
        session = client.client_id[0]
        states = States(client)
        writers = Writers(client, base)
        try:
            writers.wait_acks_after(0, 200)
            victim = connected_member(client, ensemble)
            other = verifier(victim)
            was = "leader" if victim.mode() == "leader" else "follower"
            began = time.monotonic()
            victim.pause()
            assert states.reconnected.wait(RECOVERY_TIMEOUT), f"no reconnect; states {states.names()}"
            reconnected = states.connected_at() - began
            first_ack = writers.wait_acks_after(states.connected_at(), 200) - began
            new_member = connected_member(client, ensemble)
            # Keep it frozen past the session timeout: its view of the session is stale.
            eventlet.sleep(max(0.0, began + session_timeout + 1.0 - time.monotonic()))
            victim.resume()
            resumed = time.monotonic()
            writers.wait_acks_after(resumed, 200)
        finally:
            writers.stop()
        print(f"\npause ({was} member {victim.server_id} SIGSTOPped {resumed - began:.1f} s, session timeout "
              f"{session_timeout} s): reconnected to member {new_member.server_id} after {reconnected:.2f} s, "
              f"first write acknowledged after the reconnect at {first_ack:.2f} s; writes {len(writers.acknowledged)} "
              f"acknowledged, errors {writers.errors}")
        assert new_member is not victim
        assert writers.errors_after(began) > 0, f"pausing the member produced no connection error: {writers.errors}"
        assert KazooState.LOST not in states.names(), states.names()
        assert client.client_id[0] == session, "the session did not survive"
        assert other.exists(f"{base}/ephemeral") is not None
        other.sync(base)
        present = {f"{base}/{name}" for name in other.get_children(base)}
        missing = set(writers.acknowledged) - present
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
        client.delete(base, recursive=True)
    finally:
        client.stop()
        client.close()
