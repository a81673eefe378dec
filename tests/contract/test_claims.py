"""README claims about the handler's lifecycle and contract that had no test of their own.

Each test names the README sentence it checks; all use the public API only.
"""

from __future__ import annotations

from typing import Any, List

import eventlet
import pytest
from eventlet import hubs

from support import Caller, HandlerInBody, callback, green_wait_native_thread, in_native_thread, later, until
from support import native_threading as _threading
from eventlet_handler import EventletHandler, SequentialEventletHandler
from eventlet_handler._hubs import current_hub


def test_isolated_spawned_work_outlives_stop_then_its_hub_thread_exits() -> None:
    """README: "Spawned work outlives stop() in both modes ... once stopped with no task
    left, isolated mode's hub thread exits"."""
    before = {thread.ident for thread in _threading.enumerate()}
    handler = EventletHandler("isolated")
    handler.start()
    release = handler.event_object()
    task = handler.spawn(lambda: (release.wait(10), "finished")[1])
    handler.stop(timeout=10)
    hub_threads = [thread for thread in _threading.enumerate() if thread.ident not in before]
    assert task.is_alive() and hub_threads, "the hub thread went away with its work still running"
    release.set()
    assert task.join(5) and task.exception is None and task.value == "finished"
    until(lambda: not any(t.is_alive() for t in hub_threads), 10, "the hub thread to exit after its task")


def test_blocking_in_a_hub_loop_greenlet_raises_RuntimeError(hub: str) -> None:
    """README: "Nothing may block in a hub's own loop greenlet (a hub timer or listener
    callback): that raises RuntimeError"."""
    with HandlerInBody("isolated") as handler:
        errors: List[str] = []
        done = eventlet.event.Event()

        def in_timer() -> None:
            for wait in (lambda: handler.event_object().wait(0.1),
                         lambda: handler.async_result().get(timeout=0.1)):
                try:
                    wait()
                except RuntimeError as exc:
                    errors.append(str(exc))
            done.send()

        hubs.get_hub().schedule_call_global(0, in_timer)
        with eventlet.Timeout(5):
            done.wait()
    assert len(errors) == 2, errors


def test_native_waiter_creates_no_hub() -> None:
    """README: a blocking call waits "natively in a thread that has none (no hub is
    created for it)"."""
    with HandlerInBody("isolated") as handler:
        result = handler.async_result()

        def wait_natively() -> Any:
            event = handler.event_object()
            assert not event.wait(0.01)
            later(0.05, result.set, "value")
            value = result.get(timeout=10)
            handler.lock_object().acquire()
            return value, current_hub()

        assert in_native_thread(wait_natively, 20) == ("value", None)


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_concurrent_start_from_many_threads_starts_once(hub: str, mode: str) -> None:
    """README: "start(), stop(): anywhere; idempotent; concurrent calls are safe"."""

    handler = EventletHandler(mode)
    barrier = _threading.Barrier(4)
    errors: List[BaseException] = []

    def start() -> None:
        try:
            if mode == "isolated":
                barrier.wait(5)
            handler.start()
        except BaseException as exc:
            errors.append(exc)

    # shared: green threads of the starting hub (a native thread with no hub is refused);
    # isolated: native threads released at once by a barrier.
    starters = [eventlet.spawn(start) for _ in range(4)] if mode == "shared" else []
    threads = [] if starters else [_threading.Thread(target=start, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        green_wait_native_thread(thread, 10)
    for starter in starters:
        starter.wait()
    try:
        assert errors == []
        assert handler.stats()["state"] == "running", handler.stats()
        ran = handler.spawn(lambda: "ran")
        assert ran.join(10) and ran.value == "ran"
    finally:
        handler.stop(timeout=10)
    assert handler.stats()["state"] == "stopped"


def test_stats_from_a_native_thread_counts_tasks_spawned() -> None:
    """README: "stats(): anywhere"; its ``tasks_spawned`` counts spawn() calls."""
    with HandlerInBody("isolated") as handler:
        before = in_native_thread(handler.stats, 20)
        tasks = [handler.spawn(lambda: None) for _ in range(3)]
        assert all(task.join(10) for task in tasks)
        after = in_native_thread(handler.stats, 20)
        assert (before["mode"], before["state"]) == ("isolated", "running"), before
        assert after["tasks_spawned"] - before["tasks_spawned"] == 3, (before, after)


def test_SequentialEventletHandler_is_the_one_line_import_change() -> None:
    """README: "Moving from kazoo's own handler is a one-line import change"."""
    assert SequentialEventletHandler is EventletHandler


def test_Task_repr_names_the_function_and_says_alive_then_done() -> None:
    with HandlerInBody("isolated") as handler:
        release = handler.event_object()

        def held() -> None:
            release.wait(10)

        task = handler.spawn(held)
        assert repr(task).endswith("held alive>"), repr(task)
        release.set()
        assert task.join(10)
        assert repr(task).endswith("held done>"), repr(task)


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_concurrent_stops_each_return_after_the_queued_callbacks_ran(hub: str, mode: str) -> None:
    """README: stop() "anywhere; idempotent; concurrent calls are safe" and "stop() first
    runs every callback already queued": every concurrent stop() returns, and none
    returns before the callbacks queued ahead of it have run."""

    handler = EventletHandler(mode)
    handler.start()
    ran: List[int] = []
    for n in range(3):
        handler.dispatch_callback(callback(lambda n=n: (eventlet.sleep(0.02), ran.append(n))))
    seen_at_return: List[List[int]] = []

    def stop() -> None:
        handler.stop(timeout=10)
        seen_at_return.append(list(ran))

    callers = [Caller(kind) for kind in ("other_green", "native", "native", "other_green")]
    dones = [c.run(stop) for c in callers]
    stop()
    for done in dones:
        done.join(15)
    assert seen_at_return == [[0, 1, 2]] * 5, seen_at_return
    assert handler.stats()["state"] == "stopped"
    late: List[str] = []
    handler.dispatch_callback(callback(late.append, "inline"))  # stopped: runs inline
    assert late == ["inline"]
