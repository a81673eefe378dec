"""KazooClient on EventletHandler against a real ZooKeeper.

Runs in each test process (unpatched, monkey-patched, asyncio hub), and in
each process in both handler modes.
"""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any, Iterator, List

import eventlet
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoNodeError
from kazoo.retry import KazooRetry, RetryFailedError
from kazoo.protocol.states import KazooState
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock

from support import MODE_PARAMS, MONKEY_PATCHED, StateLog, connected_client, expire_session, kazoo_socket
from eventlet_handler import EventletHandler


@pytest.fixture(autouse=True, params=MODE_PARAMS)
def handler_mode(request: pytest.FixtureRequest) -> str:
    """Both modes; the plugin's ``eventlet_handler`` fixture reads the mark."""
    return request.param


@pytest.fixture
def root(kazoo_client: KazooClient, handler_mode: str) -> Iterator[str]:
    assert kazoo_client.handler.mode == handler_mode
    path = f"/it-{uuid.uuid4().hex[:10]}"
    kazoo_client.ensure_path(path)
    yield path
    kazoo_client.delete(path, recursive=True)


def _joinall(threads: List[Any], timeout: float) -> None:
    with eventlet.Timeout(timeout):
        for thread in threads:
            thread.wait()


def test_crud_and_transaction(kazoo_client: KazooClient, root: str) -> None:
    client = kazoo_client
    client.create(f"{root}/a", b"1")
    assert client.get(f"{root}/a")[0] == b"1"
    stat = client.set(f"{root}/a", b"2")
    assert stat.version == 1
    assert client.exists(f"{root}/b") is None
    tx = client.transaction()
    tx.create(f"{root}/b", b"x")
    tx.set_data(f"{root}/a", b"3", version=1)
    assert [type(r).__name__ for r in tx.commit()] == ["str", "ZnodeStat"]
    assert sorted(client.get_children(root)) == ["a", "b"]
    client.delete(f"{root}/a")
    with pytest.raises(NoNodeError):
        client.get(f"{root}/a")


def test_data_watch_sees_changes_in_order(kazoo_client: KazooClient, root: str) -> None:
    path = f"{root}/watched"
    kazoo_client.create(path, b"0")
    seen: List[int] = []
    final = kazoo_client.handler.event_object()

    @kazoo_client.DataWatch(path)
    def watch(data: Any, stat: Any) -> None:
        if data is None:  # the node is deleted at teardown
            return
        seen.append(int(data))
        if data == b"100":
            final.set()

    for i in range(1, 101):
        kazoo_client.set(path, str(i).encode())
    assert final.wait(10)
    assert seen == sorted(set(seen)) and seen[0] == 0 and seen[-1] == 100, seen  # in order, each once


def test_child_watch_sees_every_list_growing(kazoo_client: KazooClient, root: str) -> None:
    seen: List[int] = []
    final = kazoo_client.handler.event_object()

    @kazoo_client.ChildrenWatch(root)
    def watch(children: List[str]) -> None:
        seen.append(len(children))
        if len(children) == 30:
            final.set()

    for i in range(30):
        kazoo_client.create(f"{root}/c{i:02d}")
    assert final.wait(10)
    assert seen == sorted(set(seen)) and seen[-1] == 30, seen  # in order, each once


def test_get_async_pipeline_completes_in_order(kazoo_client: KazooClient, root: str) -> None:
    for i in range(20):
        kazoo_client.create(f"{root}/n{i}", str(i).encode())
    results = [kazoo_client.get_async(f"{root}/n{i % 20}") for i in range(2000)]
    order: List[int] = []
    last = kazoo_client.handler.event_object()
    for i, result in enumerate(results):
        result.rawlink(lambda r, i=i: (order.append(i), i == 1999 and last.set()))
    assert [int(r.get(timeout=10)[0]) for r in results] == [i % 20 for i in range(2000)]
    assert last.wait(10)
    assert order == list(range(2000))


