"""Where :mod:`eventlet_handler.pinned` lived before it was public; kept importable for
entry points and configuration files that name ``eventlet_handler._pinned:...``."""

from __future__ import annotations

from eventlet_handler.pinned import EventletIsolatedHandler, EventletSharedHandler

__all__ = ["EventletIsolatedHandler", "EventletSharedHandler"]
