"""asyncio helpers for what ``await`` alone does not cover.

``await`` needs no import: ``data, stat = await client.get_async(path)`` (an
:class:`~eventlet_handler.AsyncResult`) and ``value = await client.handler.spawn(fn, ...)``
(a blocking kazoo call or recipe on a green thread of the handler's home hub) work
from a coroutine on eventlet's asyncio hub (either mode) and on a plain asyncio loop
in any native thread without an eventlet hub (isolated mode). This module adds:

* :func:`future`: an ``asyncio.Future`` for a result or a spawned task, for
  ``asyncio.gather``, ``as_completed``, ``wait`` and done callbacks;
* :func:`start` / :func:`stop`: ``KazooClient.start()`` / ``stop()`` without blocking
  the loop;
* :func:`data_watch` / :func:`children_watch`: watches as async iterators.

Rules:

1. Every function here is called from a coroutine of the loop it serves (the running
   loop); none blocks that loop.
2. Watch iterators hold at most one undelivered value, the latest: a consumer slower
   than the changes sees the newest data and skips the ones in between (what a
   ``DataWatch`` callback would see too, had it been slow), never an unbounded
   buffer. At most one wake-up is in flight to the loop per iterator.
3. Leaving the ``async for`` (break, return, exception, cancellation, or the
   iterator's ``aclose()``) stops the watch: kazoo's watch function then returns
   ``False`` at the next change, which ends kazoo's ``DataWatch``/``ChildrenWatch``
   (ZooKeeper itself has no way to drop a watch it already set).
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Tuple, Union

import eventlet
from kazoo.client import KazooClient
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from ._aiobridge import loop_future
from ._hubs import current_hub
from ._parking import allocate_lock
from ._task import Task
from .result import AsyncResult

__all__ = ["WatchIterator", "children_watch", "data_watch", "future", "start", "stop"]


def future(awaitable: Union[AsyncResult, Task]) -> "asyncio.Future[Any]":
    """An ``asyncio.Future`` on the running loop that completes like ``await awaitable``.

    Call from a coroutine (rule 1). Cheaper than letting ``gather`` wrap each result in
    a task: ``await asyncio.gather(*(aio.future(client.get_async(p)) for p in paths))``.
    Cancelling the future detaches it (the request runs on).
    """
    if isinstance(awaitable, AsyncResult):
        parking = (awaitable._lock, awaitable.ready, awaitable._waiters)
        return loop_future(parking, _result_outcome(awaitable), awaitable._handler)
    if isinstance(awaitable, Task):
        done = awaitable._done
        return loop_future((done._lock, done.is_set, done._waiters), _task_outcome(awaitable), None)
    raise TypeError(f"aio.future() needs an AsyncResult or a spawn() Task, not {awaitable!r}")


def _result_outcome(result: AsyncResult) -> Any:
    return lambda: result.get(block=False)


def _task_outcome(task: Task) -> Any:
    def outcome() -> Any:
        if task.exception is not None:
            raise task.exception
        return task.value

    return outcome


async def start(client: KazooClient, timeout: float = 15.0) -> None:
    """``client.start(timeout)`` without blocking the loop; raises what it raises.

    On eventlet's asyncio hub it runs on a green thread of that hub; on a plain loop,
    in a worker thread (``asyncio.to_thread``: the handler has no hub to run it in
    before it has started).
    """
    await _off_loop(client.start, timeout)


async def stop(client: KazooClient) -> None:
    """``client.stop()`` without blocking the loop (then ``client.close()`` may be
    called directly: it does not block). Where it runs: as :func:`start`."""
    await _off_loop(client.stop)


async def _off_loop(fn: Any, *args: Any) -> Any:
    loop = asyncio.get_running_loop()
    hub = current_hub()
    if getattr(hub, "loop", None) is not loop:
        return await asyncio.to_thread(fn, *args)
    result: AsyncResult = AsyncResult(_Inline())
    eventlet.spawn_n(_run_into, result, fn, args)
    return await result


class _Inline:
    """The dispatcher of a result nobody rawlinks (only awaited)."""

    mode = None

    def _dispatch_completion(self, link: Any, result: AsyncResult) -> None:  # pragma: no cover
        link(result)


def _run_into(result: AsyncResult, fn: Any, args: Tuple[Any, ...]) -> None:
    try:
        result.set(fn(*args))
    except Exception as exc:
        result.set_exception(exc)


_EMPTY: Any = object()


class _Latest:
    """One slot holding the newest undelivered value (rule 2).

    ``offer()`` from the handler's watch worker (any thread); ``get()`` from the loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = allocate_lock()
        self._value: Any = _EMPTY
        self._posted = False
        self._waiter: Optional["asyncio.Future[None]"] = None
        self.open = True

    def offer(self, value: Any) -> bool:
        """Keep ``value`` as the latest; False once the iterator is gone (kazoo then
        ends its watch). Any thread, never blocks."""
        with self._lock:
            if not self.open:
                return False
            self._value = value
            if self._posted:
                return True
            self._posted = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: nobody will iterate again
            self.open = False
        return self.open

    def _wake(self) -> None:
        with self._lock:
            self._posted = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while True:
            with self._lock:
                value, self._value = self._value, _EMPTY
            if value is not _EMPTY:
                return value
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        with self._lock:
            self.open = False


