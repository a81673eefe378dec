"""``EventletHandler``: kazoo on eventlet green threads, usable from any thread.

Rules the code below keeps:

1. The handler has a *home hub*. In ``shared`` mode it is the hub of the thread
   that called :meth:`EventletHandler.start` (kazoo-compatible: callbacks run
   in the application's hub). In ``isolated`` mode it is the hub of a native
   thread the handler owns (:mod:`._hubthread`). The two callback workers and
   everything :meth:`~EventletHandler.spawn` starts (kazoo's connection loop
   among them) run in the home hub.
2. Other threads reach the home hub only through its bridge (:mod:`._bridge`).
3. Each callback queue is an ``eventlet.queue.LightQueue`` touched only in the
   home hub, consumed in order by one worker green thread. Watch callbacks and
   completion callbacks have separate queues, so a blocked watch callback
   cannot block session re-establishment, which waits on completions (kazoo's
   reason for the split).
4. ``_state`` changes only under ``_state_lock`` (a native lock, never held
   across a wait); ``_post`` checks the state and enqueues under that lock,
   through the bridge. Only a caller in the home hub while the bridge carries
   nothing may put directly: so callbacks keep their dispatch order across
   threads, and the STOP marker, which always travels through the bridge, is
   behind every callback queued before ``stop()`` began.
5. A callback dispatched while the handler is not running runs at once in the
   dispatching thread (kazoo's rule for stopped handlers): none is ever lost.
6. ``start()`` and ``stop()`` are serialized by a cross-hub lock, except
   ``stop()`` from inside a callback, which only requests the stop (waiting
   there would wait on itself); the last worker to exit then finishes it.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import eventlet
import greenlet
from eventlet import hubs, patcher

from ._aiobridge import fail_pending_awaits
from ._bridge import Bridge, BridgeClosed, current_hub, local_bridge
from ._errors import HandlerStoppedError
from ._hubthread import HubThread
from ._kazoo_surface import KazooSurface
from ._parking import allocate_lock, check_timeout
from ._primitives import Lock
from ._task import Task
from ._worker import STOP, Worker, run_inline
from .config import UNSET, HandlerOptions, _Unset, resolve_options
from .result import AsyncResult
from .stats import QueueStats

_threading: Any = patcher.original("threading")

LOG = logging.getLogger("eventlet_handler")

TASK_GRACE_SECONDS = 5.0  # isolated mode: how long stop() lets spawned work finish

STOPPED, RUNNING, STOPPING = "stopped", "running", "stopping"
WATCH, COMPLETION = 0, 1
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
       own green thread there. The home hub is the calling thread's hub in
       ``shared`` mode and the handler's own hub thread in ``isolated`` mode.
    3. Callbacks must not block natively (they would stall the home hub);
       green blocking delays only later callbacks of the same queue.

    :param mode: ``"shared"``, ``"isolated"`` or ``"auto"`` (shared when the
        process is monkey-patched, isolated otherwise). Default: the
        ``EVENTLET_HANDLER_MODE`` environment variable, else ``"auto"``.
    :param slow_callback_threshold: seconds a callback may hold its worker
        before a warning is logged; ``None`` turns the warning off. Default:
        ``EVENTLET_HANDLER_SLOW_CALLBACK_THRESHOLD``, else 1.0.
    """

    name = "eventlet_handler"

    def __init__(
        self,
        mode: Optional[str] = None,
        *,
        slow_callback_threshold: "float | None | _Unset" = UNSET,
    ) -> None:
        self.options: HandlerOptions = resolve_options(
            mode=mode, slow_callback_threshold=slow_callback_threshold
        )
        self._id = next(_ids)
        self._state_lock = allocate_lock()
        self._lifecycle = Lock()
        self._state = STOPPED
        self._hub: Any = None
        self._bridge: Optional[Bridge] = None
        self._hubthread: Optional[HubThread] = None
        self._retired_hubthread: Optional[HubThread] = None
        self._workers: List[Worker] = []
        threshold = self.options.slow_callback_threshold
        self._queue_stats = (QueueStats("watch", threshold), QueueStats("completion", threshold))
        self._tasks_spawned = 0
        self._live_tasks: "set[Task]" = set()
        self._exiting = False

    # -- introspection -------------------------------------------------------

    @property
    def mode(self) -> str:
        """``"shared"`` or ``"isolated"``, as resolved at construction. Any thread."""
        return self.options.mode

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`. Any thread."""
        return self._state == RUNNING

    def __repr__(self) -> str:
        return (
            f"<EventletHandler #{self._id} mode={self.mode!r} "
            f"({self.options.mode_reason}) state={self._state}>"
        )

    def stats(self) -> Dict[str, Any]:
        """A snapshot of counters and gauges; any thread, cheap.

        ``queues.watch`` / ``queues.completion``: callbacks ``run``, ``failed``,
        ``slow`` (over the threshold), current ``depth``, the slowest callback
        and latency percentiles (seconds a callback held its worker, over the
        last 1024). ``bridge_calls``: calls that entered the home hub from
        other threads. ``tasks_spawned``.
        """
        workers = self._workers
        queues = {}
        for index, stats in enumerate(self._queue_stats):
            depth = workers[index].queue.qsize() if len(workers) == 2 else 0
            queues[stats.label] = stats.snapshot(depth)
        bridge = self._bridge
        return {
            "mode": self.mode,
            "state": self._state,
            "queues": queues,
            "bridge_calls": bridge.calls_run if bridge is not None else 0,
            "tasks_spawned": self._tasks_spawned,
        }

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the workers in the home hub; idempotent. Any thread (contract 1).

        In shared mode the calling thread's hub becomes the home hub, so call it
        from a green thread or the main thread (kazoo calls it from
        ``KazooClient.start()``), not from a native worker thread.
        """
        with self._lifecycle:
            if self._state == RUNNING:
                return
            if self._state == STOPPING:
                self._finish_pending_stop()
            self._join_retired_hubthread()
            hub, bridge, hubthread = self._open_home()
            stats = self._queue_stats
            workers = [Worker(stats[WATCH], self._finish_stop_if_done), Worker(stats[COMPLETION], self._finish_stop_if_done)]
            with self._state_lock:
                self._hub, self._bridge, self._hubthread = hub, bridge, hubthread
                self._workers = workers
                self._state = RUNNING
            for worker in workers:
                self._call_home(eventlet.spawn_n, worker.run)
        atexit.register(self._stop_at_exit)
        LOG.info("%r started", self)

    def _open_home(self) -> Tuple[Any, Bridge, Optional[HubThread]]:
        if self.mode == "isolated":
            here = current_hub()
            hub_module = sys.modules.get(type(here).__module__) if here is not None else None
            hubthread = HubThread(f"eventlet-handler-{self._id}", hub_module)
            hubthread.start()
            assert hubthread.bridge is not None
            return hubthread.hub, hubthread.bridge, hubthread
        if current_hub() is None and _threading.current_thread() is not _threading.main_thread():
            raise RuntimeError(
                "EventletHandler in shared mode was started from a native thread with no "
                "eventlet hub, where its green threads would never run; start it from a "
                "green thread or the main thread, or use mode='isolated'"
            )
        return hubs.get_hub(), local_bridge(), None

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop the workers after they ran every callback already queued.

        Any thread (contract 1); idempotent; concurrent calls all return once
        the handler has stopped. From inside a callback of this handler it only
        requests the stop and returns at once: the remaining callbacks run after
        the current one returns, then the workers exit. ``timeout`` bounds the
        wait for callbacks still running (``None``: no bound); on expiry a
        warning is logged and the handler is left stopping.
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
            self._join_retired_hubthread(timeout)
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
            bridge, workers = self._bridge, self._workers
            assert bridge is not None
            for worker in workers:
                bridge.call_soon_threadsafe(worker.queue.put, STOP)

    def _await_workers(self, timeout: Optional[float]) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in list(self._workers):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not worker.done.wait(remaining):
                return False
        return True

    def _finish_stop_if_done(self) -> None:
        with self._state_lock:
            if self._state != STOPPING or not all(w.done.is_set() for w in self._workers):
                return
            self._state = STOPPED
            self._workers = []
            hubthread, self._hubthread = self._hubthread, None
            if hubthread is not None:
                self._hub = self._bridge = None
                # Under the lock: a stop() that sees STOPPED must also see what to join.
                self._retired_hubthread = hubthread
        if hubthread is not None:
            hubthread.call(eventlet.spawn_n, self._retire_hubthread, hubthread)
        fail_pending_awaits(self)
        LOG.info("%r stopped", self)

    def _retire_hubthread(self, hubthread: HubThread) -> None:
        """Green thread in the isolated hub: let spawned work end, then exit the thread.

        kazoo stops the handler *before* joining its connection loop, which is
        spawned work in this hub: the hub stays up until such tasks finish, for
        at most ``TASK_GRACE_SECONDS``; a task still running then is abandoned
        (its joiners get ``HandlerStoppedError``), never left hanging.
        """
        grace = 0.0 if self._exiting else TASK_GRACE_SECONDS  # at exit nobody joins them
        deadline = time.monotonic() + grace
        for task in list(self._live_tasks):
            task.join(max(0.0, deadline - time.monotonic()))
        for task in list(self._live_tasks):
            task._abandon()
        hubthread.stop()  # from its own thread: only asks it to exit

    def _join_retired_hubthread(self, timeout: Optional[float] = None) -> None:
        hubthread, self._retired_hubthread = self._retired_hubthread, None
        if hubthread is not None:
            hubthread.join(TASK_GRACE_SECONDS + 5.0 if timeout is None else timeout)

    def _stop_at_exit(self) -> None:
        self._exiting = True
        try:
            self.stop(timeout=5.0)
        except BaseException:  # interpreter shutdown: greenlet may refuse to switch
            LOG.debug("stopping %r at interpreter exit failed", self, exc_info=True)

    def _current_worker(self) -> Optional[Worker]:
        me = greenlet.getcurrent()
        for worker in self._workers:
            if worker.greenlet is me:
                return worker
        return None

    # -- callbacks -------------------------------------------------------------

    def dispatch_callback(self, callback: Any) -> None:
        """Queue a kazoo ``Callback`` to run ``callback.func(*callback.args)``.

        Any thread. It runs on the watch worker in the home hub, after every
        callback dispatched before it (contract 2). If the handler is not
        running it runs at once in the calling thread.
        """
        try:
            func, args = callback.func, callback.args
        except AttributeError:
            raise TypeError(
                f"dispatch_callback() needs a kazoo Callback (with .func and .args), not {callback!r}"
            ) from None
        if not callable(func):
            raise TypeError(f"dispatch_callback(): callback.func is not callable: {func!r}")
        self._post(WATCH, func, args if type(args) is tuple else tuple(args))

    def _dispatch_completion(self, link: Callable[[AsyncResult], Any], result: AsyncResult) -> None:
        """Queue a result's rawlink callback on the completion worker. Any thread."""
        self._post(COMPLETION, link, (result,))

    def _post(self, which: int, func: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        bridge = self._bridge
        if (
            self._state == RUNNING and current_hub() is self._hub
            and bridge is not None and not bridge.pending
        ):
            # Home-hub fast path, no lock (rule 4): nothing can switch between this
            # check and the put; STOP only enters through the bridge; and with nothing
            # pending in the bridge, every callback bridged before this one is queued.
            self._workers[which].queue.put((func, args))
            return
        with self._state_lock:
            if self._state == RUNNING:
                # Through the bridge, behind whatever it already carries: a callback
                # dispatched earlier from another thread stays ahead of this one.
                queue = self._workers[which].queue
                assert self._bridge is not None
                self._bridge.call_soon_threadsafe(queue.put, (func, args))
                return
        run_inline(func, args)

    def _call_home(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the home hub: inline when already there, else through
        its bridge. Not started: shared mode runs it in the caller's hub.

        :raises HandlerStoppedError: isolated mode not running (or stopped meanwhile),
            or shared mode not started and called from a native thread with no hub,
            whose green threads would never run.
        """
        hub, bridge = self._hub, self._bridge  # read once: a concurrent stop clears both
        here = current_hub()
        if bridge is not None and here is not hub:
            try:
                bridge.call_soon_threadsafe(fn, *args)
            except BridgeClosed:
                raise HandlerStoppedError(f"{self!r} stopped while the call was on its way; start it again") from None
            return
        if bridge is None and self.mode == "isolated":
            raise HandlerStoppedError(f"{self!r} is not started (isolated mode has no hub yet): call start() first")
        if here is None and _threading.current_thread() is not _threading.main_thread():
            raise HandlerStoppedError(
                f"{self!r} is not started and this native thread has no eventlet hub, so a green "
                "thread started here would never run: call start() first, or call from a green thread"
            )
        fn(*args)

    def spawn(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
        """Run ``func(*args, **kwargs)`` on a new green thread of the home hub.

        Any thread. Returns a :class:`Task` (``join()``, ``is_alive()``). An
        exception in ``func`` is logged and kept on ``Task.exception``. Before
        :meth:`start`, shared mode spawns into the calling thread's hub (a native
        thread with no hub is refused) and isolated mode refuses (it has no hub yet).

        :raises HandlerStoppedError: when there is no hub for the work to run in.
        """
        if not callable(func):
            raise TypeError(f"spawn() needs a callable, not {func!r}")
        task = Task(func, self._live_tasks)
        try:
            self._call_home(eventlet.spawn_n, task._run, func, args, kwargs)
        except BaseException:
            self._live_tasks.discard(task)
            raise
        self._tasks_spawned += 1
        return task


SequentialEventletHandler = EventletHandler
