"""The history of a run: every call with its start, end, caller kind and outcome.

Rules
1. A call is recorded when it starts (so a stranded call is visible) and
   finished exactly once, by the thread that made it.
2. Recording is thread-safe across green and native threads: one native lock
   (never held across a blocking call), and ``time.monotonic()`` plus
   ``time.time()`` (to compare with ZooKeeper's ``ctime``/``mtime``).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any

ACK = "ok"


@dataclasses.dataclass
class Call:
    id: int
    op: str
    caller: str  # "green", "native" (HOOK(aio): "asyncio")
    worker: str
    start: float  # time.monotonic()
    wall_start: float  # time.time()
    end: float | None = None
    outcome: str | None = None  # ACK or the exception's class name
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start

    @property
    def acked(self) -> bool:
        return self.outcome == ACK


@dataclasses.dataclass
class Event:
    at: float
    what: str
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


class History:
    """Calls and events (faults, state changes) of one run; any thread."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self._ids = itertools.count(1)
        self.calls: list[Call] = []
        self.events: list[Event] = []
        self.open: dict[int, Call] = {}

    def begin(self, op: str, caller: str, worker: str, **detail: Any) -> Call:
        call = Call(next(self._ids), op, caller, worker, time.monotonic(), time.time(), detail=detail)
        with self._lock:
            self.calls.append(call)
            self.open[call.id] = call
        return call

    def finish(self, call: Call, outcome: str, **detail: Any) -> None:
        assert call.end is None, f"call {call.id} finished twice"
        call.detail.update(detail)
        call.outcome = outcome
        call.end = time.monotonic()
        with self._lock:
            self.open.pop(call.id, None)

    def event(self, what: str, **detail: Any) -> Event:
        event = Event(time.monotonic(), what, detail)
        with self._lock:
            self.events.append(event)
        return event

    def events_of(self, what: str) -> list[Event]:
        with self._lock:
            return [event for event in self.events if event.what == what]

    def oldest_open(self) -> Call | None:
        with self._lock:
            return min(self.open.values(), key=lambda call: call.start, default=None)
