"""eventlet hubs as this package sees them: finding, retiring, surviving ``fork()``.

The one module that touches eventlet's and asyncio's private state
(``eventlet.hubs._threadlocal``; a hub's timers, listeners and ``closed`` list;
eventlet's asyncio hub's ``loop`` and its run task; an asyncio loop's
``_thread_id``; ``asyncio._get_running_loop``). Everything else asks here. The
rest of the package uses only the hub interface eventlet's own green modules use
(``add``, ``remove``, ``schedule_call_global``, ``switch``, ``READ``/``WRITE``,
``greenlet``), and keeps its own per-hub state in attributes of the hub object
whose names are listed below (:data:`BRIDGE_ATTR` and the others): finding it
costs one ``getattr``, and it goes away with the hub.

Rules:

1. :func:`current_hub` never *creates* a hub: a native thread that has nothing
   to do with eventlet stays that way.
2. A hub is retired (:func:`release_hub_resources`) only by its own thread, as
   it is done with it, or after that thread ended (:func:`on_thread_exit`);
   retiring closes its poller fd or asyncio loop, so no fd outlives the hub.
3. After ``fork()`` the child must not use anything tied to the parent's pipes:
   :func:`fork_generation` changes in the child, and whoever keeps such state
   (the bridges) compares generations.
4. :func:`hub_is_idle` answers only for hubs whose whole state is ``BaseHub``'s
   timers and listeners (epolls, poll, selects); any other hub, or a doubt (many
   timers, a close pending), is "busy", which costs a wait through the hub loop
   and never a wrong answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import weakref
from typing import Any, Callable, Protocol

import greenlet
from eventlet import hubs, patcher

_threading: Any = patcher.original("threading")

LOG = logging.getLogger(__name__)

# The package's own state on a hub object (one getattr to find; gone with the hub).
BRIDGE_ATTR = "_eventlet_handler_bridge"  # the hub's Bridge (_bridge.bridge_of)
FAST_SELECTS_ATTR = "_eventlet_handler_fast_selects"  # fast select answers in a row (_select)
SELECT_LISTENERS_ATTR = "_eventlet_handler_select_listeners"  # {(evtype, fd): shared listener} (_select)
SELECT_POLLERS_ATTR = "_eventlet_handler_select_pollers"  # {fd sets: select.poll object} (_select)

#: The asyncio loop running in the calling thread, or None. Any thread. asyncio's
#: private C function, as asyncio's own code uses it: ``get_running_loop()`` raises.
running_loop: Callable[[], "asyncio.AbstractEventLoop | None"] = asyncio._get_running_loop


def current_hub() -> Any | None:
    """The calling thread's eventlet hub, or ``None`` if it never made one (rule 1). Any thread."""
    return getattr(hubs._threadlocal, "hub", None)


def retire_current_hub() -> None:
    """Leave the calling thread's hub loop, release its resources and forget it, so the
    thread has no hub any more (rule 2). Its own thread's main greenlet only, once
    nothing is left to run there (its bridge already closed)."""
    hub = current_hub()
    if hub is None:
        return
    if hub.running and greenlet.getcurrent() is not hub.greenlet:
        hub.abort(wait=True)  # leave the run loop, so its asyncio loop can close
    release_hub_resources(hub)
    try:
        del hubs._threadlocal.hub
    except AttributeError:
        pass


def thread_has_no_hub() -> bool:
    """True in a native thread other than the main one that has no hub: green threads
    started there would never run, nobody runs that thread's hub. Any thread."""
    return current_hub() is None and _threading.current_thread() is not _threading.main_thread()


def hub_module_of(hub: Any | None) -> Any | None:
    """The module ``hubs.use_hub()`` takes to make another hub of ``hub``'s kind."""
    if hub is None:
        return None
    return sys.modules.get(type(hub).__module__)


def asyncio_loop_of(hub: Any | None) -> "asyncio.AbstractEventLoop | None":
    """The asyncio loop of eventlet's asyncio hub ``hub``; None for any other hub or None."""
    return getattr(hub, "loop", None)


