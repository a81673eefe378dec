"""event_object / lock_object / rlock_object / queue_impl across hubs and callers."""

from __future__ import annotations

import queue as std_queue
import time
from typing import Any, List

import eventlet
import pytest

from support import Caller, green_wait_native_thread, until, native_threading as _threading
from eventlet_handler import EventletHandler


@pytest.fixture
def handler() -> EventletHandler:
    return EventletHandler("shared")  # primitives need no running handler


# White-box, on purpose: a test that must act only once a caller is parked reads the
# primitive's waiter list (``_waiters``, a queue's ``_getters``); nothing public says
# "someone waits", and a sleep would only hope the caller got there.


def test_Event_set_from_caller_wakes_waiter(hub: str, caller: Caller, handler: EventletHandler) -> None:
    event = handler.event_object()
    parked = (lambda: event._waiters) if caller.is_concurrent else (lambda: True)
    done = caller.run(lambda: (until(parked, what="the waiter to park"), event.set()))
    assert event.wait(5) is True
    done.join()
    event.clear()
    assert event.wait(0.01) is False and not event.is_set()


def test_Lock_excludes_across_callers_and_hands_off(hub: str, caller: Caller, handler: EventletHandler) -> None:
    lock = handler.lock_object()
    inside: List[int] = []
    overlaps: List[int] = []

    def critical(tag: int, rounds: int) -> None:
        for _ in range(rounds):
            with lock:
                inside.append(tag)
                if len(inside) > 1:
                    overlaps.append(tag)
                if _threading.get_ident() == me:
                    eventlet.sleep(0)  # let the other side contend while held
                inside.remove(tag)

    me = _threading.get_ident()
    done = caller.run(lambda: critical(1, 200))
    critical(2, 200)
    done.join(10)
    assert overlaps == [] and not lock.locked()
    assert lock.acquire(timeout=0.01) and not lock.acquire(blocking=False)
    assert lock.acquire(timeout=0.01) is False
    lock.release()
    with pytest.raises(RuntimeError, match="unlocked"):
        lock.release()


def test_RLock_reenters_and_refuses_foreign_release(hub: str, caller: Caller, handler: EventletHandler) -> None:
    rlock = handler.rlock_object()
    with rlock:
        with rlock:
            errors: List[BaseException] = []

            def foreign() -> None:
                try:
                    rlock.release()
                except RuntimeError as exc:
                    errors.append(exc)

            if caller.is_concurrent:
                caller.run(foreign).join()
                assert len(errors) == 1
    assert rlock.acquire(blocking=False)
    rlock.release()


def test_Queue_put_from_caller_get_in_test(hub: str, caller: Caller, handler: EventletHandler) -> None:
    q = handler.queue_impl()
    done = caller.run(lambda: [q.put(i) for i in range(100)])
    got = [q.get(timeout=5) for _ in range(100)]
    done.join()
    assert got == list(range(100))
    with pytest.raises(std_queue.Empty):
        q.get(timeout=0.01)
    bounded = handler.queue_impl(maxsize=1)
    bounded.put("a")
    with pytest.raises(std_queue.Full):
        bounded.put("b", timeout=0.01)


def test_Queue_native_getter_wakes_on_green_put(hub: str, handler: EventletHandler) -> None:
    q = handler.queue_impl()
    got: List[Any] = []
    thread = _threading.Thread(target=lambda: got.append(q.get(timeout=5)), daemon=True)
    thread.start()
    until(lambda: q._getters, what="the native getter to park")
    q.put("x")
    green_wait_native_thread(thread, 5)
    assert got == ["x"]


def test_Queue_bounded_never_overfills_under_native_and_green_producers(
    hub: str, handler: EventletHandler
) -> None:
    """Room is checked and taken under one lock: producers racing from native
    threads and green threads never push a bounded queue past ``maxsize``."""
    q = handler.queue_impl(maxsize=2)
    per_producer, producers = 200, 4
    errors: List[BaseException] = []

    def produce(tag: str) -> None:
        try:
            for i in range(per_producer):
                q.put((tag, i), timeout=10)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [_threading.Thread(target=produce, args=(f"n{k}",), daemon=True) for k in range(producers)]
    greens = [eventlet.spawn(produce, f"g{k}") for k in range(producers)]
    for thread in threads:
        thread.start()
    got, most = [], 0
    while len(got) < 2 * producers * per_producer:
        most = max(most, q.qsize())
        got.append(q.get(timeout=10))
    for thread in threads:
        green_wait_native_thread(thread, 10)
    for green in greens:
        green.wait()
    assert errors == []
    assert most <= 2, f"a maxsize=2 queue held {most} items"
    for k in range(producers):  # each producer's items stay in its order
        for tag in (f"n{k}", f"g{k}"):
            assert [i for t, i in got if t == tag] == list(range(per_producer))


def test_Queue_get_timeout_is_one_deadline_however_often_it_loses_a_race(handler: EventletHandler) -> None:
    """A getter woken for an item another getter takes first keeps its original deadline."""
    q = handler.queue_impl()
    stolen: List[Any] = []
    started = time.monotonic()
    gave_up_after: List[float] = []
    gave_up_at_item: List[int] = []

    def loser() -> None:
        try:
            q.get(timeout=0.5)
        except std_queue.Empty:
            gave_up_after.append(time.monotonic() - started)
            gave_up_at_item.append(len(stolen))

    green = eventlet.spawn(loser)
    until(lambda: q._getters, what="the loser to park")
    for i in range(8):  # every 0.1 s an item, each taken before the loser can run
        eventlet.sleep(0.1)
        q.put(i)
        stolen.append(q.get_nowait())
    with eventlet.Timeout(5):
        green.wait()
    assert stolen == list(range(8))
    assert len(gave_up_after) == 1, "the loser should have timed out"
    # Restarting the timeout at each lost race would give up only ~0.5 s after the
    # last put (~1.3 s); one deadline gives up at ~0.5 s.
    # An order check, not a threshold: with one deadline it gives up while items are
    # still being put (after ~5 of the 8), never only after the last one.
    assert gave_up_at_item[0] < 8, f"get(timeout=0.5) gave up only after {gave_up_after[0]:.2f} s"


def test_primitives_refuse_bad_timeouts(handler: EventletHandler) -> None:
    event, lock, q = handler.event_object(), handler.lock_object(), handler.queue_impl()
    with pytest.raises(ValueError, match=">= 0"):
        event.wait(-1)
    with pytest.raises(TypeError, match="number"):
        event.wait("soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError, match=">= 0"):
        q.get(timeout=float("nan"))
