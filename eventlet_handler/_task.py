"""What ``EventletHandler.spawn`` returns: a green thread of the home hub, joinable anywhere."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Generator, Optional, Tuple

from ._aiobridge import loop_future
from ._errors import HandlerStoppedError
from ._primitives import Event
from .stats import describe

LOG = logging.getLogger("eventlet_handler")


class Task:
    """What :meth:`EventletHandler.spawn` returns: a green thread in the home hub.

    ``join()`` and ``is_alive()`` may be called from any green or native thread.
    """

    __slots__ = ("_func", "value", "exception", "_done", "_live", "__weakref__")

    def __init__(self, func: Callable[..., Any], live: "set[Task]") -> None:
        self._func = func
        self.value: Any = None
        self.exception: Optional[BaseException] = None
        self._done = Event()
        self._live = live
        live.add(self)

    @property
    def name(self) -> str:
        """The spawned function's name (computed when asked: spawn stays cheap)."""
        return describe(self._func)

    def __repr__(self) -> str:
        return f"<Task {self.name} {'alive' if self.is_alive() else 'done'}>"

    def _run(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        try:
            self.value = func(*args, **kwargs)
        except Exception as exc:
            self.exception = exc
            LOG.exception("spawned %s raised", self.name)
        finally:
            self._finish()

    def _finish(self) -> None:
        self._live.discard(self)
        self._done.set()

    def _abandon(self) -> None:
        """Its hub is going away with it still running (interpreter exit): release
        every joiner. Quiet: the caller logs, once."""
        if not self._done.is_set():
            self.exception = HandlerStoppedError(
                f"{self.name} was still running when its hub shut down at interpreter exit"
            )
            self._finish()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait until the task has finished, up to ``timeout``; True if it has.

        Any green thread (waits green) or native thread (waits natively).
        """
        return self._done.wait(timeout)

    def is_alive(self) -> bool:
        """True until the task's function has returned or raised. Any thread."""
        return not self._done.is_set()

    def __await__(self) -> Generator[Any, None, Any]:
        """``value = await handler.spawn(fn, ...)``: what ``fn`` returned, or raises what it raised.

        From a coroutine on eventlet's asyncio hub or on a plain asyncio loop in any
        native thread; the loop never blocks while ``fn`` runs on its green thread of
        the home hub, so a coroutine can run any blocking kazoo call (a recipe) this way.
        Cancelling the awaiting task detaches it: ``fn`` runs on (a green thread is
        not killed mid-request; to give up a ``Lock.acquire``, call ``lock.cancel()``).
        """
        done = self._done
        if not done.is_set():
            yield from loop_future((done._lock, done.is_set, done._waiters), None, None)
        if self.exception is not None:
            raise self.exception
        return self.value