def runs_coroutine(hub: Any) -> bool:
    """True if the caller is a coroutine (an asyncio task) on ``hub``'s asyncio loop.

    On eventlet's asyncio hub, coroutines run in the hub greenlet, beside the hub's
    own run task (``async_run``, which fires green threads' timers). For error paths.
    """
    loop = asyncio_loop_of(hub)
    if loop is None:
        return False
    task = asyncio.current_task(loop)
    return task is not None and not getattr(task.get_coro(), "__qualname__", "").endswith("async_run")


# Hubs whose whole state is BaseHub's timers and listeners (the asyncio hub's loop has more).
_IDLE_CHECKED_HUBS = frozenset({"eventlet.hubs.epolls", "eventlet.hubs.poll", "eventlet.hubs.selects"})
_IDLE_TIMERS_CHECKED = 256  # more timers than this, even cancelled ones: call the hub busy


class Pump(Protocol):
    """What :func:`hub_is_idle` expects to be a hub's one read listener (a bridge's pump)."""

    @property
    def read_fd(self) -> int: ...
    @property
    def listener(self) -> Any: ...


def hub_is_idle(hub: Any, pump: Pump) -> bool:
    """True if ``hub`` has no live timer, no listener but ``pump``'s read listener and no
    close pending (rule 4). ``hub``'s own thread.

    Cheapest and most telling test first: a busy hub (a green thread just woken, a
    sleep, a timeout) has a fresh timer, and the hub counts its cancelled ones.
    """
    timers = hub.timers
    if hub.next_timers or len(timers) > hub.timers_canceled or len(timers) > _IDLE_TIMERS_CHECKED:
        return False
    if type(hub).__module__ not in _IDLE_CHECKED_HUBS or hub.closed:
        return False
    listeners, secondaries = hub.listeners, hub.secondaries
    if listeners[hub.WRITE] or secondaries[hub.READ] or secondaries[hub.WRITE]:
        return False
    reads = listeners[hub.READ]
    if len(reads) != 1 or reads.get(pump.read_fd) is not pump.listener:
        return False
    return all(t[1].called for t in timers)  # the count is a hint: trust only the timers


def release_hub_resources(hub: Any) -> None:
    """Close what a hub holds open (its poller fd, its asyncio loop) (rule 2). Any thread,
    for a hub whose thread is done with it."""
    for name in ("poll", "epoll"):
        closer = getattr(getattr(hub, name, None), "close", None)
        if closer is not None:
            try:
                closer()
            except Exception:  # pragma: no cover
                LOG.debug("closing the hub's poller failed", exc_info=True)
    loop: Any = asyncio_loop_of(hub)  # Any: asyncio's private _thread_id below
    if loop is not None and not loop.is_closed():
        if loop.is_running() and getattr(loop, "_thread_id", None) is not None:
            loop._thread_id = None  # "running" only in a greenlet that will never resume
        try:
            loop.close()
        except Exception:
            LOG.debug("closing the hub's asyncio loop failed", exc_info=True)


class _ThreadExitGuard:
    """One per thread, in an unpatched thread-local: finalized when its thread ends."""

    __slots__ = ("callbacks", "__weakref__")

    def __init__(self) -> None:
        self.callbacks: list[tuple[Callable[..., None], tuple[Any, ...]]] = []


_thread_local: Any = _threading.local()


def on_thread_exit(fn: Callable[..., None], *args: Any) -> None:
    """Call ``fn(*args)`` once the calling native thread has ended (rule 2).

    Python clears a thread's locals as it ends; a finalizer on one of them runs what
    was registered here. For a thread that gained a hub and a bridge (kazoo's retries
    sleep with ``eventlet.sleep``) and ends without retiring them.
    """
    guard = getattr(_thread_local, "guard", None)
    if guard is None:
        guard = _thread_local.guard = _ThreadExitGuard()
        # Not at interpreter exit: later atexit hooks (eventlet.tpool's killall) still
        # use the main thread's hub, and the process is ending anyway.
        weakref.finalize(guard, _run_all, guard.callbacks).atexit = False
    guard.callbacks.append((fn, args))


def _run_all(callbacks: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
    for fn, args in callbacks:
        try:
            fn(*args)
        except Exception:  # pragma: no cover - a finalizer must not raise
            LOG.debug("thread-exit clean-up %r failed", fn, exc_info=True)


_generation = 0


def fork_generation() -> int:
    """A number that changes in a child process after ``fork()`` (rule 3). Any thread."""
    return _generation


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)
