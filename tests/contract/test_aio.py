"""asyncio callers: every hub x every mode x each awaiting caller (``awaiters.py``).

Coroutines await results and spawned tasks, and set, link and dispatch, against
setters and waiters of every other kind (same green thread, other green thread,
native thread).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any, List

import eventlet
import pytest

from awaiters import Awaiter
from support import (
    Caller,
    HandlerInBody,
    home_thread_ident,
    run_in_hub,
    native_threading as _threading,
    until,
)
from eventlet_handler import HandlerStoppedError, aio
from eventlet_handler._primitives import Event


def _parked(owner: Any) -> List[Any]:
    """The callers parked on ``owner`` (a result or an Event).

    White-box, on purpose: a test must act only once an await is parked, and
    ``_aiobridge``'s rules on cancelled and failed awaits are about leaving the owner's
    waiter list; nothing public says who waits (a sleep would only hope)."""
    return list(owner._waiters)


def _wait_parked(result: Any, count: int = 1) -> None:
    """Green-wait until ``count`` callers are parked on ``result`` (or its Event)."""
    until(lambda: len(_parked(result)) >= count, 5.0, f"{count} callers to park")


def _assert_refused(awaiter: Awaiter, handler: Any) -> None:
    ready = handler.async_result()
    ready.set(1)

    async def coro() -> Any:
        for awaitable in (handler.async_result(), ready):
            with pytest.raises(RuntimeError, match="shared mode.*plain asyncio loop.*mode='isolated'"):
                await awaitable
        return await handler.async_result()

    with pytest.raises(RuntimeError, match="shared mode.*plain asyncio loop.*mode='isolated'"):
        awaiter.run(coro).join()


@pytest.mark.parametrize("outcome", ["value", "exception"])
def test_AsyncResult_await_gets_what_caller_set(
    hub: str, caller: Caller, started: Any, awaiter: Awaiter, outcome: str
) -> None:
    with started() as handler:
        if awaiter.refused_by(handler):
            return _assert_refused(awaiter, handler)
        result = handler.async_result()
        error = KeyError("boom")

        async def coro() -> Any:
            return await result

        awaited = awaiter.run(coro)
        _wait_parked(result)
        caller.run(lambda: result.set("v") if outcome == "value" else result.set_exception(error)).join()
        if outcome == "value":
            assert awaited.join() == "v"
        else:
            with pytest.raises(KeyError) as raised:
                awaited.join()
            assert raised.value is error  # the very exception object, not a copy
        assert _parked(result) == []


def test_AsyncResult_await_of_ready_result_returns_at_once(hub: str, started: Any, awaiter: Awaiter) -> None:
    with started() as handler:
        if awaiter.refused_by(handler):  # refused even when nothing would wait
            return _assert_refused(awaiter, handler)
        result = handler.async_result()
        result.set(5)

        async def coro() -> Any:
            return await result, await aio.future(result)

        assert awaiter.run(coro).join() == (5, 5)


@pytest.mark.parametrize("how", ["wait_for", "cancel"])
def test_AsyncResult_cancelled_await_detaches(hub: str, started: Any, awaiter: Awaiter, how: str) -> None:
    with started() as handler:
        if awaiter.refused_by(handler):
            return _assert_refused(awaiter, handler)
        result = handler.async_result()
        seen: List[Any] = []

        async def coro() -> Any:
            if how == "wait_for":
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(result, 0.05)
            else:
                task = asyncio.ensure_future(_await(result))
                await asyncio.sleep(0.02)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            seen.append(_parked(result))
            return await aio.future(result)  # still awaitable after a detach

        awaited = awaiter.run(coro)
        until(lambda: seen, 5, "the detach")
        assert seen == [[]]  # the cancelled waiter left the result
        _wait_parked(result)
        result.set("late")
        assert awaited.join() == "late"


async def _await(awaitable: Any) -> Any:
    return await awaitable


def test_AsyncResult_loop_closed_before_set_never_raises_into_setter(
    hub: str, caller: Caller, started: Any, awaiter: Awaiter
) -> None:
    with started() as handler:
        if awaiter.refused_by(handler):
            return _assert_refused(awaiter, handler)
        result = handler.async_result()
        parked = _threading.Event()

        async def coro() -> Any:
            fut = aio.future(result)
            parked.set()
            return await fut

        awaiter.abandon(coro, parked)(10.0)  # its loop is closed now
        assert len(_parked(result)) == 1
        green_waiter = eventlet.spawn(result.get, timeout=5)
        eventlet.sleep(0)
        caller.run(lambda: result.set("v")).join()  # must not raise
        assert green_waiter.wait() == "v"


def test_EventletHandler_stop_fails_pending_awaits(hub: str, mode: str, awaiter: Awaiter) -> None:
    with HandlerInBody(mode) as handler:
        if awaiter.refused_by(handler):
            return _assert_refused(awaiter, handler)
        result = handler.async_result()

        async def coro() -> Any:
            return await asyncio.gather(result, aio.future(result), return_exceptions=True)

        awaited = awaiter.run(coro)
        _wait_parked(result, 2)
    errors = awaited.join()
    assert [type(e) for e in errors] == [HandlerStoppedError] * 2
    assert "stopped while a coroutine awaited" in str(errors[0])
    assert _parked(result) == []


def test_coroutine_set_wakes_green_native_and_coroutine_waiters(hub: str, started: Any, awaiter: Awaiter) -> None:
    with started() as handler:
        result = handler.async_result()
        green = eventlet.spawn(result.get, timeout=5)
        native: List[Any] = []
        waiter = Caller("native").run(lambda: native.append(result.get(timeout=5)))
        _wait_parked(result, 2)

        async def setter() -> None:
            result.set("v")

        awaiter.run(setter).join()
        assert green.wait() == "v"
        waiter.join(5)
        assert native == ["v"]


def test_coroutine_rawlink_runs_on_completion_worker(hub: str, started: Any, awaiter: Awaiter) -> None:
    with started() as handler:
        result = handler.async_result()
        ran = Event()
        threads: List[int] = []

        def link(res: Any) -> None:
            threads.append(_threading.get_ident())
            ran.set()

        async def linker() -> None:
            result.rawlink(link)
            result.set(1)

        awaiter.run(linker).join()
        assert ran.wait(5)
        assert threads == [home_thread_ident(handler)]


def test_coroutine_dispatch_callback_runs_in_order_on_home_hub(hub: str, started: Any, awaiter: Awaiter) -> None:
    with started() as handler:
        ran: List[Any] = []
        done = Event()

        class Callback:
            def __init__(self, func: Any, args: Any) -> None:
                self.func, self.args = func, args

        def record(n: int) -> None:
            ran.append((n, _threading.get_ident()))
            if n == 99:
                done.set()

        async def dispatcher() -> None:
            for n in range(100):
                handler.dispatch_callback(Callback(record, (n,)))

        awaiter.run(dispatcher).join()
        assert done.wait(5)
        assert ran == [(n, home_thread_ident(handler)) for n in range(100)]


@pytest.mark.parametrize("outcome", ["value", "exception"])
def test_Task_await_returns_or_raises_what_fn_did(
    hub: str, caller: Caller, started: Any, awaiter: Awaiter, outcome: str
) -> None:
    with started() as handler:
        gate = Event()
        error = ValueError("from fn")

        def fn(x: int) -> Any:
            assert gate.wait(5)  # a blocking call, on the home hub's green thread
            if outcome == "exception":
                raise error
            return (x, _threading.get_ident())

        async def coro() -> Any:
            return await handler.spawn(fn, 7)

        awaited = awaiter.run(coro)
        _wait_parked(gate)
        caller.run(gate.set).join()
        if outcome == "value":
            assert awaited.join() == (7, home_thread_ident(handler))
        else:
            with pytest.raises(ValueError) as raised:
                awaited.join()
            assert raised.value is error


def test_aio_future_gathers_results_set_by_caller(hub: str, caller: Caller, started: Any, awaiter: Awaiter) -> None:
    with started() as handler:
        if awaiter.refused_by(handler):
            return _assert_refused(awaiter, handler)
        results = [handler.async_result() for _ in range(50)]

        async def coro() -> Any:
            done = [await f for f in asyncio.as_completed([aio.future(r) for r in results[:10]])]
            return sorted(done), await asyncio.gather(*(aio.future(r) for r in results))

        awaited = awaiter.run(coro)
        _wait_parked(results[0])

        def set_all() -> None:
            for n, result in enumerate(results):
                result.set(n)

        caller.run(set_all).join()
        assert awaited.join() == (list(range(10)), list(range(50)))


def test_aio_future_refuses_what_it_cannot_await() -> None:
    with pytest.raises(TypeError, match="AsyncResult or a spawn"):
        aio.future(object())  # type: ignore[arg-type]


def test_blocking_call_in_coroutine_on_asyncio_hub_names_await(mode: str) -> None:
    def body() -> None:
        with HandlerInBody(mode) as handler:
            result, event = handler.async_result(), handler.event_object()

            async def coro() -> List[str]:
                errors = []
                for block in (lambda: result.get(timeout=1), lambda: event.wait(1)):
                    with pytest.raises(RuntimeError) as raised:
                        block()
                    errors.append(str(raised.value))
                return errors

            errors = eventlet.asyncio.spawn_for_awaitable(coro()).wait()
            for message in errors:
                assert "coroutine on eventlet's asyncio hub" in message
                assert "await client.get_async(path)" in message
                assert "await client.handler.spawn(fn, *args)" in message
            # Outside a coroutine, the hub's own loop keeps its old message.
            hub_errors: List[str] = []

            def in_hub_loop() -> None:
                try:
                    result.get(timeout=1)
                except RuntimeError as exc:
                    hub_errors.append(str(exc))

            eventlet.hubs.get_hub().schedule_call_global(0, in_hub_loop)
            eventlet.sleep(0.01)
            assert hub_errors and "hub timer or listener callback" in hub_errors[0]

    run_in_hub("asyncio", body)


def _count_posts(loop: asyncio.AbstractEventLoop) -> List[Any]:
    """Record every ``call_soon_threadsafe`` made to ``loop`` from now on."""
    posts: List[Any] = []
    real = loop.call_soon_threadsafe

    def counting(*args: Any) -> Any:
        posts.append(args)
        return real(*args)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    return posts


def test_watch_slot_keeps_only_the_latest_and_one_wake_up() -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        latest = aio._Latest(loop)
        posts = _count_posts(loop)
        offered = [latest.offer(n) for n in range(1000)]  # a burst before the loop runs
        first = await latest.get()
        burst_posts = len(posts)
        getter = asyncio.ensure_future(latest.get())
        await asyncio.sleep(0.01)  # parked on an empty slot
        _threading.Thread(target=latest.offer, args=("next",)).start()
        second = await asyncio.wait_for(getter, 5)
        latest.close()
        return offered, first, second, burst_posts, len(posts), latest.offer("after close")

    offered, first, second, burst_posts, posts, after = asyncio.run(main())
    assert offered == [True] * 1000
    assert (first, second) == (999, "next")  # latest wins; nothing in between is kept
    assert (burst_posts, posts) == (1, 2)  # one wake-up in flight per burst, not one per value
    assert after is False  # kazoo ends its watch when the function returns False


def test_watch_iterator_stops_when_dropped() -> None:
    async def main() -> Any:
        class FakeClient:  # only to build the iterator; the watch itself is never started
            handler = None

        iterator = aio.data_watch(FakeClient(), "/x")  # type: ignore[arg-type]
        latest = iterator._latest  # white-box: no ZooKeeper here; test_aio_client sees kazoo's watch end
        del iterator
        gc.collect()
        return latest.open

    assert asyncio.run(main()) is False


def test_results_set_in_a_burst_wake_their_loop_once() -> None:
    with HandlerInBody("isolated") as handler:  # a plain loop in this thread awaits
        results = [handler.async_result() for _ in range(100)]

        async def main() -> Any:
            posts = _count_posts(asyncio.get_running_loop())
            futures = [aio.future(r) for r in results]
            setter = _threading.Thread(target=lambda: [r.set(n) for n, r in enumerate(results)])
            setter.start()
            setter.join(5)  # the loop is held (on purpose) while all 100 are set
            values = await asyncio.wait_for(asyncio.gather(*futures), 5)
            return values, len(posts)

        values, posts = asyncio.run(main())
        assert values == list(range(100))
        assert posts == 1  # one wake-up in flight per loop, not one per result
