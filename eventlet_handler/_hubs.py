"""eventlet hubs as this package sees them: finding, retiring, surviving ``fork()``.

The one module that touches eventlet's and asyncio's private state
(``eventlet.hubs._threadlocal``, an asyncio loop's ``_thread_id``). Everything
else asks here.

Rules:

1. :func:`current_hub` never *creates* a hub: a native thread that has nothing
   to do with eventlet stays that way.
2. A hub is retired (:func:`release_hub_resources`) only by its own thread, as
   it is done with it, or after that thread ended (:func:`on_thread_exit`);
   retiring closes its poller fd or asyncio loop, so no fd outlives the hub.
3. After ``fork()`` the child must not use anything tied to the parent's pipes:
   :func:`fork_generation` changes in the child, and whoever keeps such state
   (the bridges) compares generations.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from typing import Any, Callable

import greenlet
from eventlet import hubs, patcher

_threading: Any = patcher.original("threading")

LOG = logging.getLogger(__name__)


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
    loop = getattr(hub, "loop", None)
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
