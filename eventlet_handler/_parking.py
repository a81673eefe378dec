"""How a caller in any hub or native thread blocks until another thread wakes it.

Every blocking primitive of this package (the async result, the event, the
lock, the queue) parks its callers here, so the cross-thread rules live in one
place:

1. A caller whose thread has an eventlet hub waits *green*, on an
   ``eventlet.event.Event`` of its own hub, so the other green threads of that
   hub keep running. A caller whose thread has no hub (a plain native thread)
   waits *natively* on an unpatched lock, and no hub is created for it.
2. A green waiter's ``Event`` is only ever sent in its own hub: directly when the
   waker runs in that hub, otherwise through that hub's bridge. Parking a green
   waiter makes sure its hub has a bridge (``ensure_bridge()``).
3. Waking is idempotent, never blocks and never switches; a waiter that already
   timed out ignores a late wake.
4. Nobody may block in the hub greenlet itself: that is refused with an error. On
   eventlet's asyncio hub coroutines run there, so their error names ``await``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, List, Optional

import greenlet
from eventlet import event as green_event
from eventlet import patcher

from ._bridge import BridgeClosed, bridge_of, current_hub, ensure_bridge

_thread: Any = patcher.original("_thread")
allocate_lock: Callable[[], Any] = _thread.allocate_lock


def check_timeout(timeout: Optional[float], what: str = "timeout") -> Optional[float]:
    """Validate a caller's timeout: ``None`` or a finite number >= 0."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{what} must be >= 0 seconds or None, not {timeout!r}")
    return timeout


def refuse_hub_greenlet(hub: Any, current: Any) -> None:
    """Rule 4: ``RuntimeError`` if ``current`` is ``hub``'s own loop greenlet."""
    if current is hub.greenlet:
        from ._aiobridge import running_coroutine  # the error path only: the hot path stays one `is`

        if running_coroutine(hub):
            raise RuntimeError(
                "a blocking kazoo call from a coroutine on eventlet's asyncio hub would block "
                "its event loop (coroutines run in the hub's own loop): await the async form "
                "instead (`data, stat = await client.get_async(path)`), or run the blocking "
                "call on a green thread with `await client.handler.spawn(fn, *args)`"
            )
        raise RuntimeError(
            "cannot block in the eventlet hub's own loop (inside a hub timer or "
            "listener callback); call this from a green thread instead"
        )


class Waiter:
    """One parked caller; created in the thread (and hub) that will wait on it."""

    __slots__ = ("hub", "_event", "_lock")

    def __init__(self) -> None:
        hub = current_hub()
        self.hub = hub
        self._event: Any
        self._lock: Any
        if hub is None:
            self._event = None
            self._lock = allocate_lock()
            self._lock.acquire()
            return
        refuse_hub_greenlet(hub, greenlet.getcurrent())
        ensure_bridge(hub)
        self._event = green_event.Event()
        self._lock = None

    def wait(self, timeout: Optional[float]) -> bool:
        """Block the creating caller; True if woken, False if ``timeout`` ran out."""
        if self._event is None:
            return bool(self._lock.acquire(True, -1 if timeout is None else timeout))
        return self._event.wait(timeout) is not None

    def wake(self) -> None:
        """Wake the waiter; any thread, any hub (rule 3)."""
        wake_all([self])

    def _release(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # already woken
            pass

    def _send(self) -> None:
        if not self._event.ready():
            self._event.send(True)


def _send_all(waiters: Iterable[Waiter]) -> None:
    for waiter in waiters:
        waiter._send()


def _post(hub: Any, fn: Callable[..., Any], *args: Any) -> None:
    try:
        bridge_of(hub).call_soon_threadsafe(fn, *args)
    except BridgeClosed:
        # The hub was shut down: its green threads are gone, nobody waits there.
        pass


def wake_all(waiters: List[Waiter]) -> None:
    """Wake every waiter; one bridge call per foreign hub. Any thread."""
    if not waiters:
        return
    here = current_hub()
    foreign: Dict[Any, List[Waiter]] = {}
    for waiter in waiters:
        hub = waiter.hub
        if hub is None:
            waiter._release()
        elif hub is here:
            waiter._send()
        else:
            foreign.setdefault(hub, []).append(waiter)
    for hub, group in foreign.items():
        _post(hub, _send_all, group)


def wait_until(
    lock: Any, ready: Callable[[], bool], waiters: List[Waiter], timeout: Optional[float]
) -> bool:
    """Park the caller on ``waiters`` until ``ready()`` or ``timeout``.

    ``lock`` is the owner's native lock guarding ``ready()`` and ``waiters``;
    whoever makes ``ready()`` true must, under the same lock, take the waiters
    and wake them (``wake_all``) after releasing it. Returns ``ready()``.
    """
    if ready():
        return True
    waiter = Waiter()
    with lock:
        if ready():
            return True
        waiters.append(waiter)
    if waiter.wait(timeout):
        return ready()
    with lock:
        try:
            waiters.remove(waiter)
        except ValueError:
            pass
    return ready()