def test_lock_contended_by_many_green_threads(kazoo_client: KazooClient, root: str) -> None:
    counter_path = f"{root}/counter"
    kazoo_client.create(counter_path, b"0")
    holders: List[int] = []
    overlaps: List[int] = []

    def worker(n: int) -> None:
        lock = Lock(kazoo_client, f"{root}/lock", identifier=str(n))
        for _ in range(3):
            with lock:
                holders.append(n)
                if len(holders) > 1:
                    overlaps.append(n)
                value = int(kazoo_client.get(counter_path)[0])
                eventlet.sleep(0)
                kazoo_client.set(counter_path, str(value + 1).encode())
                holders.remove(n)

    threads = [eventlet.spawn(worker, n) for n in range(40)]
    _joinall(threads, 60)
    assert overlaps == []
    assert int(kazoo_client.get(counter_path)[0]) == 120


def test_election_gives_each_green_thread_one_term(kazoo_client: KazooClient, root: str) -> None:
    terms: List[int] = []
    in_office: List[int] = []

    def lead(n: int) -> None:
        in_office.append(n)
        assert len(in_office) == 1, "two leaders at once"
        terms.append(n)
        eventlet.sleep(0.005)
        in_office.remove(n)

    def candidate(n: int) -> None:
        Election(kazoo_client, f"{root}/election", identifier=str(n)).run(lead, n)

    threads = [eventlet.spawn(candidate, n) for n in range(25)]
    _joinall(threads, 60)
    assert sorted(terms) == list(range(25))


def test_dict_retry_options_are_accepted_and_retry(zookeeper_server: Any, handler_mode: str) -> None:
    """kazoo accepts dict retry options only if ``handler.sleep_func`` equals
    ``KazooRetry``'s default sleep (it compares with ``!=``): in every process, not only
    a monkey-patched one (kazoo's threading handler accepts them unpatched too)."""
    options = {"max_tries": 3, "delay": 0.01}
    handler = EventletHandler(handler_mode)
    if MONKEY_PATCHED:
        assert handler.sleep_func == eventlet.sleep
    with connected_client(zookeeper_server.hosts, handler, command_retry=options, connection_retry=options) as client:
        attempts: List[int] = []

        def flaky() -> Any:
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionLoss("forced, to make KazooRetry back off")
            return client.exists("/")

        assert client.retry(flaky) is not None
        assert len(attempts) == 3
        with pytest.raises(RetryFailedError):
            client.retry(lambda: (_ for _ in ()).throw(ConnectionLoss("always")))


class _GapTicker:
    """Ticks every 10 ms in one hub, recording the longest gap between ticks."""

    def __init__(self, spawn: Any) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self.running = True
        self.task = spawn(self._run)

    def _run(self) -> None:
        last = time.monotonic()
        while self.running:
            eventlet.sleep(0.01)
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            last = now


@pytest.mark.parametrize("retry_kind", ["dict", "KazooRetry-with-sleep_func"])
def test_connection_retry_back_off_blocks_no_longer_than_the_back_off(handler_mode: str, retry_kind: str) -> None:
    """Unpatched, kazoo builds dict retries with the stdlib ``time.sleep`` (its default),
    so the connection loop's back-off sleeps natively in the handler's home hub, in
    0.1 s steps, with no yield between them (README, "Differences from kazoo's
    handlers"): a green thread of the home hub waits at most one back-off; in isolated
    mode the caller's own hub never waits. Monkey-patched, or with the README's
    alternative (a ``KazooRetry`` given ``handler.sleep_func``), the back-off is green."""
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # connection refused: kazoo retries with back-off, forever
    back_off = 0.6
    options = {"max_tries": -1, "delay": back_off, "backoff": 1, "max_jitter": 0, "max_delay": back_off}
    eventlet.sleep(0)  # the test's thread has a hub (shared mode's home)
    handler = EventletHandler(handler_mode)
    retry: Any = options if retry_kind == "dict" else KazooRetry(sleep_func=handler.sleep_func, **options)
    green = MONKEY_PATCHED or retry_kind != "dict"
    client = KazooClient(f"127.0.0.1:{port}", handler=handler, connection_retry=retry)
    client.start_async()
    try:
        home = _GapTicker(handler.spawn)
        caller = _GapTicker(eventlet.spawn)
        eventlet.sleep(2.5)
        home.running = caller.running = False
    finally:
        client.stop()
        client.close()
    print(f"\nback-off {back_off} s: home hub longest gap {home.max_gap * 1000:.0f} ms, "
          f"caller's hub {caller.max_gap * 1000:.0f} ms ({handler_mode}, {retry_kind}, patched={MONKEY_PATCHED})")
    assert home.ticks >= 2, "the home hub never ran between back-offs"
    assert home.max_gap < back_off + 0.35, f"the home hub stalled {home.max_gap:.2f} s, more than one back-off"
    if handler_mode == "isolated" or green:
        assert caller.max_gap < 0.4, f"the caller's hub stalled {caller.max_gap:.2f} s"
    if green:
        assert home.max_gap < 0.4, f"the back-off is green, yet the home hub stalled {home.max_gap:.2f} s"


