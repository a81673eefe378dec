"""A kazoo handler whose callbacks run only when the test says so.

Theory of operation
-------------------
A test builds ``KazooClient(hosts, handler=DeterministicHandler())`` and talks to a real
ZooKeeper. The client's connection loop runs for real on a green thread of the test's
hub, so requests, replies and sessions behave exactly as in production. What the
application would see as concurrency (watch callbacks, completion callbacks and spawned
work) is instead appended to one FIFO of :class:`Step` objects and runs, inline in the
test's green thread, only when the test calls :meth:`DeterministicHandler.run_one`,
:meth:`~DeterministicHandler.run_pending` or :meth:`~DeterministicHandler.drain`.

Rules
-----
1. Watch callbacks (``dispatch_callback``), *every* one, kazoo recipes' own watchers
   included (``DataWatch._watcher``, ``ChildrenWatch._watcher``,
   ``Lock._watch_predecessor``), are queued as steps.
2. Completion callbacks (``rawlink``) of the application are queued as steps.
   Completion callbacks defined in kazoo's own modules (``kazoo.*``: the chains behind
   ``ensure_path``, ``create(makepath=True)``, ``sync``, TreeCache's result hand-off) are
   plumbing: they run at once, where the result is set, as kazoo runs them when its
   handler is stopped. They only chain further asynchronous calls and never block, and
   without them ``client.ensure_path()`` (and so ``Lock.acquire()``) could never return
   until the test ran steps it does not know about.
3. Spawned work is queued as a step, except kazoo's long-lived loops, which must run for
   real: the connection loop (``ConnectionHandler.zk_loop``) and TreeCache's background
   loop (``TreeCache._do_background``). ``deterministic_spawn=False`` runs all spawned
   work for real, on green threads.
4. The handler itself never switches hubs or green threads: steps run in the caller of
   ``run_*``; the test's green thread only yields to the hub when it (or a step it runs)
   blocks, e.g. waiting on a kazoo result. Steps queued while a step runs wait for the
   next ``run_*`` call, so the order the test sees is the order things were queued.
5. Results are the real handler's :class:`eventlet_handler.result.AsyncResult`; events,
   locks, queues, sockets and the wake pair are the real handler's primitives, so they
   may be set and waited on from any green or native thread.
6. An exception raised by a step is recorded in :attr:`~DeterministicHandler.errors` and
   re-raised from ``run_*`` (pass ``raise_errors=False`` to only record it, as the real
   handler logs and carries on).

The ``run_*`` methods, :meth:`~DeterministicHandler.drain` and
:meth:`~DeterministicHandler.wait_for_pending` are meant for the test's own green
thread; everything else may be called from any thread. Work that runs for real
(rule 3) starts on a green thread of the *spawning* thread's hub: kazoo spawns its
connection loop from ``KazooClient.start()``, that is from the test's thread.
"""

from __future__ import annotations

import collections
import logging
import reprlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import eventlet

from eventlet_handler import _primitives
from eventlet_handler._kazoo_surface import KazooSurface
from eventlet_handler._parking import check_timeout
from eventlet_handler._protocol import unpack_callback
from eventlet_handler._task import Task
from eventlet_handler.stats import describe, unwrap
from eventlet_handler.result import AsyncResult

__all__ = ["KAZOO_BACKGROUND_LOOPS", "DeterministicHandler", "Step"]

LOG = logging.getLogger(__name__)

#: Spawned functions that run for real even with ``deterministic_spawn=True`` (rule 3):
#: long-lived loops that would never return if run as a step.
KAZOO_BACKGROUND_LOOPS: Final = frozenset(
    {
        "kazoo.protocol.connection.ConnectionHandler.zk_loop",
        "kazoo.recipe.cache.TreeCache._do_background",
    }
)

_DEFAULT_STEP_TIMEOUT: Final = 30.0
_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 80


def _add_note(exc: BaseException, note: str) -> None:
    add_note = getattr(exc, "add_note", None)  # Python >= 3.11
    if add_note is not None:
        add_note(note)


def _is_kazoo_plumbing(func: Callable[..., Any]) -> bool:
    """Rule 2: a completion callback defined in kazoo itself."""
    return describe(func).startswith("kazoo.")


def _is_background_loop(func: Callable[..., Any]) -> bool:
    """Rule 3: one of :data:`KAZOO_BACKGROUND_LOOPS`."""
    return describe(func) in KAZOO_BACKGROUND_LOOPS


