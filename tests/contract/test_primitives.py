"""event_object / lock_object / rlock_object / queue_impl across hubs and callers."""

from __future__ import annotations

import queue as std_queue
import time
from typing import Any, List

import eventlet
import pytest

from support import Caller, green_wait_native_thread, later, native_threading as _threading, native_time, until
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
    getter = Caller("native").run(lambda: got.append(q.get(timeout=5)))
    until(lambda: q._getters, what="the native getter to park")
    q.put("x")
    getter.join(5)
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


def test_RLock_acquire_blocks_by_default_and_says_whether_it_holds_the_lock(
    hub: str, handler: EventletHandler
) -> None:
    """Like ``threading.RLock``: re-entry returns True, a refused or timed-out acquire
    returns False (the caller does not hold it), and ``acquire()`` with no argument
    waits for the holder to release."""
    rlock = handler.rlock_object()
    assert "count=0" in repr(rlock) and "owner=None" in repr(rlock)
    assert rlock.acquire() is True
    assert rlock.acquire() is True, "re-entry by the owner"
    rlock.release()
    rlock.release()
    held, let_go = _threading.Event(), _threading.Event()

    def native_holder() -> None:
        with rlock:
            held.set()
            let_go.wait(10)

    holder = Caller("native").run(native_holder)
    until(held.is_set, what="the native thread to take the lock")
    assert rlock.acquire(blocking=False) is False
    assert rlock.acquire(timeout=0.01) is False
    eventlet.spawn_after(0.05, let_go.set)
    assert rlock.acquire() is True, "acquire() must wait for the holder, not give up"
    rlock.release()
    holder.join(5)


def test_RLock_serves_a_threading_Condition_owned_per_green_thread(hub: str, handler: EventletHandler) -> None:
    """``threading.Condition(rlock)`` asks the lock whether the caller owns it."""
    rlock = handler.rlock_object()
    condition = _threading.Condition(rlock)
    with pytest.raises(RuntimeError, match="un-acquired"):
        condition.notify()
    with rlock:
        condition.notify()  # the owner may notify
        other: List[BaseException] = []

        def foreign_notify() -> None:
            try:
                condition.notify()
            except RuntimeError as exc:
                other.append(exc)

        eventlet.spawn(foreign_notify).wait()
        assert len(other) == 1, "another green thread does not own the lock"


def test_Queue_empty_and_nowait_calls_never_block(hub: str, handler: EventletHandler) -> None:
    q = handler.queue_impl(maxsize=1)
    assert q.empty() is True
    with eventlet.Timeout(5, AssertionError("get_nowait() on an empty queue blocked")):
        with pytest.raises(std_queue.Empty):
            q.get_nowait()
    q.put_nowait("a")
    assert q.empty() is False and q.full()
    with eventlet.Timeout(5, AssertionError("put_nowait() on a full queue blocked")):
        with pytest.raises(std_queue.Full):
            q.put_nowait("b")
    assert q.get_nowait() == "a" and q.empty()


def test_Queue_is_full_at_maxsize_and_unbounded_at_zero_or_below(handler: EventletHandler) -> None:
    """Bounded at exactly ``maxsize`` items for any size, small or large; like
    ``queue.Queue``, a ``maxsize`` of 0 or less means no bound."""
    for maxsize in (1, 300):
        q = handler.queue_impl(maxsize=maxsize)
        for i in range(maxsize):
            q.put_nowait(i)
        assert q.full() and q.qsize() == maxsize
        with pytest.raises(std_queue.Full):
            q.put_nowait("one too many")
    for unbounded in (0, -1):
        q = handler.queue_impl(maxsize=unbounded)
        for i in range(500):
            q.put_nowait(i)
        assert not q.full() and q.qsize() == 500


def test_Queue_refuses_a_maxsize_that_is_not_an_int(handler: EventletHandler) -> None:
    for bad in ("2", 2.0, True, None):
        with pytest.raises(TypeError, match="maxsize must be an int"):
            handler.queue_impl(maxsize=bad)  # type: ignore[arg-type]


_time_sleep: Any = native_time.sleep


def test_Lock_acquire_timing_out_as_release_hands_it_over_still_holds_it(handler: EventletHandler) -> None:
    """A waiter whose timeout runs out just as ``release()`` hands it the lock holds the
    lock and returns True: returning False there would leave the lock locked for good.

    The race is made wide, not hoped for: the test holds the lock's guard while the
    waiter times out and a releaser arrives, so both queue on the guard; whichever
    takes it first, the lock ends up owned by the one that says so."""
    lock = handler.lock_object()
    for _ in range(20):
        assert lock.acquire(blocking=False)
        results: List[bool] = []
        waiter = _threading.Thread(target=lambda: results.append(lock.acquire(timeout=0.05)), daemon=True)
        waiter.start()
        until(lambda: lock._waiters, what="the waiter to park")
        with lock._guard:
            releaser = _threading.Thread(target=lock.release, daemon=True)
            releaser.start()
            _time_sleep(0.1)  # the waiter's timeout runs out; both now wait for the guard
        waiter.join(5)
        releaser.join(5)
        assert results and not waiter.is_alive() and not releaser.is_alive()
        if results[0]:
            assert lock.locked(), "acquire() said True but the lock is free"
            lock.release()
        assert not lock.locked(), "nobody holds the lock, yet it stays locked"


