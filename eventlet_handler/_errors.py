"""The exceptions this package raises."""

from __future__ import annotations

from kazoo.handlers.eventlet import TimeoutError as KazooEventletTimeoutError
from kazoo.handlers.threading import KazooTimeoutError


class HandlerTimeoutError(KazooTimeoutError, KazooEventletTimeoutError):
    """A wait ran out of time; this is every handler's ``timeout_exception``.

    A plain ``Exception`` subclass (not ``OSError``, not ``BaseException``), so
    kazoo's connection code and tooz catch it the way they catch kazoo's own; and a
    subclass of the threading and eventlet handlers' timeout exceptions, so code
    written against them (``except KazooTimeoutError``) catches it too.
    """


class HandlerStoppedError(RuntimeError):
    """The handler is not running, and the call needs it to be."""
