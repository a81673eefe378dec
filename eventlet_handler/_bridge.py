"""Cross-thread entry into an eventlet hub.

eventlet keeps one hub per OS thread, and a green thread can be switched to only
from its own hub's thread. ``Event.send()``, ``Queue.put()`` and friends schedule
their wake-up on the *calling* thread's hub, so calling them from another thread
wakes nobody. A :class:`Bridge` is how any thread asks a hub to run a call *in
that hub*.

Rules this module relies on (and keeps):

1. A bridge belongs to exactly one hub. Its *pump* is a read listener on the
   bridge's pipe, registered once in that hub, so it runs in the hub greenlet
   (no green thread to switch to, no listener to re-register per wake-up). A
   bridge is created only in its hub's own thread (``bridge_of(hub, create=True)``).
2. ``call_soon_threadsafe()`` may be called from any green thread of any hub,
   from any native thread, and from the pump itself. It never blocks on I/O and
   never switches green threads. The calls run in the hub greenlet, so they
   must not block or switch either: they only schedule (``Event.send()``,
   an unbounded ``LightQueue.put()``, ``spawn_n()``). A call that tried to
   block would get eventlet's "do not call blocking functions from the
   mainloop" error, which the pump logs.
3. The producer holds the native lock across "check closed, enqueue, wake", so a
   call is either refused with :class:`BridgeClosed` or certain to run: none is
   ever stranded by a concurrent ``close()``.
4. At most one wake byte is pending in the pipe (``_wake_pending``), so the pipe
   never fills up however many calls are queued.
5. The wake byte is written by :mod:`._selfpipe` (unpatched ``os.write``): a patched write that
   hit EAGAIN would trampoline into the *caller's* hub. The pipe is
   non-blocking, and with rule 4 a write can never meet a full pipe.
6. Only the pump reads the pipe, and only the pump closes it (after ``close()``
   it drains the last calls, then closes both ends).
7. The pump drains ``range(len(calls))`` per wake-up: calls queued while a batch
   runs are seen on the next round, so a call that queues another cannot starve
   the hub.
8. A thread parked natively in its own hub (``_parking``'s idle-hub wait) registers its
   lock as the bridge's *sleeper*: a call queued meanwhile writes the wake byte as
   usual and also releases the sleeper, which then goes back to waiting green, so
   the pump runs in the hub greenlet as rule 1 wants.
9. A hub's bridge is an attribute of the hub object, so finding it costs one
   ``getattr``. After ``fork()`` the child treats every bridge of the parent as
   gone (their pipes are shared with the parent; a generation counter says so)
   and creates new ones on demand.
10. The pump takes no lock: the producer holds it across its wake byte's ``os.write``
    (rule 3), and a pump woken by that byte while the write returns would block on
    the lock, hand the GIL back and wait for it again: two thread switches per wake.
    The pump reads the byte, then clears ``_wake_pending``, then counts the batch, so
    no call is left without a wake (see ``_pump``); at worst a byte is left for calls
    already run, and the next round finds an empty batch.
"""

from __future__ import annotations

import collections
import errno
import logging
from typing import Any, Callable, Deque, Literal, Tuple, overload

from eventlet import patcher

from . import _selfpipe
from ._errors import EventletHandlerError
from ._hubs import BRIDGE_ATTR, current_hub, fork_generation, on_thread_exit, release_hub_resources

_thread: Any = patcher.original("_thread")

LOG = logging.getLogger(__name__)

Call = Tuple[Callable[..., Any], Tuple[Any, ...]]


class BridgeClosed(EventletHandlerError, RuntimeError):
    """The target hub's bridge is closed: its hub is shutting down or gone.

    Private: every public call that meets it raises :class:`HandlerStoppedError`
    instead, or knows that nobody is left to reach.
    """


