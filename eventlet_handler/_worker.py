"""A callback queue and the one green thread that consumes it, in order.

Rules:

1. The queue is an ``eventlet.queue.LightQueue`` touched only in the home hub
   (other threads reach it through the bridge), so callbacks run in the order
   they were queued.
2. A callback that raises is logged with its traceback; the worker goes on.
3. The worker yields to its hub after ``YIELD_AFTER`` seconds of back-to-back
   callbacks, so a flood of callbacks cannot starve kazoo's connection loop.
4. ``STOP`` ends the worker after everything queued before it has run.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import eventlet
import greenlet
from eventlet.queue import LightQueue

from ._primitives import Event
from .stats import QueueStats, describe

LOG = logging.getLogger("eventlet_handler")

STOP: Any = object()
YIELD_AFTER = 0.002  # seconds of callbacks before a worker yields to its hub


class Worker:
    """One callback queue and the green thread that consumes it, in order."""

    __slots__ = ("on_exit", "queue", "stats", "done", "greenlet")

    def __init__(self, stats: QueueStats, on_exit: Callable[[], None]) -> None:
        self.on_exit = on_exit
        self.queue: Any = LightQueue()
        self.stats = stats
        self.done = Event()
        self.greenlet: Any = None

    def run(self) -> None:
        """The worker green thread's body; home hub only."""
        self.greenlet = greenlet.getcurrent()
        try:
            self._consume()
        finally:
            self.done.set()
            self.on_exit()

    def _consume(self) -> None:
        queue, record, clock = self.queue, self.stats.record, time.monotonic
        label = self.stats.label
        busy_since = clock()
        while True:
            idle = not queue.qsize()
            item = queue.get()
            if idle:
                busy_since = clock()
            if item is STOP:
                return
            func, args = item
            started = clock()
            failed = False
            try:
                func(*args)
            except Exception:
                failed = True
                LOG.exception("%s callback %s raised; the worker goes on", label, describe(func))
            ended = clock()
            record(func, ended - started, failed)
            del item, func, args
            if ended - busy_since > YIELD_AFTER:
                eventlet.sleep(0)
                busy_since = clock()


def run_inline(func: Callable[..., Any], args: Sequence[Any]) -> None:
    """Run a callback in the caller's thread, now: the handler is not running, and kazoo's
    rule for a stopped handler is that no callback is lost."""
    try:
        func(*args)
    except Exception:
        LOG.exception("callback %s raised (run inline: the handler is not running)", describe(func))
