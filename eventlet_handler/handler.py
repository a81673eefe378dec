"""``EventletHandler``: kazoo on eventlet green threads, usable from any thread.

The handler is configuration, an optional *home* (:mod:`._home`: the hub, its
bridge, the hub thread of isolated mode, the workers and the spawned tasks) and
dispatch. Rules the code below keeps:

1. In ``shared`` mode the home hub is the hub of the thread that called
   :meth:`EventletHandler.start` (kazoo-compatible: callbacks run in the
   application's hub); in ``isolated`` mode it is the hub of a native thread the
   home owns. ``auto`` chooses per start, by the starting thread
   (:func:`.config.resolve_start_mode`).
2. Each callback queue is touched only in the home hub and consumed in order by
   one worker. Watch and completion callbacks have separate queues, so a blocked
   watch callback cannot block session re-establishment, which waits on
   completions (kazoo's reason for the split).
3. ``_state`` changes only under ``_state_lock`` (a native lock, never held across
   a wait); ``_post`` checks the state and enqueues under that lock, through the
   bridge. Only a caller in the home hub while the bridge carries nothing may put
   directly: so callbacks keep their dispatch order across threads, and the STOP
   marker, which always travels through the bridge, is behind every callback
   queued before ``stop()`` began.
4. A callback dispatched while the handler is not running runs at once in the
   dispatching thread (kazoo's rule for stopped handlers): none is ever lost. One
   dispatched from the home hub of a stopped handler whose home is still open
   (kazoo's connection loop, dropping the connection after ``stop()``) runs on a
   task of its own there instead: inline, a callback that waits on the client
   (DataWatch's ``get()``) would wait on the very loop that dispatched it.
5. ``start()`` and ``stop()`` are serialized by a cross-hub lock, except ``stop()``
   from inside a callback, which only requests the stop (waiting there would wait
   on itself); the last worker to exit then finishes it.
6. Spawned work outlives ``stop()`` (as on kazoo's own handlers): the home stays
   open until its last task ends, and a restart meanwhile reuses it.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import time
from typing import Any, Callable

import eventlet
import greenlet

from ._aiobridge import fail_pending_awaits
from ._errors import HandlerStoppedError, NoHubError
from ._home import WORKER_NAMES, Home
from ._hubs import current_hub, thread_has_no_hub
from ._kazoo_surface import KazooSurface
from ._parking import allocate_lock, check_timeout
from ._primitives import Lock
from ._protocol import unpack_callback
from ._task import Task
from ._worker import Worker, run_inline
from .config import UNSET, HandlerOptions, Unset, resolve_options, resolve_start_mode
from .result import AsyncResult
from .stats import QueueStats

LOG = logging.getLogger("eventlet_handler")

STOPPED, RUNNING, STOPPING = "stopped", "running", "stopping"
WATCH, COMPLETION = WORKER_NAMES
_ids = itertools.count(1)


class EventletHandler(KazooSurface):
    """A kazoo handler running on eventlet green threads, callable from any thread.

    ``KazooClient(hosts, handler=EventletHandler())``.

    Thread contract (every public method says which part applies):

    1. Any thread: every method may be called from any green thread of any hub
       and from any native thread. Blocking calls park green in a thread that
       has a hub and natively in one that has none.
    2. Where callbacks run: watch callbacks (``dispatch_callback``) and
       completion callbacks (``AsyncResult.rawlink``) run on two worker green
       threads of the *home hub*, each queue in order; spawned work runs on its
       own green thread there. The home hub is the starting thread's hub in
       ``shared`` mode and the handler's own hub thread in ``isolated`` mode.
    3. Callbacks must not block natively (they would stall the home hub);
       green blocking delays only later callbacks of the same queue.

    :param mode: ``"shared"``, ``"isolated"`` or ``"auto"`` (chosen at each
        ``start()``: shared when the process is monkey-patched and the starting
        thread can run green threads, isolated otherwise). Default: the
        ``EVENTLET_HANDLER_MODE`` environment variable, else ``"auto"``.
    :param slow_callback_threshold: seconds a callback may hold its worker
        before a warning is logged; ``None`` turns the warning off. Default:
        ``EVENTLET_HANDLER_SLOW_CALLBACK_THRESHOLD``, else 1.0.
    """

    name = "eventlet_handler"

    def __init__(
        self,
        mode: str | None = None,
        *,
        slow_callback_threshold: float | None | Unset = UNSET,
    ) -> None:
        super().__init__()
        self.options: HandlerOptions = resolve_options(
            mode=mode, slow_callback_threshold=slow_callback_threshold
        )
        self._id = next(_ids)
        self._state_lock = allocate_lock()
        self._lifecycle = Lock()
        self._state = STOPPED
        self._home: Home | None = None
        self._mode, self._mode_reason = self.options.mode, self.options.mode_reason
        threshold = self.options.slow_callback_threshold
        self._queue_stats = {name: QueueStats(name, threshold) for name in WORKER_NAMES}
        self._tasks_spawned = 0
        self._exiting = False

    # -- introspection -------------------------------------------------------

    @property
    def mode(self) -> str:
        """``"shared"`` or ``"isolated"``: of the current (or last) start; before the
        first start, what a start from the main thread would choose. Any thread."""
        return self._mode

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`. Any thread."""
        return self._state == RUNNING

    def __repr__(self) -> str:
        return f"<EventletHandler #{self._id} mode={self.mode!r} ({self._mode_reason}) state={self._state}>"

    def stats(self) -> dict[str, Any]:
        """A snapshot of counters and gauges; any thread, cheap.

        ``mode`` and ``mode_reason``: of the current (or last) start.
        ``queues.watch`` / ``queues.completion``: callbacks ``run``, ``failed``,
        ``slow`` (over the threshold), current ``depth``, the slowest callback
        and latency percentiles (seconds a callback held its worker, over the
        last 1024). ``bridge_calls``: calls this handler sent into its current
        home hub from other threads. ``tasks_spawned``; ``tasks_running``: spawned
        tasks of the current home still running (they outlive ``stop()``).
        """
        home = self._home
        workers = home.workers if home is not None else {}
        queues = {}
        for name, stats in self._queue_stats.items():
            worker = workers.get(name)
            queues[name] = stats.snapshot(worker.queue.qsize() if worker is not None else 0)
        return {
            "mode": self.mode,
            "mode_reason": self._mode_reason,
            "state": self._state,
            "queues": queues,
            "bridge_calls": home.calls_bridged if home is not None else 0,
            "tasks_spawned": self._tasks_spawned,
            "tasks_running": len(home.tasks) if home is not None else 0,
        }

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the workers in the home hub; idempotent. Any thread (contract 1).

        ``auto`` mode is chosen here, by the calling thread (rule 1). In shared mode
        the calling thread's hub becomes the home hub, so call it from a green thread
        or the main thread (kazoo calls it from ``KazooClient.start()``). A home still
        open for spawned work of an earlier start is reused (rule 6).

        :raises NoHubError: shared mode from a native thread with no eventlet hub.
        :raises HandlerStoppedError: from a callback of this handler while it stops.
        """
        with self._lifecycle:
            if self._state == RUNNING:
                return
            if self._state == STOPPING:
                self._finish_pending_stop()
            home = self._attach_home()
            with self._state_lock:
                self._home, self._state = home, RUNNING
        atexit.unregister(self._stop_at_exit)  # once, however often it restarts
        atexit.register(self._stop_at_exit)
        LOG.info("%r started", self)

    def _attach_home(self) -> Home:
        home = self._home
        if home is not None and home.attach(self._finish_stop_if_done, self._queue_stats):
            self._mode_reason = f"{home.reason}; restarted in the home where spawned work still runs"
            return home
        if home is not None:
            home.join()
        self._mode, self._mode_reason = resolve_start_mode(
            self.options, native_thread_without_hub=thread_has_no_hub()
        )
        home = Home.open(self._mode, f"eventlet-handler-{self._id}", self._mode_reason)
        attached = home.attach(self._finish_stop_if_done, self._queue_stats)
        assert attached, "a new home cannot have retired"
        return home

    def stop(self, timeout: float | None = None) -> None:
        """Stop the workers after they ran every callback already queued.

        Any thread (contract 1); idempotent; concurrent calls all return once
        the handler has stopped. From inside a callback of this handler it only
        requests the stop and returns at once: the remaining callbacks run after
        the current one returns, then the workers exit. ``timeout`` bounds the
        wait for callbacks still running (``None``: no bound); on expiry a
        warning is logged and the handler is left stopping. Spawned work goes
        on running (rule 6); once none is left, isolated mode's hub thread exits
        (a later ``stop()`` waits for that).
        """
        check_timeout(timeout, "stop() timeout")
        if self._current_worker() is not None:
            self._request_stop()
            return
        with self._lifecycle:
            self._request_stop()
            if not self._await_workers(timeout):
                LOG.warning("%r: callbacks still running after %s s; stop() gives up waiting", self, timeout)
                return
            self._finish_stop_if_done()
            home = self._home
            if home is not None and home.retired and home.join(timeout):
                self._home = None
        if self._home is None:
            atexit.unregister(self._stop_at_exit)

    def _finish_pending_stop(self) -> None:
        # A stop requested from a callback is still draining: let it finish first.
        if self._current_worker() is not None:
            raise HandlerStoppedError(
                "start() from a callback of this handler while it is stopping: the "
                "callback's own worker must exit first; restart from another green thread"
            )
        self._await_workers(None)
        self._finish_stop_if_done()

    def _request_stop(self) -> None:
        with self._state_lock:
            if self._state != RUNNING:
                return
            self._state = STOPPING
            home = self._home
            assert home is not None
            home.request_stop()

    def _await_workers(self, timeout: float | None) -> bool:
        home = self._home
        workers = list(home.workers.values()) if home is not None else []
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in workers:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not worker.done.wait(remaining):
                return False
        return True

    def _finish_stop_if_done(self) -> None:
        with self._state_lock:
            home = self._home
            if self._state != STOPPING or home is None or not home.workers_done():
                return
            self._state = STOPPED
            # With the state: a start() racing a stop a callback requested must find
            # the home either still attached to this run or already detached, never between.
            home.detach()
        fail_pending_awaits(self)
        if not self._exiting:  # at exit, Home.abandon's one debug line says it all
            LOG.info("%r stopped", self)

    def _stop_at_exit(self) -> None:
        self._exiting = True
        try:
            self.stop(timeout=5.0)
            home = self._home
            if home is not None:
                home.abandon()
                home.join(5.0)
        except BaseException:  # interpreter shutdown: greenlet may refuse to switch
            LOG.debug("stopping %r at interpreter exit failed", self, exc_info=True)

    def _current_worker(self) -> Worker | None:
        home = self._home
        if home is None:
            return None
        me = greenlet.getcurrent()
        for worker in home.workers.values():
            if worker.greenlet is me:
                return worker
        return None

    # -- callbacks -------------------------------------------------------------

    def dispatch_callback(self, callback: Any) -> None:
        """Queue a kazoo ``Callback`` to run ``callback.func(*callback.args)``.

        Any thread. It runs on the watch worker in the home hub, after every
        callback dispatched before it (contract 2). If the handler is not
        running it runs at once in the calling thread.

        :raises TypeError: ``callback`` is not a kazoo ``Callback``.
        """
        func, args = unpack_callback(callback)
        self._post(WATCH, func, args)

    def _dispatch_completion(self, link: Callable[[AsyncResult], Any], result: AsyncResult) -> None:
        """Queue a result's rawlink callback on the completion worker. Any thread."""
        self._post(COMPLETION, link, (result,))

    def _post(self, which: str, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        home = self._home
        if (
            self._state == RUNNING and home is not None and current_hub() is home.hub
            and not home.bridge.pending
        ):
            # Home-hub fast path, no lock (rule 3): nothing can switch between this
            # check and the put; STOP only enters through the bridge; and with nothing
            # pending in the bridge, every callback bridged before this one is queued.
            home.workers[which].queue.put((func, args))
            return
        with self._state_lock:
            home = self._home
            if self._state == RUNNING and home is not None:
                # Through the bridge, behind whatever it already carries: a callback
                # dispatched earlier from another thread stays ahead of this one.
                if home.post(home.workers[which].queue.put, (func, args)):
                    return  # else the home hub itself is gone: run it here
        if home is not None and current_hub() is home.hub:  # rule 4: not in the loop itself
            try:
                home.spawn(run_inline, (func, args), {})
                return
            except HandlerStoppedError:  # the home retired meanwhile
                pass
        run_inline(func, args)

    def spawn(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
        """Run ``func(*args, **kwargs)`` on a new green thread of the home hub.

        Any thread. Returns a :class:`Task` (``join(timeout) -> bool``,
        ``is_alive()``). An exception in ``func`` is logged and kept on
        ``Task.exception``. The task outlives ``stop()`` (rule 6). With no home
        (before :meth:`start`, or stopped with nothing left running), shared mode
        spawns into the calling thread's hub and isolated mode refuses.

        :raises HandlerStoppedError: isolated mode with no home, or the home hub is gone.
        :raises NoHubError: shared mode with no home, from a native thread with no hub.
        """
        if not callable(func):
            raise TypeError(f"spawn() needs a callable, not {func!r}")
        home = self._home
        if home is None or home.retired:
            task = self._spawn_homeless(func, args, kwargs)
        else:
            try:
                task = home.spawn(func, args, kwargs)
            except HandlerStoppedError:
                if not home.retired:
                    raise  # its hub is gone under it
                task = self._spawn_homeless(func, args, kwargs)  # retired meanwhile
        self._tasks_spawned += 1
        return task

    def _spawn_homeless(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Task:
        if self.mode == "isolated":
            raise HandlerStoppedError(
                f"{self!r} has no hub thread (not started, or stopped with no work left): call start() first"
            )
        if thread_has_no_hub():
            raise NoHubError(
                f"{self!r} is not started and this native thread has no eventlet hub, so a green "
                "thread started here would never run: call start() first, or call from a green thread"
            )
        task = Task(func, set())
        eventlet.spawn_n(task._run, func, args, kwargs)  # the caller's hub: shared mode's home-to-be
        return task


SequentialEventletHandler = EventletHandler
