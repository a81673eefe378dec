"""An eventlet green-thread handler for kazoo, correct from any thread or hub.

``KazooClient(hosts, handler=EventletHandler())``. See the README for the
thread/hub contract of every public call.

The names below are imported on first use, so that importing a submodule that
needs no eventlet (``eventlet_handler.testing.zookeeper``, used by benchmarks of
kazoo's gevent and threading handlers) does not import eventlet.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = [
    "AsyncResult",
    "EventletHandler",
    "EventletIsolatedHandler",
    "EventletSharedHandler",
    "HandlerStoppedError",
    "HandlerTimeoutError",
    "SequentialEventletHandler",
    "load_handler",
]

_HOMES = {
    "AsyncResult": ".result",
    "EventletHandler": ".handler",
    "SequentialEventletHandler": ".handler",
    "EventletIsolatedHandler": "._pinned",
    "EventletSharedHandler": "._pinned",
    "HandlerStoppedError": "._errors",
    "HandlerTimeoutError": "._errors",
    "load_handler": ".config",
}

if TYPE_CHECKING:  # pragma: no cover
    from ._errors import HandlerStoppedError, HandlerTimeoutError
    from ._pinned import EventletIsolatedHandler, EventletSharedHandler
    from .config import load_handler
    from .handler import EventletHandler, SequentialEventletHandler
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
