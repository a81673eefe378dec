"""Counters, gauges and slow-callback detection for a handler's callback queues.

Cheap enough to stay on: per callback, two ``time.monotonic()`` calls, a few
integer updates and one store into a fixed, preallocated ring of recent durations
(indexed by the run count, so no length check; a power of two, so a mask). Written
only by the queue's worker green thread; read (as a snapshot, slightly stale at
worst) from any thread.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Dict, List, Optional

LOG = logging.getLogger("eventlet_handler")

_RING = 1024  # a power of two: the ring index is run & _MASK
_MASK = _RING - 1
_NEVER = float("inf")


def unwrap(func: Callable[..., Any]) -> Callable[..., Any]:
    """The function inside any number of ``functools.partial`` layers."""
    while isinstance(func, functools.partial):
        func = func.func
    return func


def describe(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a callback (partials unwrapped; a callable object is
    named by its class), for logs, stats and the test double's rules. Any thread."""
    inner = unwrap(func)
    module = getattr(inner, "__module__", None) or type(inner).__module__
    name = getattr(inner, "__qualname__", None) or type(inner).__qualname__
    return f"{module}.{name}"


class QueueStats:
    """What one callback queue's worker has done."""

    __slots__ = (
        "label", "run", "failed", "slow", "slowest_seconds", "slowest_name",
        "_ring", "slow_threshold", "_slow_after",
    )

    def __init__(self, label: str, slow_threshold: Optional[float]) -> None:
        self.label = label
        self.run = 0
        self.failed = 0
        self.slow = 0
        self.slowest_seconds = 0.0
        self.slowest_name: Optional[str] = None
        self.slow_threshold = slow_threshold
        self._slow_after = _NEVER if slow_threshold is None else slow_threshold
        self._ring: List[float] = [0.0] * _RING

    def record(self, func: Callable[..., Any], seconds: float, failed: bool) -> None:
        """Account one callback that held the worker for ``seconds``. Worker only."""
        run = self.run
        self.run = run + 1
        if failed:
            self.failed += 1
        self._ring[run & _MASK] = seconds
        if seconds > self.slowest_seconds:
            self.slowest_seconds = seconds
            self.slowest_name = describe(func)
        if seconds > self._slow_after:
            threshold = self.slow_threshold
            self.slow += 1
            LOG.warning(
                "slow callback: %s held the %s worker for %.3f s (threshold %.3f s); "
                "callbacks on this queue wait behind it: spawn long work instead",
                describe(func), self.label, seconds, threshold,
            )

    def snapshot(self, depth: int) -> Dict[str, Any]:
        """A plain dict of this queue's numbers; any thread."""
        ring = sorted(self._ring[:min(self.run, _RING)])
        return {
            "run": self.run,
            "failed": self.failed,
            "slow": self.slow,
            "depth": depth,
            "slowest_seconds": self.slowest_seconds,
            "slowest_callback": self.slowest_name,
            "latency_p50_seconds": _percentile(ring, 0.50),
            "latency_p99_seconds": _percentile(ring, 0.99),
            "latency_max_seconds": ring[-1] if ring else None,
        }


def _percentile(ordered: List[float], q: float) -> Optional[float]:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
