"""A green ``select`` that a stale hub callback cannot re-enter.

eventlet's hubs collect the callbacks of every ready fd *before* running any
of them (``hubs/poll.py``). With ``eventlet.green.select.select`` waiting on
two fds that turn ready in the same poll (kazoo's server socket and its wake
pair), the first callback switches to the waiting green thread, which returns
and goes on, say into a ``select`` for *writing*; then the hub runs the second,
stale callback, which switches into that green thread again with the old
"readable" answer. kazoo reads it as "not writable in time" and drops the
connection ("socket time-out during write").

Rules:

1. Every listener and the timer of one ``select`` call share a ``_Call``; the
   first to fire marks it answered, and only that one switches.
2. ``finally`` marks it answered too, so nothing can switch in after return.
3. As in eventlet's version, a timeout lets the hub poll once before it fires,
   so ``timeout=0`` reports what is ready now.
4. Fast path: one zero-timeout ``poll()`` (unpatched) first; what is ready now
   is returned at once, all of it, without a trip through the hub (kazoo's
   connection loop selects once per request and per event, and under load its
   fds are mostly ready). So that a busy loop cannot starve its hub, every
   ``FAIR_EVERY``-th fast answer in a row (counted per hub, on the hub object)
   first yields with ``eventlet.sleep(0)``.
5. A poll (``timeout=0``) never registers a hub listener: it yields once with
   ``eventlet.sleep(0)`` and polls again. Waiting selects of one hub share one
   hub listener per fd and direction (a ``_Shared`` on the hub), which answers
   every call waiting on it, so two green threads may select one fd at once, as
   with the stdlib (eventlet refuses a second listener: "Second simultaneous
   read"). A listener's callback answers only the calls of its own ``_Shared``,
   so a stale one finds nobody (rule 1 still holds).
6. A native thread with no hub selects natively (an unpatched ``poll``) and
   gets no hub.
7. Once woken, a select polls once more and returns everything ready then, as
   the stdlib does; only if nothing is (the fd was drained meanwhile) does it
   return the answer that woke it.
8. Idle hub (:func:`eventlet_handler._hubs.hub_is_idle`: no live timer, no listener
   but the bridge's pump): the wait is one native ``poll()`` of the fds and the bridge's fd, with the
   caller's timeout; no listener is added and removed (an ``epoll_ctl`` pair each, each
   releasing the GIL) and the hub loop does not run. Only a bridge call can give that
   hub work, and its fd wakes the poll; then the select goes on green, where the pump
   runs first.
"""

from __future__ import annotations

import errno
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import eventlet
import greenlet
from eventlet import patcher
from kazoo.handlers.utils import fileobj_to_fd

from ._bridge import bridge_of
from ._hubs import FAST_SELECTS_ATTR, SELECT_LISTENERS_ATTR, current_hub, hub_is_idle
from ._parking import refuse_hub_greenlet

_select_mod: Any = patcher.original("select")
_READABLE = _select_mod.POLLIN | _select_mod.POLLPRI | _select_mod.POLLHUP | _select_mod.POLLERR
_WRITABLE = _select_mod.POLLOUT | _select_mod.POLLHUP | _select_mod.POLLERR
FAIR_EVERY = 32
_clock = time.monotonic
_FAST_ANSWERS = FAST_SELECTS_ATTR  # fast answers in a row, on each hub
_SHARED = SELECT_LISTENERS_ATTR  # {(evtype, fd): _Shared}, on each hub

Ready = Tuple[List[Any], List[Any], List[Any]]


class _Call:
    __slots__ = ("current", "answered", "hub")

    def __init__(self, hub: Any, current: Any) -> None:
        self.hub = hub
        self.current = current
        self.answered = False

    def answer(self, ready: Ready) -> None:
        if not self.answered:
            self.answered = True
            self.current.switch(ready)

    def fail(self, *exc_info: Any) -> None:
        if not self.answered:
            self.answered = True
            self.current.throw(*exc_info)


class _Shared:
    """The one hub listener of (evtype, fd) in one hub, and the calls waiting on it (rule 5)."""

    __slots__ = ("hub", "key", "calls", "listener")

    def __init__(self, hub: Any, evtype: str, fd: int) -> None:
        self.hub = hub
        self.key = (evtype, fd)
        self.calls: Dict[_Call, Ready] = {}
        self.listener = hub.add(evtype, fd, self._ready, self._closed, _noop)

    def _ready(self, _fd: int) -> None:
        for call, ready in list(self.calls.items()):
            call.answer(ready)

    def _closed(self, *exc_info: Any) -> None:
        for call in list(self.calls):
            call.fail(*exc_info)

    def leave(self, call: _Call) -> None:
        del self.calls[call]
        if not self.calls:
            del getattr(self.hub, _SHARED)[self.key]
            self.hub.remove(self.listener)


def _join(hub: Any, evtype: str, fd: int, call: _Call, ready: Ready) -> _Shared:
    shared_by_key = getattr(hub, _SHARED, None)
    if shared_by_key is None:
        shared_by_key = {}
        setattr(hub, _SHARED, shared_by_key)
    shared = shared_by_key.get((evtype, fd))
    if shared is None:
        shared = shared_by_key[(evtype, fd)] = _Shared(hub, evtype, fd)
    shared.calls[call] = ready
    return shared