class Bridge:
    """A thread-safe call queue into one hub (see the module rules).

    Thread contract:

    1. ``call_soon_threadsafe()`` and ``close()``: any thread, any hub.
    2. The calls themselves run in the owning hub's greenlet, in the order they
       were queued (FIFO across all producers); they must not block (rule 2).
    3. An exception raised by a call is logged with its traceback; the pump
       goes on with the next call.
    """

    __slots__ = (
        "_calls", "_lock", "_wake_pending", "_closed", "_rfd", "_wfd",
        "_generation", "calls_run", "pump_exited", "_hub", "_listener", "_sleeper",
    )

    def __init__(self, hub: Any) -> None:
        self._calls: Deque[Call] = collections.deque()
        self._lock = _thread.allocate_lock()
        self._wake_pending = False
        self._closed = False
        self._rfd, self._wfd = _selfpipe.open_pipe()
        self._generation = fork_generation()
        self.calls_run = 0
        self.pump_exited = False
        self._hub = hub
        self._sleeper: Any = None
        self._listener = hub.add(hub.READ, self._rfd, self._pump, self._pump_failed, _noop)
        assert current_hub() is hub, "a bridge must be created in its hub's thread"

    @property
    def pending(self) -> bool:
        """Calls queued and not yet run. Read in the bridge's own hub, False means
        every call queued so far has run: the pump runs whole batches in the hub
        greenlet, never interleaved with a green thread of that hub."""
        return bool(self._calls)

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` soon in the bridge's hub, in its hub greenlet (rule 2).

        Safe to call from any green thread of any hub and from native threads.
        If no exception is raised, ``fn`` is guaranteed to run (rule 3).

        :raises BridgeClosed: the bridge was closed; ``fn`` will not run.
        """
        with self._lock:
            if self._closed:
                raise BridgeClosed(
                    f"cannot run {fn!r}: the eventlet hub it targets is shut down"
                )
            self._calls.append((fn, args))
            if not self._wake_pending:
                self._wake_pending = True
                self._write_wake_byte_never_blocks()
            if self._sleeper is not None:
                self._interrupt_sleeper()

    @property
    def read_fd(self) -> int:
        """The fd that turns readable when calls are queued (-1 once retired)."""
        return self._rfd

    @property
    def listener(self) -> Any:
        """The pump's read listener in the hub (what an idle check expects to find)."""
        return self._listener

    def park_sleeper(self, lock: Any) -> bool:
        """Register ``lock`` (held) as the sleeper (rule 8); False if calls are already
        queued or the bridge is closed: then do not sleep natively. The hub's own thread."""
        with self._lock:
            if self._calls or self._closed:
                return False
            self._sleeper = lock
            return True

    def unpark_sleeper(self) -> None:
        """Forget the sleeper registered by :meth:`park_sleeper`. The hub's own thread."""
        self._sleeper = None

    def _interrupt_sleeper(self) -> None:
        # Caller holds self._lock (rule 8).
        sleeper, self._sleeper = self._sleeper, None
        try:
            sleeper.release()
        except RuntimeError:  # its waker was first
            pass

    def close(self) -> None:
        """Refuse new calls; the pump runs the ones already queued, then exits.

        Idempotent; any thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake_pending = True
            self._write_wake_byte_never_blocks()

    def _write_wake_byte_never_blocks(self) -> None:
        # Caller holds self._lock (rules 4 and 5).
        try:
            _selfpipe.poke(self._wfd)  # a byte already there will wake the pump too
        except OSError as exc:  # EBADF after a fork or a torn-down hub
            if exc.errno != errno.EBADF:
                raise

    def _pump(self, _fd: int) -> None:
        # The hub's read listener for the pipe, run in the hub greenlet (rule 2). Rule 10:
        # no lock. Read, then clear, then count the batch: a producer that saw the flag
        # set before the clear had appended before the count (its call runs now); one
        # that appended after the count saw it cleared, or set by a producer that wrote
        # its byte after the read: either way a byte is left for the next round.
        _selfpipe.take_byte(self._rfd)  # rule 4: one read, not a read until EAGAIN
        self._wake_pending = False
        closed = self._closed  # set under the lock after the last call it accepted
        self._run_batch()
        if closed or self._generation != fork_generation():
            self._retire()

    def _pump_failed(self, exc: BaseException) -> None:
        # eventlet calls a listener's tb with the exception alone (hub.py: IOClosed).
        LOG.error("the bridge's pipe failed in its hub; running the calls it holds", exc_info=exc)
        with self._lock:
            self._closed = True  # refuse new calls: nothing can wake this pump again
        self._run_batch()  # rule 3: a call accepted before the refusal still runs
        self._retire()

    def _retire(self) -> None:
        self._hub.remove(self._listener)
        self._close_fds()
        self.pump_exited = True

    def _run_batch(self) -> None:
        calls = self._calls
        batch = len(calls)
        for _ in range(batch):
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception:
                LOG.exception("call %r scheduled into the eventlet hub raised", fn)
        self.calls_run += batch

    def _close_fds(self) -> None:
        with self._lock:
            self._closed = True
            fds, self._rfd, self._wfd = (self._rfd, self._wfd), -1, -1
        _selfpipe.close_fds(*fds)


_ATTR = BRIDGE_ATTR  # a hub's bridge lives on the hub object itself


@overload
def bridge_of(hub: Any, *, create: Literal[True]) -> Bridge: ...
@overload
def bridge_of(hub: Any, *, create: bool = False) -> Bridge | None: ...
def bridge_of(hub: Any, *, create: bool = False) -> Bridge | None:
    """``hub``'s open bridge (rule 8), or ``None`` if it has none (never had a waiter,
    shut down, or a parent's after fork). Any thread.

    ``create=True`` makes one (with its pump) when missing; only in ``hub``'s own
    thread, from a green thread or its main greenlet, never from the hub greenlet.
    """
    bridge = getattr(hub, _ATTR, None)
    if bridge is not None and not bridge._closed and bridge._generation == fork_generation():
        return bridge
    if not create:
        return None
    bridge = Bridge(hub)
    setattr(hub, _ATTR, bridge)
    on_thread_exit(_retire_abandoned, bridge, hub)
    return bridge


def _retire_abandoned(bridge: Bridge, hub: Any) -> None:
    # The hub's thread ended without retiring its hub (see _hubs.on_thread_exit).
    bridge._close_fds()
    release_hub_resources(hub)


def close_bridge(hub: Any) -> None:
    """Close and forget ``hub``'s bridge, if it has one. Any thread."""
    bridge = getattr(hub, _ATTR, None)
    if bridge is not None:
        try:
            delattr(hub, _ATTR)
        except AttributeError:  # a concurrent close_bridge() won
            pass
        bridge.close()


def _noop(*args: Any) -> None:
    pass
