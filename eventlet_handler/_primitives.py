"""Event, Lock, RLock and Queue that hold across hubs and native threads.

What ``event_object()``, ``lock_object()``, ``rlock_object()`` and
``queue_impl()`` return. kazoo sets its events in the connection loop (the
handler's hub) and waits on them from callers anywhere; its recipes take locks
and queues from callbacks and from callers at once. So each primitive keeps its
state under a short native lock and parks blocked callers with
:mod:`eventlet_handler._parking` (green in a hub, native elsewhere).

Every method here may be called from any green thread of any hub and from any
native thread; blocking ones never from the hub's loop greenlet.
"""

from __future__ import annotations

import collections
import queue as std_queue
import time
from typing import Any, Deque, List, Optional

import greenlet

from ._parking import Waiter, allocate_lock, check_timeout, wait_until, wake_all


def _lock_timeout(blocking: bool, timeout: float) -> Optional[float]:
    if not blocking:
        if timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        return 0.0
    if timeout == -1:
        return None
    return check_timeout(timeout)


class Event:
    """``threading.Event`` for every hub and thread."""

    __slots__ = ("_lock", "_flag", "_waiters")

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._flag = False
        self._waiters: List[Waiter] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'set' if self._flag else 'unset'}>"

    def is_set(self) -> bool:
        """True while the flag is set. Any thread, never blocks."""
        return self._flag

    isSet = is_set

    def set(self) -> None:
        """Set the flag and wake every waiter, each in its own hub. Any thread."""
        with self._lock:
            self._flag = True
            waiters, self._waiters = self._waiters, []
        wake_all(waiters)

    def clear(self) -> None:
        """Reset the flag; later waiters block. Any thread, never blocks."""
        with self._lock:
            self._flag = False

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until set or ``timeout``; True if the flag was set.

        Any green thread (waits green) or native thread (waits natively).
        """
        check_timeout(timeout)
        return wait_until(self._lock, self.is_set, self._waiters, timeout)


class Lock:
    """``threading.Lock`` for every hub and thread; FIFO hand-off to waiters."""

    __slots__ = ("_guard", "_locked", "_waiters")

    def __init__(self) -> None:
        self._guard = allocate_lock()
        self._locked = False
        self._waiters: Deque[Waiter] = collections.deque()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'locked' if self._locked else 'unlocked'}>"

    def locked(self) -> bool:
        """True while held. Any thread, never blocks."""
        return self._locked

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, waiting up to ``timeout`` (``-1``: forever); True if taken.

        Any green thread (waits green) or native thread (waits natively).
        """
        wait_for = _lock_timeout(blocking, timeout)
        with self._guard:
            if not self._locked:
                self._locked = True
                return True
            if wait_for == 0.0:
                return False
        waiter = Waiter()
        with self._guard:
            if not self._locked:
                self._locked = True
                return True
            self._waiters.append(waiter)
        if waiter.wait(wait_for):
            return True  # release() handed the lock over
        with self._guard:
            try:
                self._waiters.remove(waiter)
                return False
            except ValueError:
                return True  # handed over just as the timeout ran out

    def release(self) -> None:
        """Release; the longest waiter, in whatever hub or thread, gets it next.

        Any thread (like ``threading.Lock``, not only the holder's).
        """
        with self._guard:
            if not self._locked:
                raise RuntimeError("release unlocked lock")
            if not self._waiters:
                self._locked = False
                return
            waiter = self._waiters.popleft()
        waiter.wake()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class RLock:
    """``threading.RLock`` for every hub and thread; the owner is the green thread."""

    __slots__ = ("_lock", "_owner", "_count")

    def __init__(self) -> None:
        self._lock = Lock()
        self._owner: Any = None
        self._count = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} owner={self._owner!r} count={self._count}>"

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take or re-enter the lock; the owner is the calling green thread (or
        native thread's main greenlet). Any thread; waits as :meth:`Lock.acquire`."""
        me = greenlet.getcurrent()
        if self._owner is me:
            self._count += 1
            return True
        if not self._lock.acquire(blocking, timeout):
            return False
        self._owner, self._count = me, 1
        return True

    def release(self) -> None:
        """Leave one level; only the owner may call it (else ``RuntimeError``)."""
        if self._owner is not greenlet.getcurrent():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._lock.release()

    def _is_owned(self) -> bool:
        return self._owner is greenlet.getcurrent()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Queue:
    """A FIFO ``queue.Queue`` subset for every hub and thread.

    Raises ``queue.Empty`` / ``queue.Full`` (the handler's ``queue_empty``).
    """

    __slots__ = ("maxsize", "_lock", "_items", "_getters", "_putters")

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, not {maxsize!r}")
        self.maxsize = maxsize
        self._lock = allocate_lock()
        self._items: Deque[Any] = collections.deque()
        self._getters: List[Waiter] = []
        self._putters: List[Waiter] = []

    def qsize(self) -> int:
        """Items queued now. Any thread, never blocks."""
        return len(self._items)

    def empty(self) -> bool:
        """True if no item is queued now. Any thread, never blocks."""
        return not self._items

    def full(self) -> bool:
        """True if a bounded queue has no room now. Any thread, never blocks."""
        return 0 < self.maxsize <= len(self._items)

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        """Append ``item``, waiting for room up to ``timeout`` (``queue.Full`` after).

        Any green thread (waits green) or native thread (waits natively); wakes
        getters in their own hubs.
        """
        deadline = _deadline(timeout)
        while True:
            with self._lock:
                if not self.full():  # checked and taken under one lock: never overfills
                    self._items.append(item)
                    getters, self._getters = self._getters, []
                    break
            self._wait(self._has_room, self._putters, block, deadline, std_queue.Full)
        wake_all(getters)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Take the oldest item, waiting up to ``timeout`` (``queue.Empty`` after).

        Any green thread (waits green) or native thread (waits natively).
        """
        deadline = _deadline(timeout)
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    putters, self._putters = self._putters, []
                    break
            self._wait(self._items.__len__, self._getters, block, deadline, std_queue.Empty)
        wake_all(putters)
        return item

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``. Any thread, never blocks."""
        self.put(item, block=False)

    def get_nowait(self) -> Any:
        """``get(block=False)``. Any thread, never blocks."""
        return self.get(block=False)

    def _has_room(self) -> bool:
        return not self.full()

    def _wait(
        self, ready: Any, waiters: List[Waiter], block: bool, deadline: Optional[float], exc: type,
    ) -> None:
        """Park until ``ready()`` might hold; ``exc`` if not blocking or past ``deadline``.

        The caller re-checks under the lock: another caller may have been first.
        """
        remaining = None if deadline is None else deadline - time.monotonic()
        if not block or (remaining is not None and remaining <= 0):
            raise exc()
        wait_until(self._lock, ready, waiters, remaining)


def _deadline(timeout: Optional[float]) -> Optional[float]:
    """``timeout`` (validated) as a ``time.monotonic()`` deadline, computed once per call."""
    check_timeout(timeout)
    return None if timeout is None else time.monotonic() + timeout
