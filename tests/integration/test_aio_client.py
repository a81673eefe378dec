"""asyncio callers on a real ZooKeeper: gathered awaits, watch iterators, one Lock
contended by coroutines, green threads and native threads, cancellation, closed
loops and session expiry.

Each test runs once per handler mode and per awaiting caller (a coroutine on
eventlet's asyncio hub: the main thread's in the ``EVENTLET_HUB=asyncio`` process,
else a fresh native thread's; a coroutine on a plain loop in a native thread). A
plain loop with a shared-mode handler is refused by design (the contract suite
asserts the refusal), and the asyncio hub cannot run beside another hub in a
monkey-patched process: those cells are skipped here.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from typing import Any, Iterator, List

import eventlet
import pytest
from eventlet import hubs
from eventlet.hubs.asyncio import Hub as AsyncioHub
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionClosedError, ConnectionLoss, NoNodeError, SessionExpiredError
from kazoo.recipe.lock import Lock

from awaiters import AWAITERS, Awaiter
from support import MODE_PARAMS, MONKEY_PATCHED, expire_session, native_threading as _threading, until
from eventlet_handler import EventletHandler, aio
from eventlet_handler.testing.zookeeper import ZooKeeperServer


pytestmark = pytest.mark.timeout(120)
WAIT = 30.0
CONNECTION_ERRORS = (ConnectionLoss, ConnectionClosedError, SessionExpiredError)


@pytest.fixture(autouse=True, params=MODE_PARAMS)
def handler_mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=AWAITERS)
def awaiter(request: pytest.FixtureRequest, handler_mode: str) -> Awaiter:
    chosen = Awaiter(request.param)
    if chosen.kind == "plain_loop" and handler_mode == "shared":
        pytest.skip("shared mode refuses awaits from a plain asyncio loop (asserted in tests/contract/test_aio.py)")
    if chosen.kind == "asyncio_hub" and MONKEY_PATCHED and not isinstance(hubs.get_hub(), AsyncioHub):
        pytest.skip(
            "eventlet's asyncio hub cannot run in a thread of a process monkey-patched for another "
            "hub: asyncio's selector is then eventlet's green select (a TypeError inside eventlet)"
        )
    return chosen


@pytest.fixture
def root(kazoo_client: KazooClient) -> Iterator[str]:
    path = f"/aio-{uuid.uuid4().hex[:10]}"
    kazoo_client.ensure_path(path)
    yield path
    kazoo_client.delete(path, recursive=True)


def test_1000_concurrent_awaits_through_gather(kazoo_client: KazooClient, root: str, awaiter: Awaiter) -> None:
    client = kazoo_client
    for n in range(100):
        client.create(f"{root}/n{n}", str(n).encode())

    async def coro() -> Any:
        paths = [f"{root}/n{n % 100}" for n in range(1000)]
        futures = [aio.future(client.get_async(p)) if i % 2 else client.get_async(p) for i, p in enumerate(paths)]
        replies = await asyncio.gather(*futures)
        return [(data, stat.version) for data, stat in replies]

    replies = awaiter.run(coro).join(WAIT)
    assert replies == [(str(n % 100).encode(), 0) for n in range(1000)]


def test_watches_through_async_for(kazoo_client: KazooClient, root: str, awaiter: Awaiter) -> None:
    client = kazoo_client
    node, seen_data, seen_children = f"{root}/watched", [], []
    watches: List[Any] = []

    async def follow_data() -> None:
        watch = aio.data_watch(client, node)
        watches.append(watch)
        async for data, stat in watch:
            seen_data.append(data)
            if data == b"last":
                break

    async def follow_children() -> None:
        watch = aio.children_watch(client, root)
        watches.append(watch)
        async for children in watch:
            seen_children.append(sorted(children))
            if "watched" in children:
                break

    async def coro() -> bool:
        await asyncio.wait_for(asyncio.gather(follow_data(), follow_children()), WAIT)
        kazoo_watches = [w.watch for w in watches]
        del watches[:]  # the loops are left and nothing holds the iterators
        gc.collect()
        await client.set_async(node, b"after")  # the next change ends kazoo's watches
        await client.create_async(f"{root}/another")
        for _ in range(1000):  # the loop still runs: nothing but leaving stopped them
            if all(w._stopped for w in kazoo_watches):  # kazoo's watches say so only privately
                return True
            await asyncio.sleep(0.01)
        return False

    awaited = awaiter.run(coro)
    until(lambda: seen_data == [None] and seen_children == [[]], WAIT, "both watches' first values")
    client.create(node, b"first")
    until(lambda: seen_data[-1:] == [b"first"], WAIT, "the create")
    client.set(node, b"last")
    assert awaited.join(WAIT) is True, "kazoo's watches still run after the async for was left"
    assert seen_data == [None, b"first", b"last"]  # a slow consumer may skip, never reorder
    assert seen_children == [[], ["watched"]]


def test_one_lock_contended_by_coroutines_green_and_native_threads(
    kazoo_client: KazooClient, root: str, awaiter: Awaiter
) -> None:
    client = kazoo_client
    path = f"{root}/lock"
    guard = _threading.Lock()
    holders: List[str] = []
    entries: List[str] = []
    overlaps: List[List[str]] = []

    def critical(who: str) -> None:
        with guard:
            holders.append(who)
            entries.append(who)
            if len(holders) > 1:
                overlaps.append(list(holders))

    def leave(who: str) -> None:
        with guard:
            holders.remove(who)

    def blocking_contender(who: str) -> None:
        lock = Lock(client, path, who)
        for _ in range(3):
            assert lock.acquire(timeout=WAIT)
            critical(who)
            time.sleep(0.002) if who.startswith("native") else eventlet.sleep(0.002)
            leave(who)
            lock.release()

    async def coroutine_contender(who: str) -> None:
        lock = Lock(client, path, who)
        for _ in range(3):
            assert await client.handler.spawn(lock.acquire, timeout=WAIT)
            critical(who)
            await asyncio.sleep(0.002)
            leave(who)
            await client.handler.spawn(lock.release)

    async def coroutines() -> None:
        await asyncio.gather(*(coroutine_contender(f"coro{n}") for n in range(4)))

    awaited = awaiter.run(coroutines)
    greens = [eventlet.spawn(blocking_contender, f"green{n}") for n in range(4)]
    natives = [_threading.Thread(target=blocking_contender, args=(f"native{n}",), daemon=True) for n in range(4)]
    for thread in natives:
        thread.start()
    awaited.join(WAIT * 2)
    with eventlet.Timeout(WAIT):
        for green in greens:
            green.wait()
    until(lambda: not any(t.is_alive() for t in natives), WAIT, "native contenders")
    assert overlaps == []
    assert sorted(entries) == sorted(f"{kind}{n}" for kind in ("coro", "green", "native") for n in range(4) for _ in range(3))
    assert client.get_children(path) == []


def test_cancellation_and_timeouts_mid_flight(kazoo_client: KazooClient, root: str, awaiter: Awaiter) -> None:
    client = kazoo_client
    client.create(f"{root}/n", b"x")
    results: List[Any] = []

    async def coro() -> Any:
        outcomes = {"timeout": 0, "cancelled": 0, "done": 0}
        for _ in range(20):
            batch = [client.get_async(f"{root}/n") for _ in range(50)]
            results.extend(batch)
            tasks = [asyncio.ensure_future(_await(r)) for r in batch]
            await asyncio.sleep(0)
            for task in tasks[:10]:
                task.cancel()
            try:
                await asyncio.wait_for(_await(batch[10]), 0.000001)
            except asyncio.TimeoutError:
                outcomes["timeout"] += 1
            try:
                async with asyncio.timeout(0.000001):  # type: ignore[attr-defined]
                    await batch[11]
            except TimeoutError:
                outcomes["timeout"] += 1
            for task in tasks:
                try:
                    await task
                    outcomes["done"] += 1
                except asyncio.CancelledError:
                    outcomes["cancelled"] += 1
        data, _ = await client.get_async(f"{root}/n")  # the client works on
        return outcomes, data

    if not hasattr(asyncio, "timeout"):
        pytest.skip("asyncio.timeout() is Python 3.11+")
    outcomes, data = awaiter.run(coro).join(WAIT)
    assert data == b"x"
    assert outcomes["cancelled"] + outcomes["done"] == 1000
    assert outcomes["cancelled"] > 0 and outcomes["done"] >= 800
    until(lambda: all(r.ready() for r in results), WAIT, "the detached requests")
    assert all(r.value[0] == b"x" for r in results)  # kazoo could not cancel them: all ran


async def _await(awaitable: Any) -> Any:
    return await awaitable


def test_loop_closed_with_requests_in_flight(kazoo_client: KazooClient, root: str, awaiter: Awaiter) -> None:
    client = kazoo_client
    client.create(f"{root}/n", b"x")
    results: List[Any] = []
    parked = _threading.Event()

    async def coro() -> Any:
        results.extend(client.get_async(f"{root}/n") for _ in range(200))
        gathering = asyncio.gather(*results)
        parked.set()
        return await gathering

    awaiter.abandon(coro, parked)(WAIT)  # the loop closed under 200 pending awaits
    until(lambda: all(r.ready() for r in results), WAIT, "the abandoned requests")
    assert [r.get(timeout=1)[0] for r in results] == [b"x"] * 200  # setters never saw the closed loop
    assert client.get(f"{root}/n")[0] == b"x"

    async def after() -> Any:
        return (await client.get_async(f"{root}/n"))[0]

    assert awaiter.run(after).join(WAIT) == b"x"  # a new loop awaits as before


def test_session_expiry_while_coroutines_wait(
    kazoo_client: KazooClient, root: str, awaiter: Awaiter, zookeeper_server: ZooKeeperServer
) -> None:
    client = kazoo_client
    client.create(f"{root}/n", b"x")
    holder = Lock(client, f"{root}/lock", "holder")
    assert holder.acquire(timeout=WAIT)
    running = [True]
    counts = {"ok": 0, "errors": 0, "unexpected": []}  # type: Any

    async def worker() -> None:
        while running[0]:
            try:
                await client.get_async(f"{root}/n")
                counts["ok"] += 1
            except CONNECTION_ERRORS:
                counts["errors"] += 1
                await asyncio.sleep(0.01)
            except Exception as exc:  # pragma: no cover - reported below
                counts["unexpected"].append(repr(exc))
                await asyncio.sleep(0.01)

    async def waiter_for_lock() -> Any:
        lock = Lock(client, f"{root}/lock", "coroutine")
        return await client.handler.spawn(lock.acquire, timeout=WAIT)

    async def coro() -> Any:
        workers = [asyncio.ensure_future(worker()) for _ in range(20)]
        got_lock = await waiter_for_lock()  # the holder's session expires: its lock node goes
        while running[0]:
            await asyncio.sleep(0.01)
        await asyncio.gather(*workers)
        return got_lock

    awaited = awaiter.run(coro)
    until(lambda: counts["ok"] > 200, WAIT, "coroutines' gets before the expiry")

    before = counts["ok"]
    expire_session(client, zookeeper_server.hosts)
    until(lambda: counts["ok"] > before + 200 and client.connected, WAIT, "gets after the expiry")
    running[0] = False
    assert awaited.join(WAIT) is True  # the waiting acquire got the lock once the holder's session died
    assert counts["unexpected"] == []
    assert counts["errors"] > 0  # requests in flight at the drop raised kazoo's own errors


def test_aio_start_and_stop_a_client(zookeeper_server: ZooKeeperServer, handler_mode: str, awaiter: Awaiter) -> None:
    handler = EventletHandler(handler_mode)
    client = KazooClient(zookeeper_server.hosts, handler=handler)

    async def coro() -> Any:
        await aio.start(client, timeout=WAIT)
        try:
            with pytest.raises(NoNodeError):
                await client.get_async(f"/aio-missing-{uuid.uuid4().hex}")
            return client.connected
        finally:
            await aio.stop(client)
            client.close()

    try:
        assert awaiter.run(coro).join(WAIT) is True
        assert not client.connected
    finally:
        handler.stop(timeout=10)
