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
   waiter makes sure its hub has a bridge (``bridge_of(hub, create=True)``).
3. Waking is idempotent, never blocks and never switches; a waiter that already
   timed out ignores a late wake.
4. Nobody may block in the hub greenlet itself: that is refused with an error. On
   eventlet's asyncio hub coroutines run there, so their error names ``await``.
5. Idle hub, native wait: a green caller whose hub has nothing else to do (no live
   timer, no fd listener but its bridge's pump, nothing closed pending; checked by
   :func:`eventlet_handler._hubs.hub_is_idle`, epoll/poll/select hubs only) parks on a native lock instead,
   registered as its bridge's sleeper: a waker then wakes it with one lock release,
   no pipe byte and no hub loop on either side. Nothing can give that hub work
   except a bridge call (its other green threads are all parked on events that only
   a call or this caller can send), and a bridge call interrupts the native wait:
   the caller then waits green for the rest of its timeout, so the call runs in the
   hub greenlet at once. A waiter is *native* while ``hub`` is None; it publishes
   ``hub`` before it waits green, and a waker sets ``woken`` before it reads ``hub``,
   so one of the two always sees the other.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

import greenlet
from eventlet import event as green_event
from eventlet import patcher

from ._bridge import Bridge, BridgeClosed, bridge_of
from ._hubs import current_hub, hub_is_idle, runs_coroutine

_thread: Any = patcher.original("_thread")
allocate_lock: Callable[[], Any] = _thread.allocate_lock
_clock = time.monotonic


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
        if runs_coroutine(hub):
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

    __slots__ = ("hub", "woken", "_event", "_lock", "_bridge")

    def __init__(self) -> None:
        hub = current_hub()
        self.woken = False
        self._event: Any = None
        self._bridge: Optional[Bridge] = None
        if hub is None:
            self.hub = None
            self._lock = allocate_lock()
            self._lock.acquire()
            return
        refuse_hub_greenlet(hub, greenlet.getcurrent())
        bridge = bridge_of(hub, create=True)
        if hub_is_idle(hub, bridge):  # rule 5: native until a bridge call needs the hub
            self.hub = None
            self._bridge = bridge
            self._lock = allocate_lock()
            self._lock.acquire()
            return
        self.hub = hub
        self._event = green_event.Event()
        self._lock = None

    def wait(self, timeout: Optional[float]) -> bool:
        """Block the creating caller; True if woken, False if ``timeout`` ran out."""
        if self._event is not None:
            return self._event.wait(timeout) is not None
        bridge = self._bridge
        if bridge is None:
            return bool(self._lock.acquire(True, -1 if timeout is None else timeout))
        return self._wait_idle_hub(bridge, timeout)

    def _wait_idle_hub(self, bridge: Bridge, timeout: Optional[float]) -> bool:
        # Rule 5: natively while the hub stays idle, green once a bridge call came.
        deadline = None if timeout is None else _clock() + timeout
        if bridge.park_sleeper(self._lock):
            try:
                got = self._lock.acquire(True, -1 if timeout is None else timeout)
            finally:
                bridge.unpark_sleeper()
            if self.woken:
                return True
            if not got:
                return False
        self._event = green_event.Event()
        self.hub = bridge._hub  # published before woken is read: see rule 5
        if self.woken:
            return True
        remaining = None if deadline is None else max(0.0, deadline - _clock())
        return self._event.wait(remaining) is not None or self.woken

    def wake(self) -> None:
        """Wake the waiter; any thread, any hub (rule 3)."""
        wake_all([self])

    def _release(self) -> None:
        self.woken = True
        try:
            self._lock.release()
        except RuntimeError:  # already woken
            pass
        hub = self.hub
        if hub is not None:  # rule 5: it went green meanwhile
            if hub is current_hub():
                self._send()
            else:
                _post(hub, _send_all, [self])

    def _send(self) -> None:
        if not self._event.ready():
            self._event.send(True)


def _send_all(waiters: Iterable[Waiter]) -> None:
    for waiter in waiters:
        waiter._send()


def _post(hub: Any, fn: Callable[..., Any], *args: Any) -> None:
    bridge = bridge_of(hub)
    if bridge is None:
        return  # the hub was shut down: its green threads are gone, nobody waits there
    try:
        bridge.call_soon_threadsafe(fn, *args)
    except BridgeClosed:  # closed meanwhile: likewise
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