class WatchIterator:
    """What :func:`data_watch` and :func:`children_watch` return: an async iterator
    (and async context manager) over a kazoo watch. Use it from the loop that made it.

    Leaving the ``async for`` drops the iterator, which stops the watch (rule 3);
    ``aclose()`` or ``async with`` stop it at a point of your choosing.
    """

    def __init__(self, client: KazooClient, watch: Any, path: str, unpack: Any) -> None:
        self._latest = _Latest(asyncio.get_running_loop())
        self._client, self._watch, self._path, self._unpack = client, watch, path, unpack
        self._started = False
        #: The kazoo ``DataWatch`` / ``ChildrenWatch``, once the first iteration made it.
        self.watch: Any = None

    def __aiter__(self) -> "WatchIterator":
        return self

    async def __anext__(self) -> Any:
        if not self._latest.open:
            raise StopAsyncIteration
        if not self._started:
            self._started = True
            # The watch's first read is a blocking get: a green thread of the home hub runs it.
            self.watch = await self._client.handler.spawn(
                self._watch, self._client, self._path, self._unpack(self._latest)
            )
        return await self._latest.get()

    async def aclose(self) -> None:
        """Stop the watch; the iteration ends. From the loop."""
        self._latest.close()

    async def __aenter__(self) -> "WatchIterator":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._latest.close()

    def __del__(self) -> None:
        latest = getattr(self, "_latest", None)  # absent if __init__ raised
        if latest is not None:
            latest.close()


def _data_func(latest: _Latest) -> Any:
    return lambda data, stat: latest.offer((data, stat))


def _children_func(latest: _Latest) -> Any:
    return latest.offer


def data_watch(client: KazooClient, path: str) -> WatchIterator:
    """``async for data, stat in aio.data_watch(client, path)``: the node's data and
    ``ZnodeStat``, first as they are now, then after each change; ``(None, None)``
    while the node does not exist.

    Call from a coroutine. Latest value wins (rule 2); leaving the loop stops the
    watch (rule 3). The watch is a kazoo ``DataWatch``, created on a green thread of
    the handler's home hub by the first iteration.
    """
    return WatchIterator(client, DataWatch, path, _data_func)


def children_watch(client: KazooClient, path: str) -> WatchIterator:
    """``async for children in aio.children_watch(client, path)``: the node's children,
    first as they are now, then after each change. The node must exist: kazoo's
    ``ChildrenWatch`` raises ``NoNodeError`` otherwise, from the first iteration.

    Call from a coroutine. Latest value wins (rule 2); leaving the loop stops the
    watch (rule 3).
    """
    return WatchIterator(client, ChildrenWatch, path, _children_func)