def test_session_expiry_then_recovery(kazoo_client: KazooClient, zookeeper_server: Any, root: str) -> None:
    client = kazoo_client
    states = StateLog(client)
    reconnected = states.when(KazooState.CONNECTED, after=KazooState.LOST)
    client.create(f"{root}/ephemeral", ephemeral=True)
    old_session = client.client_id[0]
    expire_session(client, zookeeper_server.hosts)
    assert reconnected.wait(20), f"states seen: {states.seen}"
    lost = states.seen.index(KazooState.LOST)  # the session's loss is reported ...
    assert KazooState.CONNECTED in states.seen[lost + 1:], f"states seen: {states.seen}"  # ... then the new one
    assert client.client_id[0] != old_session
    assert client.exists(f"{root}/ephemeral") is None
    client.create(f"{root}/ephemeral", ephemeral=True)
    states.close()


def test_dropped_connection_reconnects_same_session(kazoo_client: KazooClient, root: str) -> None:
    from kazoo.protocol.connection import _CONNECTION_DROP

    client = kazoo_client
    session = client.client_id[0]
    states = StateLog(client)
    back = states.when(KazooState.CONNECTED)
    # kazoo's private request path: no public call sends this drop request.
    client._call(_CONNECTION_DROP, client.handler.async_result())
    assert back.wait(20), f"states seen: {states.seen}"
    assert states.seen[0] == KazooState.SUSPENDED
    assert client.client_id[0] == session
    assert client.get_children(root) == []
    states.close()


def test_live_clients_wake_pair_has_the_socket_api(kazoo_client: KazooClient, root: str) -> None:
    """Diagnostics written against kazoo's other handlers call the socket API on the
    connection's wake pair (issue 9, item 2: ``getsockname()`` raised AttributeError)."""
    connection = kazoo_client._connection  # kazoo holds its wake pair privately
    for end in (connection._read_sock, connection._write_sock):
        assert end.getsockname() == "" and end.family == socket.AF_UNIX and end.fileno() >= 0
    kazoo_client.create(f"{root}/after-getsockname", b"x")  # the pair still wakes the loop
    assert kazoo_client.get(f"{root}/after-getsockname")[0] == b"x"


def test_blocked_watch_callback_does_not_block_session_reestablishment(
    kazoo_client: KazooClient, root: str
) -> None:
    """README: "Watch callbacks and completion callbacks have separate queues, so a
    blocked watch callback cannot block session re-establishment": with the watch
    worker held by a callback, a dropped connection comes back and requests that
    complete through rawlink callbacks (``ensure_path``) still finish."""
    handler = kazoo_client.handler
    release, holding = handler.event_object(), handler.event_object()
    returned: List[bool] = []

    def blocking_watch(event: Any) -> None:
        holding.set()
        release.wait(60)  # green: holds the watch worker, not the hub
        returned.append(True)

    kazoo_client.create(f"{root}/w", b"")
    kazoo_client.get(f"{root}/w", watch=blocking_watch)
    kazoo_client.set(f"{root}/w", b"fire")
    states = StateLog(kazoo_client)
    reconnected = states.when(KazooState.CONNECTED, after=KazooState.SUSPENDED)
    try:
        assert holding.wait(10), "the watch callback did not start"
        session = kazoo_client.client_id[0]
        kazoo_socket(kazoo_client).shutdown(2)  # drop the connection under kazoo
        assert reconnected.wait(20), f"no reconnect while the watch worker was held: {states.seen}"
        # ensure_path completes through rawlink callbacks (the completion worker)
        kazoo_client.ensure_path_async(f"{root}/after/reconnect").get(timeout=10)
        assert kazoo_client.exists(f"{root}/after/reconnect") is not None
        assert kazoo_client.client_id[0] == session
        assert returned == [], "the watch callback was not holding its worker all along"
    finally:
        release.set()
        states.close()
