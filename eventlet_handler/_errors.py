"""The exceptions this package raises, all under :class:`EventletHandlerError`.

Rules:

1. Each keeps the ancestry callers already catch: a timeout is a plain
   ``Exception`` (kazoo and tooz catch it as their own handlers' timeouts), a
   call the handler's state or the calling thread refuses is a ``RuntimeError``.
2. Each precondition raises one type, whichever call meets it.
"""

from __future__ import annotations

from kazoo.handlers.eventlet import TimeoutError as KazooEventletTimeoutError
from kazoo.handlers.threading import KazooTimeoutError


class EventletHandlerError(Exception):
    """Base of every exception this package raises; catch it to catch them all."""


class HandlerTimeoutError(EventletHandlerError, KazooTimeoutError, KazooEventletTimeoutError):
    """A wait ran out of time; this is every handler's ``timeout_exception``.

    A plain ``Exception`` subclass (not ``OSError``, not ``BaseException``), so
    kazoo's connection code and tooz catch it the way they catch kazoo's own; and a
    subclass of the threading and eventlet handlers' timeout exceptions, so code
    written against them (``except KazooTimeoutError``) catches it too.
    """


class HandlerStoppedError(EventletHandlerError, RuntimeError):
    """The handler is not running (or its hub is gone), and the call needs it to be.

    What to do: ``start()`` the handler (again), then retry the call.
    """


class NoHubError(EventletHandlerError, RuntimeError):
    """A shared-mode handler was asked to run green threads in a native thread that has
    no eventlet hub, where they would never run (``start()`` and ``spawn()`` alike).

    What to do: call from a green thread or the main thread, or use ``mode="isolated"``
    (``mode="auto"`` chooses isolated mode for such a thread by itself).
    """