def select(
    rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any], timeout: Any = None
) -> Ready:
    """Wait green until one object is readable or writable, or ``timeout`` seconds.

    Any thread (never a hub greenlet): green in a thread with a hub, natively in
    one without. Returns as soon as one object is ready, with every object ready
    by then.

    :raises OSError: ``EBADF`` for a closed socket or an fd that is not open in any
        of the lists.
    :raises TypeError: for an object that is neither an fd nor has ``fileno()``.
    """
    readers: Dict[int, Any] = {_fd(obj): obj for obj in rlist}
    writers: Dict[int, Any] = {_fd(obj): obj for obj in wlist}
    for obj in xlist:  # never waited on (kazoo passes none), but refused if invalid
        _fd(obj)
    hub = current_hub()
    if hub is None:  # rule 6
        return _ready_now(readers, writers, timeout) or ([], [], [])
    current = greenlet.getcurrent()
    refuse_hub_greenlet(hub, current)
    ready = _ready_now(readers, writers)
    if ready is not None:
        fast = getattr(hub, _FAST_ANSWERS, 0) + 1  # per hub: hubs do not share fairness
        setattr(hub, _FAST_ANSWERS, fast)
        if fast % FAIR_EVERY:
            return ready
        eventlet.sleep(0)  # rule 4: let the hub's other green threads run
        ready = _ready_now(readers, writers)
        if ready is not None:
            return ready
    setattr(hub, _FAST_ANSWERS, 0)
    if timeout == 0:  # rule 5: a poll registers nothing
        eventlet.sleep(0)
        return _ready_now(readers, writers) or ([], [], [])
    bridge = bridge_of(hub)
    if bridge is not None and hub_is_idle(hub, bridge):  # rule 8
        ready, timeout = _wait_natively(readers, writers, bridge.read_fd, timeout)
        if ready is not None:
            return ready
    call = _Call(hub, current)
    joined: List[_Shared] = []
    timers: List[Any] = []
    try:
        for fd, obj in readers.items():
            joined.append(_join(hub, hub.READ, fd, call, ([obj], [], [])))
        for fd, obj in writers.items():
            joined.append(_join(hub, hub.WRITE, fd, call, ([], [obj], [])))
        if timeout is not None:
            timers.append(hub.schedule_call_global(timeout, _after_one_poll, call, timers))
        answer = hub.switch()
    finally:
        call.answered = True
        for shared in joined:
            shared.leave(call)
        for timer in timers:
            timer.cancel()
    return _ready_now(readers, writers) or answer  # rule 7: all that is ready, as the stdlib


def _ready_now(readers: Dict[int, Any], writers: Dict[int, Any], timeout: Optional[float] = 0) -> Optional[Ready]:
    """What is ready (one unpatched ``poll``, by default not waiting), or None if nothing."""
    events = _poller(readers, writers).poll(None if timeout is None else timeout * 1000.0)
    return _answer(events, readers, writers)


def _wait_natively(
    readers: Dict[int, Any], writers: Dict[int, Any], bridge_fd: int, timeout: Optional[float],
) -> Tuple[Optional[Ready], Optional[float]]:
    """Rule 8: (the answer, None) or, if a bridge call woke the poll, (None, time left)."""
    poller = _poller(readers, writers)
    poller.register(bridge_fd, _select_mod.POLLIN)
    deadline = None if timeout is None else _clock() + timeout
    events = poller.poll(None if timeout is None else timeout * 1000.0)
    ready = _answer(events, readers, writers)
    if ready is not None or not events:
        return ready or ([], [], []), None
    return None, None if deadline is None else max(0.0, deadline - _clock())


def _poller(readers: Dict[int, Any], writers: Dict[int, Any]) -> Any:
    poller = _select_mod.poll()
    for fd in readers:
        poller.register(fd, _select_mod.POLLIN | _select_mod.POLLPRI)
    for fd in writers:
        poller.register(fd, (_select_mod.POLLIN | _select_mod.POLLOUT) if fd in readers else _select_mod.POLLOUT)
    return poller


def _answer(events: List[Tuple[int, int]], readers: Dict[int, Any], writers: Dict[int, Any]) -> Optional[Ready]:
    for fd, ev in events:  # POLLNVAL: the fd is not open (a closed socket is refused earlier)
        if ev & _select_mod.POLLNVAL and (fd in readers or fd in writers):
            raise OSError(errno.EBADF, f"select() on fd {fd}, which is not open: leave it out of the lists")
    readable = [readers[fd] for fd, ev in events if fd in readers and ev & _READABLE]
    writable = [writers[fd] for fd, ev in events if fd in writers and ev & _WRITABLE]
    return (readable, writable, []) if readable or writable else None


def _after_one_poll(call: _Call, timers: List[Any]) -> None:
    # Let the hub poll once more before answering "nothing ready" (rule 3).
    timers.append(call.hub.schedule_call_global(0, call.answer, ([], [], [])))


def _fd(obj: Any) -> int:
    """``obj``'s fd. A closed socket (``fileno()`` -1, or raising ``OSError`` like a
    closed wake pair end) is ``OSError(EBADF)``; a non-file is kazoo's ``TypeError``."""
    if isinstance(obj, int):
        fd = obj
    else:
        try:
            fd = int(obj.fileno())
        except OSError:
            fd = -1
        except (AttributeError, TypeError, ValueError):
            return int(fileobj_to_fd(obj))  # raises TypeError naming the object
    if fd < 0:
        raise OSError(errno.EBADF, f"select() on a closed socket: {obj!r}")
    return fd


def _noop(*args: Any) -> None:
    pass
