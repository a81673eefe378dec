"""asyncio awaits on this package's results and tasks: a future on the awaiting loop.

Rules:

1. The future is made at await time, on the awaiting coroutine's running loop, and
   only that loop's thread touches it. Every other thread reaches it through the
   loop's ``call_soon_threadsafe`` (:class:`LoopWaiter`).
2. An awaiting coroutine parks as a :class:`LoopWaiter` in its owner's waiter list,
   under the owner's lock, exactly where blocking callers park
   (:func:`eventlet_handler._parking.wait_until`). ``wake_all`` treats a waiter with
   no hub as a native one and calls its ``_release()``, which here posts to the loop:
   waking still never blocks and never switches, and the setter's code is unchanged.
3. Wake-ups reach a loop through its :class:`Inbox`: at most one
   ``call_soon_threadsafe`` is in flight per loop, however many results are set
   meanwhile (10k gathered replies wake the loop a few times, not 10k times). A loop
   that closed before the wake-up arrives refuses the post (``RuntimeError``): the
   inbox then drops what it holds and every later post, so a closed loop never
   raises into the setter and never accumulates.
4. The future only says "look again" (or carries :class:`HandlerStoppedError`): the
   value or exception is read from the owner, so a kazoo exception arrives as the
   very object kazoo set.
5. Cancelling the future (a cancelled task, ``asyncio.timeout()``, ``wait_for``)
   removes its waiter: the awaiter is detached. The request itself runs on; kazoo
   cannot cancel a request.
6. While parked, an await of a handler's result is registered under that handler;
   :func:`fail_pending_awaits` (called by ``handler.stop()``) fails those.
7. A ``shared``-mode handler refuses an await from a loop other than the calling
   thread's eventlet asyncio hub: see :func:`awaiting_loop`.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Callable, List, Optional, Set, Tuple

from ._hubs import asyncio_loop_of, current_hub, running_loop
from ._errors import HandlerStoppedError
from ._parking import Waiter, allocate_lock

#: What an awaitable owner exposes to park on: its lock, its ready test, its waiters.
Parking = Tuple[Any, Callable[[], bool], List[Waiter]]
#: Reads the owner's outcome: returns its value or raises its exception.
Outcome = Callable[[], Any]

_registry_lock = allocate_lock()
_PENDING_ATTR = "_eventlet_handler_pending_awaits"  # on the handler: one getattr per await
_INBOX_ATTR = "_eventlet_handler_inbox"  # on the loop (a WeakKeyDictionary where it has no __dict__)


class LoopWaiter(Waiter):
    """A coroutine parked on an owner: waking it settles a future on its loop (rule 2).

    Created in the loop's thread; ``_release()`` and ``fail()`` from any thread.
    """

    __slots__ = ("_inbox", "_future", "_outcome", "_handler", "_parking", "_woken", "_registry")

    def __init__(
        self, inbox: "Inbox", future: "asyncio.Future[Any]",
        outcome: Optional[Outcome], handler: Any, parking: Parking,
    ) -> None:
        self.hub = None  # wake_all: "no hub", so it calls _release()
        self._event = self._lock = None
        self._inbox = inbox
        self._future = future
        self._registry: Optional[Set[LoopWaiter]] = None
        self._outcome = outcome
        self._handler = handler
        self._parking = parking
        self._woken = False

    def wait(self, timeout: Optional[float]) -> bool:  # pragma: no cover - never parks a thread
        raise AssertionError("a LoopWaiter is awaited through its future, not waited on")

    def _release(self) -> None:
        """The owner is ready (``wake_all``). Any thread, never blocks (rule 3)."""
        self._woken = True  # taken off the owner's list by the waker
        self._post(None)

    def fail(self, exc: BaseException) -> None:
        """Settle the future with ``exc`` (the handler stopped). Any thread."""
        self._post(exc)

    def _post(self, exc: Optional[BaseException]) -> None:
        self._inbox.post(self, exc)

    def _settle(self, exc: Optional[BaseException]) -> None:
        # In the loop's thread, which alone registers and unregisters it: the setter's
        # thread takes no lock the loop also takes (two threads trading a lock under
        # the GIL convoy: each hand-off can wait a whole switch interval).
        _unregister(self)
        future = self._future
        if future.done():  # cancelled meanwhile
            return
        if exc is not None:
            future.set_exception(exc)
        elif self._outcome is None:
            future.set_result(None)
        else:
            try:
                value = self._outcome()
            except BaseException as error:  # the owner's exception, as set (rule 4)
                future.set_exception(error)
            else:
                future.set_result(value)

    def _detach(self, future: "asyncio.Future[Any]") -> None:
        # Done callback, in the loop's thread: an await cancelled (rule 5) or failed by
        # stop() (rule 6) leaves its owner's list.
        if self._woken:
            return
        _unregister(self)
        lock, _ready, waiters = self._parking
        with lock:
            try:
                waiters.remove(self)
            except ValueError:  # woken meanwhile
                pass


class Inbox:
    """The wake-ups on their way to one loop (rule 3). ``post()`` from any thread."""

    __slots__ = ("_loop", "_lock", "_items", "_scheduled", "_closed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # weak: the inbox is the value of a dict weak on loops
        self._lock = allocate_lock()
        self._items: List[Tuple[LoopWaiter, Optional[BaseException]]] = []
        self._scheduled = False
        self._closed = False

    def post(self, waiter: LoopWaiter, exc: Optional[BaseException]) -> None:
        """Settle ``waiter`` in the loop's thread soon. Any thread; never blocks or raises."""
        if running_loop() is self._loop():
            # The loop's own thread (a green thread of the asyncio hub, or the loop itself):
            # settle now, one loop iteration sooner; setting a future only schedules.
            waiter._settle(exc)
            return
        with self._lock:
            closed = self._closed
            if not closed:
                self._items.append((waiter, exc))
                if self._scheduled:
                    return
                self._scheduled = True
        if closed:
            _unregister(waiter)  # it will never settle: stop() has nothing to fail
            return
        self._schedule()

    def _schedule(self) -> None:
        loop = self._loop()
        try:
            if loop is None:
                raise RuntimeError("the loop is gone")
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody awaits there any more
            with self._lock:
                self._closed = True
                dropped, self._items = self._items, []
            for waiter, _exc in dropped:
                _unregister(waiter)

    def _drain(self) -> None:
        # In the loop's thread: everything posted before this point, in order.
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        for waiter, exc in items:
            waiter._settle(exc)


_inboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Inbox]" = weakref.WeakKeyDictionary()


def inbox_of(loop: asyncio.AbstractEventLoop) -> Inbox:
    """``loop``'s inbox, made on first use; call in the loop's thread."""
    inbox = getattr(loop, _INBOX_ATTR, None)
    if inbox is None:
        inbox = _inboxes.get(loop)  # a loop type without a __dict__ (uvloop)
        if inbox is None:
            inbox = Inbox(loop)
            try:
                setattr(loop, _INBOX_ATTR, inbox)
            except AttributeError:
                _inboxes[loop] = inbox
    return inbox


def awaiting_loop(handler: Any) -> asyncio.AbstractEventLoop:
    """The awaiting coroutine's loop, refused for a shared-mode handler off the asyncio hub.

    A shared-mode handler's green threads (kazoo's connection loop among them) run
    only while the hub of the thread that started it runs; a plain asyncio loop is no
    eventlet hub, and in the thread that started the handler it would keep that hub
    from ever running. Isolated mode owns a hub thread and has no such limit.
    """
    loop = asyncio.get_running_loop()
    if getattr(handler, "mode", None) == "shared" and asyncio_loop_of(current_hub()) is not loop:
        raise RuntimeError(
            f"{handler!r} is in shared mode, whose green threads run only in the eventlet hub "
            "of the thread that started it; this coroutine runs on a plain asyncio loop, which "
            "is not that hub (and would starve it in that thread). Await from a coroutine on "
            "eventlet's asyncio hub (EVENTLET_HUB=asyncio), or use EventletHandler(mode='isolated') "
            "(what mode='auto' picks in an unpatched process)"
        )
    return loop


def loop_future(parking: Parking, outcome: Optional[Outcome], handler: Any) -> "asyncio.Future[Any]":
    """A future on the running loop, done once the owner is ready (rules 1-6).

    Call from a coroutine (or callback) of the loop that will await it. With
    ``outcome`` the future carries the owner's value or exception; without, ``None``.
    ``handler`` (or ``None``) is the handler whose ``stop()`` fails the future.
    """
    loop = awaiting_loop(handler)
    future = loop.create_future()
    waiter = LoopWaiter(inbox_of(loop), future, outcome, handler, parking)
    lock, ready, waiters = parking
    with lock:
        parked = not ready()
        if parked:
            waiters.append(waiter)
    if not parked:
        waiter._settle(None)
        return future
    if handler is not None:
        _register(waiter)
    future.add_done_callback(waiter._detach)
    return future


def _register(waiter: LoopWaiter) -> None:
    handler = waiter._handler
    with _registry_lock:
        waiters = getattr(handler, _PENDING_ATTR, None)
        if waiters is None:
            waiters = set()
            setattr(handler, _PENDING_ATTR, waiters)
        waiters.add(waiter)
        waiter._registry = waiters


def _unregister(waiter: LoopWaiter) -> None:
    waiters = waiter._registry
    if waiters is not None:
        with _registry_lock:
            waiters.discard(waiter)


def fail_pending_awaits(handler: Any) -> None:
    """Fail every coroutine awaiting a result of ``handler`` with ``HandlerStoppedError``.

    Any thread, never blocks; ``handler.stop()`` calls it once the handler has stopped.
    """
    with _registry_lock:
        waiters = getattr(handler, _PENDING_ATTR, None)
        if waiters is not None:
            setattr(handler, _PENDING_ATTR, None)
    for waiter in list(waiters or ()):  # each leaves the set as it is failed
        waiter.fail(HandlerStoppedError(
            f"{handler!r} stopped while a coroutine awaited one of its results; "
            "start it again and repeat the request"
        ))

