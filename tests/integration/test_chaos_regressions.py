"""Bugs the chaos runs found, each as a deterministic regression test.

A bug in library code another branch owns is marked ``xfail(strict=True)`` with its
reason, so the test turns the suite red the moment the fix lands (remove the mark then).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import eventlet
import pytest
from eventlet import patcher
from kazoo.client import KazooClient

from eventlet_handler import EventletHandler
from eventlet_handler.testing.zookeeper import ZooKeeperServer
from support import connected_client

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_main_hub_still_usable_by_atexit_hooks_after_a_bridge_was_made() -> None:
    script = textwrap.dedent(
        """
        import atexit, eventlet, eventlet.tpool
        eventlet.tpool.execute(lambda: None)  # registers tpool.killall, which sleeps on the hub
        from eventlet import hubs
        from eventlet_handler._bridge import bridge_of
        bridge_of(hubs.get_hub(), create=True)  # any green park of the main thread makes it
        """
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "closed epoll" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr


@pytest.mark.parametrize("hub", ["", "asyncio"])
def test_a_native_thread_backing_off_in_a_patched_process_leaves_no_hub_behind(hub: str) -> None:
    script = textwrap.dedent(
        """
        import eventlet
        eventlet.monkey_patch()
        import gc, os
        from eventlet import hubs, patcher
        from eventlet_handler import EventletHandler
        hubs.get_hub()
        handler = EventletHandler(mode="shared")
        def fds():
            return len(os.listdir("/proc/self/fd"))
        before = fds()
        made = []
        def native_caller():  # what kazoo's KazooRetry does between tries
            handler.sleep_func(0.01)
            made.append(getattr(hubs._threadlocal, "hub", None))
        thread = patcher.original("threading").Thread(target=native_caller)
        thread.start()
        thread.join()
        made = [type(h).__module__ for h in made if h is not None]
        gc.collect()
        print(f"hubs made in the native thread: {made}; fds {before} -> {fds()}")
        raise SystemExit(1 if made or fds() > before else 0)
        """
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("EVENTLET_HUB", None)
    if hub:
        env["EVENTLET_HUB"] = hub
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]


@pytest.fixture
def blackhole() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a socket that accepts TCP connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_client_stop_during_a_slow_connect_attempt_leaves_it_restartable(
    zookeeper_server: ZooKeeperServer, blackhole: str, mode: str
) -> None:
    handler = EventletHandler(mode=mode)
    # 16 s session timeout over 2 hosts: kazoo waits 8 s (> the 5 s grace) for the
    # blackhole's connect reply before it tries the real server.
    client = KazooClient(hosts=f"{blackhole},{zookeeper_server.hosts}", handler=handler,
                         timeout=16.0, randomize_hosts=False)
    client.start_async()
    eventlet.sleep(1.0)  # kazoo's connection loop now waits on the blackhole
    try:
        client.stop()
        client.close()
        client.start(timeout=30)
        assert client.exists("/") is not None
    finally:
        if client.connected:
            client.stop()
        handler.stop(timeout=10)


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_client_stop_with_a_datawatch_while_the_server_is_paused_returns(
    zookeeper_server: ZooKeeperServer, mode: str
) -> None:
    from eventlet import patcher

    handler = EventletHandler(mode=mode)
    client = KazooClient(hosts=zookeeper_server.hosts, handler=handler, timeout=4.0)
    client.start(timeout=30)
    client.ensure_path("/chaos-regression-datawatch")
    client.DataWatch("/chaos-regression-datawatch", lambda data, stat: None)
    outcome: list[str] = []

    def stop() -> None:
        try:
            client.stop()
            outcome.append("returned")
        except Exception as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    zookeeper_server.pause()
    try:
        stopper = patcher.original("threading").Thread(target=stop, daemon=True)
        stopper.start()
        deadline = patcher.original("time").monotonic() + 30.0
        while stopper.is_alive() and patcher.original("time").monotonic() < deadline:
            eventlet.sleep(0.05)  # the shared-mode connection loop runs in this hub
        assert outcome == ["returned"], f"client.stop() {'hung for 30 s' if not outcome else outcome[0]}"
    finally:
        zookeeper_server.resume()
    client.close()


@pytest.mark.xfail(
    strict=True,
    reason="bug (chaos isolated seeds 201, 204 and shared 100; kazoo's ChildrenWatch, upstream, "
    "no owner here): a children fetch whose answer arrived before the session was lost (stop(), "
    "expiry) finishes after the LOST listener cleared _watch_established and sets it again; the "
    "watch it placed died with the session, and on CONNECTED the recipe sees 'established' and "
    "never fetches again: the ChildrenWatch goes silent for good",
)
def test_ChildrenWatch_whose_fetch_outlives_the_session_follows_the_next_one(
    started_client: KazooClient,
) -> None:
    from kazoo.protocol.states import KazooState

    client = started_client
    lost = patcher.original("threading").Event()
    client.add_listener(lambda state: lost.set() if state == KazooState.LOST else None)

    def lose_the_session() -> None:
        patcher.original("threading").Thread(target=client.stop, daemon=True).start()
        assert _until(lost.is_set, 20), "stop() never made the client LOST"

    seen = _children_watch_raced(client, "/chaos-regression-childrenwatch", lose_the_session)
    assert _until(lambda: client._connection._connection_routine is None, 20), "the stopped client's loop ran on"
    client.start(timeout=30)
    assert _child_seen(client, "/chaos-regression-childrenwatch", seen), (
        f"the ChildrenWatch went silent after the session was lost: saw {seen}")


@pytest.mark.xfail(
    strict=True,
    reason="bug (chaos 2026-12-04b: isolated seed 602, shared-asyncio 501 and 507; kazoo's "
    "ChildrenWatch, upstream, no owner here): the same race on a dropped connection: kazoo clears "
    "its watch table on SUSPENDED and the recipe its _watch_established, a fetch answered just "
    "before sets the flag again, and on CONNECTED the recipe does not fetch: kazoo sends no "
    "SetWatches, so no server holds the watch and the ChildrenWatch goes silent for good",
)
def test_ChildrenWatch_whose_fetch_outlives_its_connection_follows_the_next_one(
    started_client: KazooClient,
) -> None:
    from kazoo.protocol.states import KazooState

    client = started_client
    suspended = patcher.original("threading").Event()
    client.add_listener(lambda state: suspended.set() if state == KazooState.SUSPENDED else None)

    def drop_the_connection() -> None:
        client._connection._socket.shutdown(socket.SHUT_RDWR)
        assert _until(suspended.is_set, 10), "the dropped connection never made the client SUSPENDED"

    seen = _children_watch_raced(client, "/chaos-regression-childrenwatch-suspended", drop_the_connection)
    assert _until(lambda: client.connected, 20), "the client did not reconnect"
    assert _child_seen(client, "/chaos-regression-childrenwatch-suspended", seen), (
        f"the ChildrenWatch went silent after its connection dropped: saw {seen}")


def _children_watch_raced(client: KazooClient, path: str, interrupt: Callable[[], None]) -> "list[list[str]]":
    """A ChildrenWatch on ``path`` whose first fetch is answered, then ``interrupt()``
    runs before the recipe sees the answer (kazoo's race, made deterministic); returns
    the list of what the watch is called with."""
    client.ensure_path(path)
    seen: list[list[str]] = []
    real_retry = client.retry

    def fetch_then_interrupt(func: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_retry(func, *args, **kwargs)
        interrupt()
        return result

    client.retry = fetch_then_interrupt  # type: ignore[method-assign]
    try:
        client.ChildrenWatch(path, lambda children: seen.append(sorted(children)))
    finally:
        client.retry = real_retry  # type: ignore[method-assign]
    return seen


def _child_seen(client: KazooClient, path: str, seen: "list[list[str]]") -> bool:
    """Create ``path``/child; whether the watch saw it within 10 s. Removes ``path``."""
    try:
        client.create(f"{path}/child")
        return _until(lambda: ["child"] in seen, 10)
    finally:
        client.delete(path, recursive=True)


@pytest.fixture
def started_client(zookeeper_server: ZooKeeperServer) -> Iterator[KazooClient]:
    with connected_client(zookeeper_server.hosts, start_timeout=30, timeout=4.0) as client:
        yield client


Rewrite = Callable[[Any, Any, bytes, int], "tuple[Any, bytes, int]"]


@contextlib.contextmanager
def replies_rewritten(rewrite: Rewrite) -> Iterator[None]:
    """kazoo's reply handling, each reply first passed through ``rewrite(connection,
    header, buffer, offset)``: a reply a chaos run recorded, put into the real path."""
    from kazoo.protocol import connection

    original = connection.ConnectionHandler._read_response

    def read_response(self: Any, header: Any, buffer: bytes, offset: int) -> Any:
        return original(self, *rewrite(self, header, buffer, offset))

    connection.ConnectionHandler._read_response = read_response  # type: ignore[method-assign]
    try:
        yield
    finally:
        connection.ConnectionHandler._read_response = original  # type: ignore[method-assign]


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    clock = patcher.original("time").monotonic
    deadline = clock() + timeout
    while not condition() and clock() < deadline:
        eventlet.sleep(0.02)
    return condition()


@pytest.mark.xfail(
    strict=True,
    reason="bug (chaos shared seed 402; ZooKeeper 3.8 and kazoo, upstream, no owner here): after a "
    "session takeover the server may answer a Create with success and a null path (seen: xid 1, "
    "err 0, path length -1, also with kazoo's own threading handler); kazoo's create_async() "
    "completion sets its result only for a non-None value, so create() never returns",
)
def test_create_answered_with_a_null_path_still_completes(started_client: KazooClient) -> None:
    from kazoo.protocol.serialization import Create

    def null_path(conn: Any, header: Any, buffer: bytes, offset: int) -> tuple[Any, bytes, int]:
        # The reply the chaos run recorded: the real one, its path replaced by length -1.
        if isinstance(conn.client._pending[0][0], Create):
            return header, b"\xff\xff\xff\xff", 0
        return header, buffer, offset

    with replies_rewritten(null_path):
        result = started_client.create_async("/chaos-regression-null-path", b"x")
        assert result.wait(5), "create() got ZooKeeper's reply and never completed"


@pytest.mark.xfail(
    strict=True,
    reason="bug (chaos isolated seeds 419, 421; kazoo, upstream, no owner here): when a second "
    "connection takes the session, ZooKeeper may answer the next request out of order "
    "('xids do not match, expected 1096 received 1097'); kazoo raises that RuntimeError out "
    "of its connection loop, which ends for good: the client is CLOSED and never reconnects",
)
def test_client_reconnects_after_a_reply_with_an_unexpected_xid(started_client: KazooClient) -> None:
    skewed: list[int] = []

    def out_of_order(conn: Any, header: Any, buffer: bytes, offset: int) -> tuple[Any, bytes, int]:
        # The reply the chaos run saw: the real one, carrying the next request's xid.
        if not skewed:
            skewed.append(header.xid)
            header = header._replace(xid=header.xid + 1)
        return header, buffer, offset

    with replies_rewritten(out_of_order):
        with pytest.raises(RuntimeError, match="xids do not match"):
            started_client.get_async("/").get(timeout=10)
    _until(lambda: not started_client.connected, 10)  # the loop raises just after failing the call
    assert _until(lambda: started_client.connected, 15), f"the client stayed {started_client.state}"


@pytest.mark.xfail(
    strict=True,
    reason="bug (chaos isolated seeds 419, 421; kazoo, upstream, no owner here): stop() on a "
    "client whose connection loop already ended queues a CloseInstance that nobody takes; the "
    "next start() connects, sends that close first and is CLOSED again at once",
)
def test_restart_after_the_connection_loop_died_stays_connected(started_client: KazooClient) -> None:
    def out_of_order(conn: Any, header: Any, buffer: bytes, offset: int) -> tuple[Any, bytes, int]:
        return header._replace(xid=header.xid + 1), buffer, offset

    with replies_rewritten(out_of_order):
        started_client.get_async("/")
        assert _until(started_client._connection.connection_stopped.is_set, 10), "the loop did not end"
    started_client.stop()
    started_client.start(timeout=30)
    eventlet.sleep(1.0)  # the stale close, if any, is sent at once after connecting
    assert started_client.connected, f"the restarted client is {started_client.state}"
    started_client.get("/")
