"""An eventlet green-thread handler for kazoo, correct from any thread or hub.

``KazooClient(hosts, handler=EventletHandler())``. See the README for the
thread/hub contract of every public call.
"""

from ._errors import HandlerStoppedError, HandlerTimeoutError
from ._pinned import EventletIsolatedHandler, EventletSharedHandler
from .config import load_handler
from .handler import EventletHandler, SequentialEventletHandler
from .result import AsyncResult

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