@dataclass(eq=False)
class Step:
    """One queued piece of work: a watch callback, a completion callback or spawned work.

    ``kind`` is ``"watch"`` (or another kazoo ``Callback.type``), ``"completion"`` or
    ``"spawn"``; ``name`` is the callable's ``Class.method`` (``functools.partial``
    unwrapped); ``str(step)`` is a one-line description for failure messages.
    """

    kind: str
    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    done: _primitives.Event = field(default_factory=_primitives.Event, repr=False)
    value: Any = field(default=None, repr=False)
    exception: BaseException | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        inner = unwrap(self.func)
        return getattr(inner, "__qualname__", None) or repr(inner)

    @property
    def qualified_name(self) -> str:
        return describe(self.func)

    def __str__(self) -> str:
        args = ", ".join(_repr.repr(arg) for arg in self.args)
        return f"{self.kind}: {self.name}({args})"

    def run(self) -> None:
        """Call the work in the calling green thread; record its value or exception."""
        try:
            self.value = self.func(*self.args, **self.kwargs)
        except BaseException as exc:
            self.exception = exc
            raise
        finally:
            self.done.set()


class QueuedWork:
    """What :meth:`DeterministicHandler.spawn` returns for queued work: a thread-like handle.

    ``is_alive()`` is true until the step has run; ``join(timeout)`` waits for that (it
    can only return if something else runs the step: calling it from the test's own
    green thread before ``run_*`` waits out the timeout). Any thread.
    """

    def __init__(self, step: Step) -> None:
        self.step = step

    def __repr__(self) -> str:
        state = "done" if self.step.done.is_set() else "queued"
        return f"<QueuedWork {state} {self.step}>"

    def is_alive(self) -> bool:
        return not self.step.done.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the step has run, up to ``timeout``; True if it has (as ``Task.join``)."""
        return self.step.done.wait(timeout)


class DeterministicHandler(KazooSurface):
    """A kazoo handler for tests: callbacks wait in a queue until the test runs them.

    See the module docstring for the rules on what is queued and what runs for real.

    :param deterministic_spawn: queue spawned work as steps (default); ``False`` runs it
        for real on green threads.
    :param raise_errors: re-raise a step's exception from ``run_*`` (default), else only
        record it in :attr:`errors`.
    :param step_timeout: seconds a single ``run_one`` may take when no timeout is given;
        past it ``run_one`` raises :attr:`timeout_exception` (a step blocked on something
        only a later step would give it).
    """

    name = "deterministic_eventlet_handler"

    def __init__(
        self,
        *,
        deterministic_spawn: bool = True,
        raise_errors: bool = True,
        step_timeout: float = _DEFAULT_STEP_TIMEOUT,
    ) -> None:
        super().__init__()
        self.deterministic_spawn = deterministic_spawn
        self.raise_errors = raise_errors
        self.step_timeout = step_timeout
        #: Steps that ran, in the order they started.
        self.ran: list[Step] = []
        #: ``(step, exception)`` for every step that raised.
        self.errors: list[tuple[Step, BaseException]] = []
        #: Work spawned for real (rule 3), in spawn order.
        self.live_threads: list[Task] = []
        self._live_tasks: set[Task] = set()
        self._queue: collections.deque[Step] = collections.deque()
        self._enqueued = _primitives.Event()
        self._running = False
        self._current: Step | None = None

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<DeterministicHandler {state} pending={len(self._queue)} ran={len(self.ran)}>"

    # -- lifecycle (kazoo) ------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`. Any thread."""
        return self._running

    def start(self) -> None:
        """Mark the handler running; starts no thread. Any thread."""
        self._running = True

    def stop(self, timeout: float | None = None) -> None:
        """Mark the handler stopped. Pending steps stay queued and may still be run.

        Live work is not killed: kazoo stops its connection loop itself right after
        calling this. Any thread. Never waits, so ``timeout`` (accepted as
        ``EventletHandler.stop`` takes it) is only checked.
        """
        check_timeout(timeout, "stop() timeout")
        self._running = False

    # -- the parts kazoo uses (the rest is KazooSurface's, shared with EventletHandler) --

    def spawn(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> QueuedWork | Task:
        """Queue ``func`` as a step, or run it for real when rule 3 says so. Any thread;
        work run for real goes on a green thread of the calling thread's hub."""
        if not self.deterministic_spawn or _is_background_loop(func):
            task = Task(func, self._live_tasks)
            eventlet.spawn_n(task._run, func, args, kwargs)  # in the caller's hub
            self.live_threads.append(task)
            return task
        return QueuedWork(self._enqueue(Step("spawn", func, args, kwargs)))

    def dispatch_callback(self, callback: Any) -> None:
        """Queue a kazoo ``Callback(type, func, args)`` as a step (rule 1). Any thread.

        :raises TypeError: ``callback`` is not a kazoo ``Callback`` (as on ``EventletHandler``).
        """
        func, args = unpack_callback(callback)
        self._enqueue(Step(getattr(callback, "type", "watch"), func, args))

    def _dispatch_completion(self, callback: Callable[[AsyncResult], Any], result: AsyncResult) -> None:
        """The results' hook: queue ``callback(result)``, or run kazoo's plumbing now (rule 2)."""
        if _is_kazoo_plumbing(callback):
            callback(result)
            return
        self._enqueue(Step("completion", callback, (result,)))

    def _enqueue(self, step: Step) -> Step:
        self._queue.append(step)
        self._enqueued.set()
        return step

    # -- what the test drives ---------------------------------------------------------

    @property
    def pending(self) -> tuple[Step, ...]:
        """The queued steps, oldest first (a snapshot). Any thread."""
        return tuple(self._queue)

    def run_one(self, timeout: float | None = None) -> Step | None:
        """Run the oldest pending step in this green thread; return it, or None if none.

        Waits for nothing but the step itself, bounded by ``timeout`` (default
        ``step_timeout``) when it blocks green; past it raises :attr:`timeout_exception`.
        A step's exception is recorded and re-raised (rule 6). Not from inside a step.
        """
        if self._current is not None:
            raise RuntimeError(
                f"run_one() called from inside the running step {self._current}; "
                "steps run one at a time, call run_* from the test only"
            )
        try:
            step = self._queue.popleft()
        except IndexError:
            return None
        self._run_bounded(step, self.step_timeout if timeout is None else timeout)
        return step

    def run_pending(self, timeout: float | None = None) -> int:
        """Run the steps pending now, in order, in the calling (test's) green thread;
        return how many ran.

        Steps they queue wait for the next call. ``timeout`` bounds each step.
        """
        count = 0
        for _ in range(len(self._queue)):
            if self.run_one(timeout) is None:
                break
            count += 1
        return count

    def drain(self, timeout: float | None = None) -> int:
        """Run steps until none is pending (new ones included), in the calling (test's)
        green thread; return how many ran.

        Raises :attr:`timeout_exception` if steps keep coming or one blocks past
        ``timeout`` seconds in all (default ``step_timeout``).
        """
        budget = self.step_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        count = 0
        while self._queue:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.timeout_exception(
                    f"drain() still had {len(self._queue)} pending steps after {budget} s "
                    f"and {count} run; next: {self._queue[0]}"
                )
            self.run_one(remaining)
            count += 1
        return count

    def wait_for_pending(self, count: int = 1, timeout: float | None = None) -> int:
        """Let the calling thread's hub run (e.g. the connection loop) until ``count``
        steps are pending. From the test's green thread.

        Returns how many are pending. Raises :attr:`timeout_exception` after ``timeout``
        seconds (default ``step_timeout``). Use it between an action and the
        ``run_*`` that should see its callbacks, e.g. a change made by another client.
        """
        budget = self.step_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        while True:
            self._enqueued.clear()
            if len(self._queue) >= count:
                return len(self._queue)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._enqueued.wait(remaining):
                if len(self._queue) >= count:
                    return len(self._queue)
                raise self.timeout_exception(
                    f"waited {budget} s for {count} pending steps, {len(self._queue)} "
                    f"arrived: {[str(step) for step in self._queue]}"
                )

    def _run_bounded(self, step: Step, timeout: float) -> None:
        self.ran.append(step)
        self._current = step
        timer = eventlet.Timeout(timeout)
        try:
            step.run()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            error = self.timeout_exception(
                f"step {step} still blocked after {timeout:.3g} s; it may wait for something "
                "only a later step gives it (run that from another green thread), "
                f"pending: {[str(s) for s in self._queue]}"
            )
            self.errors.append((step, error))
            raise error from None
        except Exception as exc:
            self.errors.append((step, exc))
            if self.raise_errors:
                _add_note(exc, f"raised by {step} (DeterministicHandler step)")
                raise
            LOG.warning("step %s raised", step, exc_info=True)
        finally:
            timer.cancel()
            self._current = None
