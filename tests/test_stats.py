"""handler.stats() and the slow-callback warning."""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import pytest

from eventlet_handler import EventletHandler
from support import HandlerInBody, callback, in_native_thread, until


@pytest.fixture
def handler() -> Iterator[EventletHandler]:
    # 0.3 s: a no-op callback never holds its worker that long, even on a loaded 2-core
    # machine (at 0.05 s a preempted one could, and count as a second slow callback).
    with HandlerInBody("shared", slow_callback_threshold=0.3) as handler:
        yield handler


def _dispatch_and_wait(handler: EventletHandler, func: Any, *args: Any) -> None:
    done = handler.event_object()
    handler.dispatch_callback(callback(func, *args))
    handler.dispatch_callback(callback(done.set))
    assert done.wait(5)


def _slow_callback() -> None:
    time.sleep(0.4)  # holds the worker natively past the 0.3 s threshold, on purpose


def test_stats_counts_runs_failures_and_latency(handler: EventletHandler) -> None:
    for _ in range(10):
        _dispatch_and_wait(handler, lambda: None)
    _dispatch_and_wait(handler, lambda: 1 / 0)
    _dispatch_and_wait(handler, lambda: time.sleep(0.02))  # holds the worker 20 ms
    result = handler.async_result()
    linked = handler.event_object()
    result.rawlink(lambda r: linked.set())
    result.set(1)
    assert linked.wait(5)
    # A callback is counted once it returned: after it set `linked` (or `done`).
    queues = lambda: handler.stats()["queues"]  # noqa: E731
    until(lambda: (queues()["watch"]["run"], queues()["completion"]["run"]) == (24, 1), 5, "24 + 1 runs counted")
    stats = handler.stats()
    watch, completion = stats["queues"]["watch"], stats["queues"]["completion"]
    assert watch["run"] == 24 and watch["failed"] == 1
    assert completion["run"] == 1 and completion["failed"] == 0
    assert watch["depth"] == 0
    # Latencies are what callbacks held their worker: all > 0, and the 20 ms one is the max.
    assert 0 < watch["latency_p50_seconds"] <= watch["latency_p99_seconds"] <= watch["latency_max_seconds"]
    assert 0.02 <= watch["latency_max_seconds"] < 1.0, watch
    assert stats["mode"] == "shared" and stats["state"] == "running"


def test_slow_callback_is_warned_by_name_and_counted(
    handler: EventletHandler, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="eventlet_handler"):
        _dispatch_and_wait(handler, _slow_callback)
    warnings = [r.getMessage() for r in caplog.records if "slow callback" in r.getMessage()]
    assert len(warnings) == 1
    assert "_slow_callback" in warnings[0] and "watch worker" in warnings[0]
    watch = handler.stats()["queues"]["watch"]
    assert watch["slow"] == 1
    assert watch["slowest_seconds"] >= 0.4
    assert watch["slowest_callback"].endswith("_slow_callback")


def test_threshold_none_turns_the_warning_off(caplog: pytest.LogCaptureFixture) -> None:
    with HandlerInBody("shared", slow_callback_threshold=None) as handler:
        with caplog.at_level(logging.WARNING, logger="eventlet_handler"):
            _dispatch_and_wait(handler, _slow_callback)
        assert not [r for r in caplog.records if "slow callback" in r.getMessage()]
        assert handler.stats()["queues"]["watch"]["slow"] == 0


def test_stats_depth_shows_queued_callbacks(handler: EventletHandler) -> None:
    gate, started = handler.event_object(), handler.event_object()

    def hold() -> None:
        started.set()
        gate.wait(5)

    handler.dispatch_callback(callback(hold))
    try:
        for _ in range(5):
            handler.dispatch_callback(callback(lambda: None))
        assert started.wait(5)  # the worker took the first and blocks on the gate
        assert handler.stats()["queues"]["watch"]["depth"] == 5
    finally:
        gate.set()


def test_stats_counts_bridge_calls_from_native_threads(handler: EventletHandler) -> None:
    before = handler.stats()["bridge_calls"]
    done = handler.event_object()
    in_native_thread(lambda: [handler.dispatch_callback(callback(done.set)) for _ in range(3)], 5)
    assert done.wait(5)
    assert handler.stats()["bridge_calls"] >= before + 1


def test_stats_bridge_calls_are_this_handlers_own(handler: EventletHandler) -> None:
    """Two shared-mode handlers on one hub share its bridge; each counts only the calls
    it sent (not the other's, not the hub's other traffic)."""
    with HandlerInBody("shared") as other:
        before = other.stats()["bridge_calls"]
        done = handler.event_object()

        def dispatch() -> None:
            for _ in range(20):
                handler.dispatch_callback(callback(lambda: None))
            handler.dispatch_callback(callback(done.set))

        in_native_thread(dispatch, 5)
        assert done.wait(5)
        assert handler.stats()["bridge_calls"] >= 21
        assert other.stats()["bridge_calls"] == before, "counted another handler's calls"


def test_QueueStats_latencies_cover_exactly_the_last_1024_callbacks() -> None:
    from eventlet_handler.stats import QueueStats

    stats = QueueStats("watch", None)
    assert stats.snapshot(0)["latency_max_seconds"] is None  # nothing recorded: no zeros
    for i in range(3):
        stats.record(int, 1.0 + i, False)
    assert stats.snapshot(0)["latency_p50_seconds"] == 2.0
    for i in range(1024 + 100):  # the first 100 of these and the three above fall out
        stats.record(int, 1000.0 if i < 100 else 0.5, False)
    snap = stats.snapshot(0)
    assert snap["run"] == 3 + 1124
    assert snap["latency_max_seconds"] == 0.5
    assert snap["slowest_seconds"] == 1000.0


def test_stats_bridge_calls_count_exactly_the_calls_other_threads_sent() -> None:
    """A shared-mode handler started in this thread's hub sends nothing through its
    bridge from here; each spawn from a native thread is one bridge call."""
    with HandlerInBody("shared") as handler:
        assert handler.stats()["bridge_calls"] == 0, "calls made in the home hub itself were counted"
        tasks = in_native_thread(lambda: [handler.spawn(int) for _ in range(3)], 5)
        assert len(tasks) == 3 and all(task.join(5) for task in tasks)
        assert handler.stats()["bridge_calls"] == 3


def test_stats_of_a_handler_never_started_shows_empty_queues() -> None:
    stats = EventletHandler("isolated").stats()
    assert stats["state"] == "stopped" and stats["bridge_calls"] == 0
    assert stats["tasks_spawned"] == 0 and stats["tasks_running"] == 0
    assert {name: queue["depth"] for name, queue in stats["queues"].items()} == {"watch": 0, "completion": 0}
