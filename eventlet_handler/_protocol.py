"""What kazoo calls on a handler, as a ``Protocol`` both of this package's handlers satisfy.

:class:`KazooHandler` is the contract ``EventletHandler`` and the testing
``DeterministicHandler`` share (``tests/test_protocol.py`` compares their signatures
with it); :class:`TaskLike` is what ``spawn()`` returns on either.

Rules:

1. ``spawn()`` returns something with ``join(timeout=None) -> bool`` (True once the
   work finished) and ``is_alive() -> bool``, like a ``threading.Thread`` whose join
   says whether it ended.
2. ``stop(timeout=None)`` bounds its own wait; ``dispatch_callback`` takes a kazoo
   ``Callback`` and refuses anything else with ``TypeError`` (:func:`unpack_callback`).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

__all__ = ["KazooHandler", "TaskLike", "unpack_callback"]


@runtime_checkable
class TaskLike(Protocol):
    """What ``spawn()`` returns (rule 1)."""

    def join(self, timeout: float | None = None) -> bool: ...

    def is_alive(self) -> bool: ...


@runtime_checkable
class KazooHandler(Protocol):
    """The handler surface kazoo uses: lifecycle, callbacks, spawn and the factories."""

    @property
    def name(self) -> str: ...

    @property
    def timeout_exception(self) -> type[Exception]: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self, timeout: float | None = None) -> None: ...

    def dispatch_callback(self, callback: Any) -> None: ...

    def spawn(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> TaskLike: ...

    def async_result(self) -> Any: ...

    def event_object(self) -> Any: ...

    def lock_object(self) -> Any: ...

    def rlock_object(self) -> Any: ...

    def select(self, rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> Any: ...

    def socket(self, *args: Any, **kwargs: Any) -> Any: ...

    def create_connection(self, address: Any, *args: Any, **kwargs: Any) -> Any: ...

    def create_socket_pair(self) -> Any: ...


def unpack_callback(callback: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """``(callback.func, tuple(callback.args))`` of a kazoo ``Callback`` (rule 2). Any thread.

    :raises TypeError: not a ``Callback``, or its ``func`` is not callable.
    """
    try:
        func, args = callback.func, callback.args
    except AttributeError:
        raise TypeError(
            f"dispatch_callback() needs a kazoo Callback (with .func and .args), not {callback!r}"
        ) from None
    if not callable(func):
        raise TypeError(f"dispatch_callback(): callback.func is not callable: {func!r}")
    return func, args if type(args) is tuple else tuple(args)
