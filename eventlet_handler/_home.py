"""A handler's *home*: the hub its green threads live in, opened and retired as a unit.

A :class:`Home` owns the hub, that hub's bridge, the hub thread (isolated mode
only), the two callback workers (by name) and the live spawned tasks. Shared and
isolated mode differ only in where the hub comes from; everything after that is
the same code.

Rules:

1. A home is *attached* while its handler runs (``attach``/``detach``); spawned
   tasks keep it open after ``detach``: kazoo's spawned work (TreeCache's
   background loop, the connection loop until kazoo joins it) outlives
   ``handler.stop()``, as it does on kazoo's own handlers. A restart reattaches
   the same home while it is open, so that work and the new workers share a hub.
2. A home retires once detached with no live task, exactly once, decided under
   ``_lock`` (a native lock, never held across a wait), so a ``spawn()`` either
   lands in an open home (and keeps it open) or is refused. Retiring asks the hub
   thread to exit; in shared mode the hub is the application's and stays.
3. Other threads reach the home hub only through its bridge; ``call`` counts
   what it sends that way (``calls_bridged``).
4. At interpreter exit (:meth:`abandon`) tasks still running are released, not
   waited for: their joiners get :class:`HandlerStoppedError`, and one debug
   line per process says so. Exiting with live clients is normal.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Set

import eventlet
from eventlet import hubs

from ._bridge import Bridge, BridgeClosed, bridge_of
from ._errors import HandlerStoppedError, NoHubError
from ._hubs import current_hub, hub_module_of, thread_has_no_hub
from ._hubthread import HubThread
from ._parking import allocate_lock
from ._task import Task
from ._worker import STOP, Worker

LOG = logging.getLogger("eventlet_handler")

WORKER_NAMES = ("watch", "completion")
JOIN_SECONDS = 10.0  # how long a retiring hub thread may take to exit when no bound is given

_exit_noted = False


class LiveTasks(Set[Task]):  # Task adds and discards itself
    """The home's running tasks; the last one to end lets a detached home retire."""

    def __init__(self, on_empty: Callable[[], None]) -> None:
        super().__init__()
        self._on_empty = on_empty

    def discard(self, task: object) -> None:
        super().discard(task)
        if not self:
            self._on_empty()


class Home:
    """Where one handler's green threads live (see the module rules).

    ``open`` in the thread that starts the handler; everything else from any thread.
    """

    def __init__(self, mode: str, reason: str, hub: Any, bridge: Bridge, hubthread: HubThread | None) -> None:
        self.mode = mode
        self.reason = reason
        self.hub = hub
        self.bridge = bridge
        self.hubthread = hubthread
        self.workers: dict[str, Worker] = {}
        self.tasks = LiveTasks(self._retire_if_idle)
        self.calls_bridged = 0
        self._lock = allocate_lock()
        self._attached = False
        self.retired = False

    @classmethod
    def open(cls, mode: str, name: str, reason: str) -> "Home":
        """A new home for ``mode``. Call from the thread starting the handler.

        :raises NoHubError: shared mode in a native thread with no hub.
        """
        if mode == "isolated":
            hubthread = HubThread(name, hub_module_of(current_hub()))  # the starter's kind of hub
            hubthread.start()
            assert hubthread.bridge is not None
            return cls(mode, reason, hubthread.hub, hubthread.bridge, hubthread)
        if thread_has_no_hub():
            raise NoHubError(
                "EventletHandler in shared mode was started from a native thread with no "
                "eventlet hub, where its green threads would never run; start it from a "
                "green thread or the main thread, or use mode='isolated' (or 'auto')"
            )
        hub = hubs.get_hub()
        bridge = bridge_of(hub, create=True)
        assert bridge is not None
        return cls(mode, reason, hub, bridge, None)

    def __repr__(self) -> str:
        where = self.hubthread.name if self.hubthread is not None else "the starting thread's hub"
        state = "retired" if self.retired else "attached" if self._attached else "detached"
        return f"<Home {self.mode} in {where}, {state}, {len(self.tasks)} tasks>"

    # -- attach / detach (rule 1) --------------------------------------------------

    def attach(self, on_worker_exit: Callable[[], None], stats: dict[str, Any]) -> bool:
        """Start fresh workers here; False if the home retired meanwhile (open a new one)."""
        with self._lock:
            if self.retired:
                return False
            self._attached = True
        workers = {name: Worker(stats[name], on_worker_exit) for name in WORKER_NAMES}
        self.workers = workers
        for worker in workers.values():
            self.call(eventlet.spawn_n, worker.run)
        return True

    def request_stop(self) -> None:
        """Queue ``STOP`` behind every callback already queued (always through the bridge)."""
        for worker in self.workers.values():
            if not self.post(worker.queue.put, STOP):  # the hub itself is gone: so is the worker
                worker.done.set()

    def workers_done(self) -> bool:
        return all(worker.done.is_set() for worker in self.workers.values())

    def detach(self) -> None:
        """The handler stopped (called under its state lock): the workers are gone;
        retire unless tasks still run. Never waits."""
        with self._lock:
            self._attached = False
        # The exited workers stay listed until the next attach replaces them: a caller
        # that saw "running" just before the stop may still look its worker up.
        self._retire_if_idle()

    # -- calls into the home hub (rule 3) --------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the home hub: inline when already there, else through
        its bridge. Any thread.

        :raises HandlerStoppedError: the home hub is gone.
        """
        if current_hub() is self.hub:
            fn(*args)
        elif not self.post(fn, *args):
            raise HandlerStoppedError(
                "the handler's hub shut down while the call was on its way; start the handler again"
            )

    def post(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue ``fn(*args)`` through the bridge, behind everything it carries, even
        from the home hub itself; False if the home hub is gone. Any thread."""
        try:
            self.bridge.call_soon_threadsafe(fn, *args)
        except BridgeClosed:
            return False
        if current_hub() is not self.hub:
            self.calls_bridged += 1
        return True

    def spawn(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Task:
        """A :class:`Task` running ``func`` on a new green thread here. Any thread.

        :raises HandlerStoppedError: this home retired (rule 2).
        """
        with self._lock:
            if self.retired:
                raise HandlerStoppedError("the handler is stopped and its hub retired; start it again")
            task = Task(func, self.tasks)  # in the set before the lock drops: no retiring now
        try:
            self.call(eventlet.spawn_n, task._run, func, args, kwargs)
        except BaseException:
            self.tasks.discard(task)
            raise
        return task

    # -- retiring (rules 2 and 4) -----------------------------------------------------

    def _retire_if_idle(self) -> None:
        with self._lock:
            if self.retired or self._attached or self.tasks:
                return
            self.retired = True
        if self.hubthread is not None:
            self.hubthread.stop()  # from any thread, its own included: only asks it to exit

    def join(self, timeout: float | None = None) -> bool:
        """Wait (bounded) until a retired home's hub thread has exited; True once it has."""
        if self.hubthread is None:
            return True
        return self.hubthread.join(JOIN_SECONDS if timeout is None else timeout)

    def abandon(self) -> None:
        """Interpreter exit: release the joiners of tasks still running, then retire."""
        global _exit_noted
        running: Iterable[Task] = list(self.tasks)
        with self._lock:
            self._attached = False
        if running and not _exit_noted:
            _exit_noted = True
            LOG.debug("interpreter exit: releasing spawned work still running (%s, ...)",
                      ", ".join(task.name for task in list(running)[:3]))
        for task in running:
            task._abandon()
        self._retire_if_idle()
