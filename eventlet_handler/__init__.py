"""An eventlet green-thread handler for kazoo, correct from any thread or hub.

``KazooClient(hosts, handler=EventletHandler())``. See the README for the
thread/hub contract of every public call.

The names below are imported on first use, so that importing a submodule that
needs no eventlet (``eventlet_handler.testing.zookeeper``, used by benchmarks of
kazoo's gevent and threading handlers) does not import eventlet. ``_HOMES`` is the
one table; ``tests/test_facade.py`` checks that ``__all__`` and the ``TYPE_CHECKING``
imports (both written out for type checkers) name exactly its objects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_HOMES = {
    "AsyncResult": ".result",
    "EventletHandler": ".handler",
    "EventletHandlerError": "._errors",
    "EventletIsolatedHandler": ".pinned",
    "EventletSharedHandler": ".pinned",
    "HandlerStoppedError": "._errors",
    "HandlerTimeoutError": "._errors",
    "KazooHandler": "._protocol",
    "NoHubError": "._errors",
    "SequentialEventletHandler": ".handler",
    "TaskLike": "._protocol",
    "load_handler": ".config",
}

__all__ = [  # a literal, for type checkers; tests/test_facade.py checks it is sorted(_HOMES)
    "AsyncResult",
    "EventletHandler",
    "EventletHandlerError",
    "EventletIsolatedHandler",
    "EventletSharedHandler",
    "HandlerStoppedError",
    "HandlerTimeoutError",
    "KazooHandler",
    "NoHubError",
    "SequentialEventletHandler",
    "TaskLike",
    "load_handler",
]

if TYPE_CHECKING:  # pragma: no cover
    from ._errors import EventletHandlerError, HandlerStoppedError, HandlerTimeoutError, NoHubError
    from ._protocol import KazooHandler, TaskLike
    from .config import load_handler
    from .handler import EventletHandler, SequentialEventletHandler
    from .pinned import EventletIsolatedHandler, EventletSharedHandler
    from .result import AsyncResult


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