def test_Lock_acquire_that_waited_for_the_holder_returns_True(hub: str, handler: EventletHandler) -> None:
    lock = handler.lock_object()
    assert lock.acquire() is True
    got: List[bool] = []
    waiter = eventlet.spawn(lambda: got.append(lock.acquire(timeout=5)))
    until(lambda: lock._waiters, what="the waiter to park")
    lock.release()  # hands the lock to the waiter
    with eventlet.Timeout(5):
        waiter.wait()
    assert got == [True] and lock.locked()
    lock.release()


def test_Lock_non_blocking_acquire_refuses_any_timeout_even_a_negative_one(handler: EventletHandler) -> None:
    """Only the default ``-1`` (int or float) means "no timeout" (``threading.Lock``'s rule)."""
    lock = handler.lock_object()
    for timeout in (1, 0, -5):
        with pytest.raises(ValueError, match="non-blocking"):
            lock.acquire(blocking=False, timeout=timeout)
    assert not lock.locked()
    assert lock.acquire(blocking=False, timeout=-1.0) is True
    lock.release()


def test_Lock_non_blocking_acquire_of_a_held_lock_returns_at_once(handler: EventletHandler) -> None:
    """An order check: the holder releases 0.5 s in; a non-blocking acquire must have
    said False long before, not waited to be handed the lock."""
    lock = handler.lock_object()
    lock.acquire()
    releaser = later(0.5, lock.release)
    assert lock.acquire(blocking=False) is False
    releaser.join(5)
    assert not lock.locked()


def test_Lock_acquire_timeout_minus_one_int_or_float_means_forever_other_negatives_are_refused(
    handler: EventletHandler,
) -> None:
    lock = handler.lock_object()
    for forever in (-1, -1.0):
        assert lock.acquire(timeout=forever) is True
        lock.release()
    with pytest.raises(ValueError, match=">= 0"):
        lock.acquire(timeout=-5)


def test_Lock_acquire_with_a_timeout_is_handed_the_lock_released_within_it(handler: EventletHandler) -> None:
    lock = handler.lock_object()
    lock.acquire()
    releaser = later(0.2, lock.release)
    assert lock.acquire(timeout=1.0) is True, "acquire(timeout=1.0) gave up before the release 0.2 s in"
    releaser.join(5)
    lock.release()


def test_Queue_get_gives_up_at_its_timeout_when_nothing_wakes_it(handler: EventletHandler) -> None:
    """An order check: the one item comes 0.7 s in; ``get(timeout=0.3)`` must have
    raised ``Empty`` before it, not waited on to take it."""
    q = handler.queue_impl()
    putter = later(0.7, q.put, "late")
    with pytest.raises(std_queue.Empty):
        q.get(timeout=0.3)
    putter.join(5)
    assert q.get_nowait() == "late"


def test_primitives_reprs_say_their_state(handler: EventletHandler) -> None:
    event, lock = handler.event_object(), handler.lock_object()
    assert "unset" in repr(event)
    event.set()
    assert "unset" not in repr(event) and "set" in repr(event)
    assert "unlocked" in repr(lock)
    lock.acquire()
    assert "unlocked" not in repr(lock) and "locked" in repr(lock)


def test_Lock_release_landing_between_acquires_two_checks_gives_that_acquire_the_lock(
    handler: EventletHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``acquire()`` checks the lock, makes its waiter, then checks again before parking:
    a release in between must let it take the lock at the second check, and say so.
    The interleaving is forced: making the waiter releases the lock first."""
    from eventlet_handler import _primitives

    lock = handler.lock_object()
    lock.acquire()
    real_waiter = _primitives.Waiter

    def waiter_made_as_the_holder_releases() -> Any:
        lock.release()
        return real_waiter()

    monkeypatch.setattr(_primitives, "Waiter", waiter_made_as_the_holder_releases)
    got = lock.acquire(timeout=1.0)
    monkeypatch.setattr(_primitives, "Waiter", real_waiter)
    assert got is True and lock.locked(), f"acquire() returned {got}, locked={lock.locked()}"
    lock.release()
    assert not lock._waiters


def test_Lock_non_blocking_acquire_works_in_the_hubs_own_loop(hub: str, handler: EventletHandler) -> None:
    """A hub timer callback (the hub greenlet, where nothing may block) may still try a
    held lock without blocking: it gets False, not the "cannot block" error."""
    lock = handler.lock_object()
    lock.acquire()
    got: List[Any] = []

    def in_hub_greenlet() -> None:
        try:
            got.append(lock.acquire(blocking=False))
        except BaseException as exc:  # surfaced below
            got.append(exc)

    eventlet.hubs.get_hub().schedule_call_global(0, in_hub_greenlet)
    until(lambda: got, what="the timer callback to run")
    assert got == [False]
    lock.release()
