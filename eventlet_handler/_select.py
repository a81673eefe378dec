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
5. Idle hub (``_parking.hub_is_idle``: no live timer, no listener but the bridge's
   pump): the wait is one native ``poll()`` of the fds and the bridge's fd, with the
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
from eventlet import hubs, patcher
from kazoo.handlers.utils import fileobj_to_fd

from ._bridge import open_bridge_of
from ._parking import hub_is_idle, refuse_hub_greenlet

_select_mod: Any = patcher.original("select")
_READABLE = _select_mod.POLLIN | _select_mod.POLLPRI | _select_mod.POLLHUP | _select_mod.POLLERR
_WRITABLE = _select_mod.POLLOUT | _select_mod.POLLHUP | _select_mod.POLLERR
FAIR_EVERY = 32
_clock = time.monotonic
_FAST_ANSWERS = "_eventlet_handler_fast_selects"  # fast answers in a row, on each hub

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


def select(
    rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any], timeout: Any = None
) -> Ready:
    """Wait green until one object is readable or writable, or ``timeout`` seconds.

    Any green thread (never the hub greenlet). Returns as soon as one object is
    ready, with that object alone in its list.

    :raises OSError: ``EBADF`` for a closed socket in any of the lists.
    :raises TypeError: for an object that is neither an fd nor has ``fileno()``.
    """
    hub = hubs.get_hub()
    current = greenlet.getcurrent()
    refuse_hub_greenlet(hub, current)
    readers: Dict[int, Any] = {_fd(obj): obj for obj in rlist}
    writers: Dict[int, Any] = {_fd(obj): obj for obj in wlist}
    for obj in xlist:  # never waited on (kazoo passes none), but refused if invalid
        _fd(obj)
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
    bridge = open_bridge_of(hub)
    if bridge is not None and hub_is_idle(hub, bridge):  # rule 5
        ready, timeout = _wait_natively(readers, writers, bridge.read_fd, timeout)
        if ready is not None:
            return ready
    call = _Call(hub, current)
    listeners: List[Any] = []
    timers: List[Any] = []
    try:
        for fd, obj in readers.items():
            listeners.append(hub.add(hub.READ, fd, lambda _fd, o=obj: call.answer(([o], [], [])), call.fail, _noop))
        for fd, obj in writers.items():
            listeners.append(hub.add(hub.WRITE, fd, lambda _fd, o=obj: call.answer(([], [o], [])), call.fail, _noop))
        if timeout is not None:
            timers.append(hub.schedule_call_global(timeout, _after_one_poll, call, timers))
        return hub.switch()
    finally:
        call.answered = True
        for listener in listeners:
            hub.remove(listener)
        for timer in timers:
            timer.cancel()


def _ready_now(readers: Dict[int, Any], writers: Dict[int, Any]) -> Optional[Ready]:
    """What is ready this instant (one unpatched ``poll(0)``), or None if nothing."""
    return _answer(_poller(readers, writers).poll(0), readers, writers)


def _wait_natively(
    readers: Dict[int, Any], writers: Dict[int, Any], bridge_fd: int, timeout: Optional[float],
) -> Tuple[Optional[Ready], Optional[float]]:
    """Rule 5: (the answer, None) or, if a bridge call woke the poll, (None, time left)."""
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
