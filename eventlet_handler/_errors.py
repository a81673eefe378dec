"""The exceptions this package raises."""

from __future__ import annotations


class HandlerTimeoutError(Exception):
    """A wait ran out of time; this is every handler's ``timeout_exception``.

    A plain ``Exception`` subclass (not ``OSError``, not ``BaseException``), so
    kazoo's connection code and tooz catch it the way they catch kazoo's own.
    """


class HandlerStoppedError(RuntimeError):
    """The handler is not running, and the call needs it to be."""
