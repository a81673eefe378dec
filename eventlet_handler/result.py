"""A kazoo ``IAsyncResult`` that any thread may set and any thread may wait on."""

from __future__ import annotations

from typing import Any, Callable, Generator, List, Optional, Protocol

from ._aiobridge import awaiting_loop, loop_future
from ._errors import HandlerTimeoutError
from ._parking import Waiter, allocate_lock, check_timeout, wait_until, wake_all

Link = Callable[["AsyncResult"], Any]


class CompletionDispatcher(Protocol):
    """What a result needs of its handler: a way to queue rawlink callbacks."""

    def _dispatch_completion(self, link: Link, result: "AsyncResult") -> None: ...

_PENDING: Any = object()


class AsyncResult:
    """A one-shot value or exception, set once and read by many.

    Thread contract:

    1. ``set()`` / ``set_exception()`` may be called from any green thread of
       any hub and from any native thread. Every waiter wakes promptly *in its
       own hub* (green waiters) or thread (native waiters); see
       :mod:`eventlet_handler._parking`.
    2. ``get()`` / ``wait()`` may be called from any green thread (the caller
       waits green; its hub keeps running) or any native thread (the caller
       waits natively). Never from the hub's own loop greenlet.
    3. ``rawlink()`` callbacks run once each, on the handler's completion
       worker (a green thread of the handler's hub), never on the setter's
       thread; they receive this result. A ``rawlink()`` after the result is
       ready schedules only that callback. If the handler is not running they
       run at once in the thread that triggers them (kazoo's rule).
    4. Setting an already ready result again replaces the value (as kazoo's
       results do) but wakes and calls nobody a second time.
    5. ``await result`` from a coroutine: see :meth:`__await__`.
    """

    __slots__ = ("_handler", "_lock", "_value", "_exception", "_waiters", "_links")

    def __init__(self, handler: CompletionDispatcher) -> None:
        self._handler = handler
        self._lock = allocate_lock()
        self._value: Any = None
        self._exception: Any = _PENDING
        self._waiters: List[Waiter] = []
        self._links: List[Link] = []

    def __repr__(self) -> str:
        if self._exception is _PENDING:
            state = "pending"
        elif self._exception is None:
            state = f"value={self._value!r}"
        else:
            state = f"exception={self._exception!r}"
        return f"<{type(self).__name__} {state}>"

    @property
    def value(self) -> Any:
        """The value passed to :meth:`set`, else ``None``. Any thread."""
        return self._value

    @property
    def exception(self) -> Optional[BaseException]:
        """The exception passed to :meth:`set_exception`, else ``None``. Any thread."""
        exc = self._exception
        return None if exc is _PENDING else exc

    def ready(self) -> bool:
        """True once a value or an exception is held. Any thread."""
        return self._exception is not _PENDING

    def successful(self) -> bool:
        """True once a value (not an exception) is held. Any thread."""
        return self._exception is None

    def set(self, value: Any = None) -> None:
        """Store ``value`` and wake every waiter. Any thread (contract 1)."""
        self._settle(value, None)

    def set_exception(self, exception: BaseException) -> None:
        """Store ``exception`` (raised by :meth:`get`) and wake every waiter. Any thread."""
        if not isinstance(exception, BaseException):
            raise TypeError(f"set_exception() needs an exception instance, not {exception!r}")
        self._settle(None, exception)

    def _settle(self, value: Any, exception: Optional[BaseException]) -> None:
        with self._lock:
            self._value = value
            self._exception = exception
            waiters, self._waiters = self._waiters, []
            links, self._links = self._links, []
        wake_all(waiters)
        for link in links:
            self._handler._dispatch_completion(link, self)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Return the value or raise the exception, waiting up to ``timeout`` seconds.

        Any green thread or native thread (contract 2).

        :raises HandlerTimeoutError: (the handler's ``timeout_exception``) when
            nothing was set in time, or at once when ``block`` is false.
        """
        if self._exception is _PENDING:
            if block:
                self.wait(timeout)
            if self._exception is _PENDING:
                raise HandlerTimeoutError(
                    f"no result after waiting {timeout} s" if block and timeout is not None
                    else "no result yet (non-blocking get)"
                )
        with self._lock:  # a value and its exception slot, from the same set()
            value, exception = self._value, self._exception
        if exception is not None:
            raise exception
        return value

    def get_nowait(self) -> Any:
        """``get(block=False)``: the value, the exception, or ``timeout_exception``.
        Any thread, never blocks."""
        return self.get(block=False)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until ready or ``timeout``; return :meth:`ready`. Contract 2."""
        check_timeout(timeout)
        return wait_until(self._lock, self.ready, self._waiters, timeout)

    def __await__(self) -> Generator[Any, None, Any]:
        """``value = await result``: the value, or the exception raised, as :meth:`get` would.

        From a coroutine on eventlet's asyncio hub (either mode), or on a plain asyncio
        loop in any native thread (isolated mode only: shared mode raises
        ``RuntimeError`` saying why). The loop never blocks: an asyncio future made on
        the awaiting loop is settled through its ``call_soon_threadsafe`` by whichever
        thread sets this result (:mod:`eventlet_handler._aiobridge`). Cancelling the
        awaiting task (``asyncio.timeout()``, ``wait_for``) only detaches it: kazoo
        cannot cancel the request. ``handler.stop()`` fails a pending await with
        ``HandlerStoppedError``.
        """
        if self._exception is _PENDING:
            yield from loop_future((self._lock, self.ready, self._waiters), None, self._handler)
        else:
            awaiting_loop(self._handler)  # refused or not, whatever the timing
        return self.get(block=False)

    def rawlink(self, callback: Link) -> None:
        """Call ``callback(self)`` on the completion worker once ready (contract 3).

        Any thread. Linking the same callback twice before the result is ready
        links it once.
        """
        if not callable(callback):
            raise TypeError(f"rawlink() needs a callable, not {callback!r}")
        with self._lock:
            if self._exception is _PENDING:
                if callback not in self._links:
                    self._links.append(callback)
                return
        self._handler._dispatch_completion(callback, self)

    def unlink(self, callback: Link) -> None:
        """Remove a callback linked by :meth:`rawlink`; no-op if absent or already
        scheduled. Any thread, never blocks."""
        with self._lock:
            try:
                self._links.remove(callback)
            except ValueError:
                pass
