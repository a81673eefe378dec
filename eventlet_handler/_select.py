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
   releasing the GIL) and the hub loop does not run. It comes before rule 4's
   zero-timeout poll (a native poll answers at once for what is ready, so that poll
   would only be one syscall more); an idle hub has no other green thread to be fair to. Only a bridge call can give that
   hub work, and its fd wakes the poll; then the select goes on green, where the pump
   runs first.
9. A hub keeps one unpatched ``poll`` object per fd set it selects on (kazoo's loop
   selects the same two or three sets over and over), reused instead of built and
   registered per call. A ``poll`` object holds no kernel state, only fd numbers and
   event masks, so a reused one answers exactly as a fresh one would, even after an
   fd number was closed and reused. Only the hub's own thread uses it, and never two
   calls at once (``poll`` does not switch green threads). At most
   ``POLLERS_KEPT`` sets per hub; past that the cache starts afresh.
10. Bytes read ahead (:mod:`._readahead`, rule 3) are unread bytes: a read select on a
    socket holding some answers at once, in any thread, as the kernel would for bytes
    in its buffer, and goes through rule 4's fairness count like any fast answer. The
    other fds of that call are answered without a syscall when they are wake pair read
    ends (readable exactly while tokens are pending, ``_wakepair`` rule 2), else by
    one zero-timeout poll.
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
from ._hubs import FAST_SELECTS_ATTR, SELECT_LISTENERS_ATTR, SELECT_POLLERS_ATTR, current_hub, hub_is_idle
from ._parking import refuse_hub_greenlet
from ._readahead import ReadAheadSocket, data_ahead
from ._wakepair import WakeReader

_select_mod: Any = patcher.original("select")
_READABLE = _select_mod.POLLIN | _select_mod.POLLPRI | _select_mod.POLLHUP | _select_mod.POLLERR
_WRITABLE = _select_mod.POLLOUT | _select_mod.POLLHUP | _select_mod.POLLERR
FAIR_EVERY = 32
POLLERS_KEPT = 16  # fd sets per hub with a kept poll object (rule 9)
_clock = time.monotonic
_FAST_ANSWERS = FAST_SELECTS_ATTR  # fast answers in a row, on each hub
_SHARED = SELECT_LISTENERS_ATTR  # {(evtype, fd): _Shared}, on each hub
_POLLERS = SELECT_POLLERS_ATTR  # {(read fds, write fds, extra fd): poll object}, on each hub

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
    ahead = _ahead(readers, writers) if data_ahead else None  # rule 10
    if hub is None:  # rule 6
        return ahead or _ready_now(readers, writers, timeout) or ([], [], [])
    current = greenlet.getcurrent()
    refuse_hub_greenlet(hub, current)
    ready = ahead
    if ready is None and timeout != 0:
        bridge = bridge_of(hub)
        if bridge is not None and hub_is_idle(hub, bridge):  # rule 8, before any zero-timeout poll
            setattr(hub, _FAST_ANSWERS, 0)
            ready, timeout = _wait_natively(readers, writers, bridge.read_fd, timeout, hub)
            if ready is not None:
                return ready
            return _wait_green(hub, current, readers, writers, timeout)  # a bridge call came
    if ready is None:
        ready = _ready_now(readers, writers, 0, hub)
    if ready is not None:
        fast = getattr(hub, _FAST_ANSWERS, 0) + 1  # per hub: hubs do not share fairness
        setattr(hub, _FAST_ANSWERS, fast)
        if fast % FAIR_EVERY:
            return ready
        eventlet.sleep(0)  # rule 4: let the hub's other green threads run
        ready = (_ahead(readers, writers) if data_ahead else None) or _ready_now(readers, writers, 0, hub)
        if ready is not None:
            return ready
    setattr(hub, _FAST_ANSWERS, 0)
    if timeout == 0:  # rule 5: a poll registers nothing
        eventlet.sleep(0)
        return _ready_now(readers, writers, 0, hub) or ([], [], [])
    return _wait_green(hub, current, readers, writers, timeout)


def _wait_green(
    hub: Any, current: Any, readers: Dict[int, Any], writers: Dict[int, Any], timeout: Optional[float],
) -> Ready:
    """Wait through ``hub``'s listeners (rules 1-3, 5, 7)."""
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
    return _ready_now(readers, writers, 0, hub) or answer  # rule 7: all that is ready, as the stdlib


def _ahead(readers: Dict[int, Any], writers: Dict[int, Any]) -> Optional[Ready]:
    """Rule 10: the answer when a reader holds bytes read ahead, else None."""
    buffered = [obj for obj in readers.values() if type(obj) is ReadAheadSocket and obj in data_ahead]
    if not buffered:
        return None
    rest = {fd: obj for fd, obj in readers.items() if obj not in buffered}
    readable, writable = list(buffered), []
    if not writers and all(type(obj) is WakeReader for obj in rest.values()):
        readable += [obj for obj in rest.values() if obj.readable()]
    elif rest or writers:
        more = _ready_now(rest, writers)
        if more is not None:
            readable += more[0]
            writable = more[1]
    return readable, writable, []


def _ready_now(
    readers: Dict[int, Any], writers: Dict[int, Any], timeout: Optional[float] = 0, hub: Any = None,
) -> Optional[Ready]:
    """What is ready (one unpatched ``poll``, by default not waiting), or None if nothing.
    With ``hub`` (the caller's own), that hub's kept poll object for the fd set (rule 9)."""
    events = _poller(readers, writers, hub).poll(None if timeout is None else timeout * 1000.0)
    return _answer(events, readers, writers) if events else None


def _wait_natively(
    readers: Dict[int, Any], writers: Dict[int, Any], bridge_fd: int, timeout: Optional[float], hub: Any,
) -> Tuple[Optional[Ready], Optional[float]]:
    """Rule 8: (the answer, None) or, if a bridge call woke the poll, (None, time left)."""
    poller = _poller(readers, writers, hub, bridge_fd)
    deadline = None if timeout is None else _clock() + timeout
    events = poller.poll(None if timeout is None else timeout * 1000.0)
    ready = _answer(events, readers, writers)
    if ready is not None or not events:
        return ready or ([], [], []), None
    return None, None if deadline is None else max(0.0, deadline - _clock())


def _poller(readers: Dict[int, Any], writers: Dict[int, Any], hub: Any = None, extra_fd: int = -1) -> Any:
    """A poll object for these fds (plus ``extra_fd`` for reading, if not -1): ``hub``'s
    kept one (rule 9; ``hub`` is the caller's own), or a fresh one without a hub."""
    if hub is not None:
        kept = getattr(hub, _POLLERS, None)
        if kept is None:
            kept = {}
            setattr(hub, _POLLERS, kept)
        key = (tuple(readers), tuple(writers), extra_fd)
        poller = kept.get(key)
        if poller is not None:
            return poller
        if len(kept) >= POLLERS_KEPT:
            kept.clear()
        poller = kept[key] = _new_poller(readers, writers, extra_fd)
        return poller
    return _new_poller(readers, writers, extra_fd)


def _new_poller(readers: Dict[int, Any], writers: Dict[int, Any], extra_fd: int) -> Any:
    poller = _select_mod.poll()
    for fd in readers:
        poller.register(fd, _select_mod.POLLIN | _select_mod.POLLPRI)
    for fd in writers:
        poller.register(fd, (_select_mod.POLLIN | _select_mod.POLLOUT) if fd in readers else _select_mod.POLLOUT)
    if extra_fd >= 0:
        poller.register(extra_fd, _select_mod.POLLIN)
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
