"""EventletHandler subclasses with the mode fixed, for code that constructs handlers
with no arguments (tooz, ``load_handler("eventlet-shared")``, configuration files).
"""

from __future__ import annotations

from eventlet_handler.config import UNSET, Unset
from eventlet_handler.handler import EventletHandler

__all__ = ["EventletIsolatedHandler", "EventletSharedHandler"]


class EventletSharedHandler(EventletHandler):
    """An :class:`EventletHandler` always in ``"shared"`` mode (the caller's hub).

    Construct it like ``EventletHandler``, without ``mode``; thread rules are those of
    ``EventletHandler``.
    """

    def __init__(self, *, slow_callback_threshold: float | None | Unset = UNSET) -> None:
        super().__init__("shared", slow_callback_threshold=slow_callback_threshold)


class EventletIsolatedHandler(EventletHandler):
    """An :class:`EventletHandler` always in ``"isolated"`` mode (its own hub thread).

    Construct it like ``EventletHandler``, without ``mode``; thread rules are those of
    ``EventletHandler``.
    """

    def __init__(self, *, slow_callback_threshold: float | None | Unset = UNSET) -> None:
        super().__init__("isolated", slow_callback_threshold=slow_callback_threshold)
