"""How callers park and are woken (``_parking``'s rules): waits without a timeout last as
long as it takes, a native wait cut short by a bridge call keeps its timeout, and a
waker never raises or loses a wake whatever the waiter was doing."""

from __future__ import annotations

import socket
import time
from typing import Any, List

import eventlet
import pytest
from eventlet import hubs

from support import Caller, fill_send_buffer, green_wait_native_thread, later, until
from support import native_time as _time
from eventlet_handler._bridge import bridge_of
from eventlet_handler._parking import Waiter
from eventlet_handler._primitives import Event, Lock

NATIVE_WAIT_HUBS = ("epolls", "poll", "selects")  # the asyncio hub always waits green


def test_wait_without_a_timeout_lasts_as_long_as_it_takes(hub: str) -> None:
    """``wait()`` with no timeout returns True once set, however late: for a native
    thread (no hub) and for a green caller of an idle hub (rule 5's native wait)."""
    bridge_of(hubs.get_hub(), create=True)
    event = Event()
    native: List[bool] = []
    waiter = Caller("native").run(lambda: native.append(event.wait()))
    later(1.5, event.set)  # later than any 1 s default a wrong bound would use
    assert event.wait() is True, "the hub thread's wait() gave up before the set"
    waiter.join(5)
    assert native == [True], "the native thread's wait() gave up before the set"


def test_native_wait_cut_short_by_a_bridge_call_keeps_the_rest_of_its_timeout(hub: str) -> None:
    """Rule 5: a bridge call ends the idle hub's native wait; the caller then waits green
    for what is left of its own timeout (then fails), or without one until woken.

    An order check, not a threshold, and no ``eventlet.Timeout`` (its timer would make
    the hub busy, and the wait green from the start): the holder releases the lock
    0.8 s in, so ``acquire(timeout=0.2)`` must have given up before it is handed the
    lock, and ``acquire()`` must still be waiting then."""
    bridge = bridge_of(hubs.get_hub(), create=True)
    lock = Lock()
    lock.acquire()
    releaser = later(0.8, lock.release)
    later(0.05, bridge.call_soon_threadsafe, int)
    started = time.monotonic()
    assert lock.acquire(timeout=0.2) is False, (
        f"acquire(timeout=0.2) was still waiting {time.monotonic() - started:.2f} s in")
    assert time.monotonic() - started >= 0.18, "acquire(timeout=0.2) gave up early"
    later(0.05, bridge.call_soon_threadsafe, int)
    assert lock.acquire() is True  # handed over by the release
    green_wait_native_thread(releaser, 5)
    lock.release()


@pytest.mark.parametrize("first", ["bridge_call", "wake"])
def test_waker_never_raises_when_a_bridge_call_and_a_wake_land_together(hub: str, first: str) -> None:
    """A bridge call and a real wake land together on a native waiter, in either order:
    the second release of its lock is expected (rule 3, idempotent), never an error for
    the waker or the bridge call's caller."""
    bridge = bridge_of(hubs.get_hub(), create=True)
    for _ in range(100):
        event = Event()

        def both(event: Event = event) -> None:
            until(lambda: bridge._sleeper is not None or event._waiters, what="the waiter to park")
            calls = [lambda: bridge.call_soon_threadsafe(int), event.set]
            for call in calls if first == "bridge_call" else reversed(calls):
                call()

        both_done = Caller("native").run(both)  # join() re-raises what the waker raised
        assert event.wait(5)
        both_done.join(5)


def test_waker_that_saw_the_waiter_native_wakes_it_after_it_went_green(hub: str) -> None:
    """Rule 5's hand-over: a waker that read ``hub`` as None finishes its wake after the
    waiter, interrupted by a bridge call, went green; the wake reaches it through its
    hub's bridge. The interleaving is forced by finishing the wake (``_release``) only
    once the waiter has published its hub."""
    if hub not in NATIVE_WAIT_HUBS:
        pytest.skip("the asyncio hub always waits green: its waiters never start native")

    bridge = bridge_of(hubs.get_hub(), create=True)
    waiter = Waiter()
    assert waiter.hub is None, "an idle hub's waiter starts native"

    def waker() -> None:
        until(lambda: bridge._sleeper is not None, what="the waiter to park natively")
        bridge.call_soon_threadsafe(int)  # it goes green...
        until(lambda: waiter.hub is not None, what="the waiter to publish its hub")
        waiter._release()  # ...and a wake that saw it native lands now

    waking = Caller("native").run(waker)
    started = time.monotonic()
    woken = waiter.wait(5.0)
    waking.join(5)  # re-raises what the waker raised
    seconds = time.monotonic() - started
    assert woken and seconds < 4.0, f"woken={woken} after {seconds:.2f} s: the wake was lost"


def test_zero_timeout_is_a_poll_and_bad_timeouts_are_refused_by_name() -> None:
    event = Event()
    assert event.wait(0) is False and event.wait(0.0) is False  # a poll, not an error
    for bad in (True, "soon", [1]):
        with pytest.raises(TypeError, match="must be a number of seconds or None"):
            event.wait(bad)  # type: ignore[arg-type]
    for bad_value in (-0.5, float("nan")):
        with pytest.raises(ValueError, match=">= 0 seconds or None"):
            event.wait(bad_value)


def test_blocking_in_a_hub_timer_callback_names_the_hub_loop_not_await(hub: str) -> None:
    """Rule 4: outside any coroutine the error says "hub's own loop"; the ``await``
    advice is only for coroutines on the asyncio hub."""
    got: List[Any] = []

    def in_hub_greenlet() -> None:
        try:
            Event().wait(1)
        except RuntimeError as exc:
            got.append(str(exc))

    hubs.get_hub().schedule_call_global(0, in_hub_greenlet)
    until(lambda: got, what="the timer callback to run")
    assert "hub's own loop" in got[0] and "await" not in got[0], got[0]


def test_set_landing_while_the_waiter_is_made_is_seen_before_parking(monkeypatch: pytest.MonkeyPatch) -> None:
    """``wait_until`` checks, makes its waiter, then checks again under the owner's lock:
    a set in between must make ``wait()`` return True at once. The interleaving is
    forced: making the waiter sets the event first."""
    from eventlet_handler import _parking

    event = Event()
    real_waiter = _parking.Waiter

    def waiter_made_as_the_event_is_set() -> Any:
        event.set()
        return real_waiter()

    monkeypatch.setattr(_parking, "Waiter", waiter_made_as_the_event_is_set)
    started = time.monotonic()
    got = event.wait(2.0)
    monkeypatch.setattr(_parking, "Waiter", real_waiter)
    assert got is True and not event._waiters
    assert time.monotonic() - started < 1.5, "the waiter parked although the event was set"


def test_a_green_writer_blocked_on_a_full_socket_keeps_the_wait_green(hub: str) -> None:
    """Rule 5: a write listener is work the hub must serve: the caller waits green,
    so the writer runs when its socket drains."""
    from eventlet.green import socket as green_socket

    bridge_of(hubs.get_hub(), create=True)
    event = Event()
    a, b = green_socket.socketpair()
    fill_send_buffer(a)  # the next send waits on a write listener

    def writer() -> None:
        a.sendall(b"y" * 65536)
        event.set()

    eventlet.spawn_n(writer)
    eventlet.sleep(0)  # the writer registers its write listener
    raw = socket.socket(fileno=b.detach())

    def drain() -> None:
        raw.settimeout(5)
        try:
            while raw.recv(1 << 20):
                pass
        except OSError:
            pass

    later(0.05, drain)
    try:
        assert event.wait(3.0), "the writer never ran: the hub waited natively with a write listener"
    finally:
        a.close()
        raw.close()


def test_native_wait_cut_short_after_its_deadline_passed_gives_up_at_once(
    hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 5: when the bridge call that ends the native wait comes only after the
    deadline (here: the clock jumps 1000 s past it), nothing is left of the timeout
    and the caller gives up at once, before the holder's release 1 s in."""
    if hub not in NATIVE_WAIT_HUBS:
        pytest.skip("the asyncio hub always waits green: there is no native wait to cut short")
    from eventlet_handler import _parking

    bridge = bridge_of(hubs.get_hub(), create=True)
    lock = Lock()
    lock.acquire()
    reads: List[float] = []

    def clock() -> float:  # the first reading sets the deadline; later ones are past it
        reads.append(0)
        return _time.monotonic() + (1000.0 if len(reads) > 1 else 0.0)

    releaser = later(1.0, lock.release)
    later(0.05, bridge.call_soon_threadsafe, int)
    monkeypatch.setattr(_parking, "_clock", clock)
    try:
        got = lock.acquire(timeout=0.5)
    finally:
        monkeypatch.setattr(_parking, "_clock", _time.monotonic)
    assert got is False, "acquire() waited on past its deadline"
    green_wait_native_thread(releaser, 5)


def test_waking_a_green_waiter_whose_hub_closes_its_bridge_meanwhile_is_not_an_error(
    hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waker in another thread posts the wake through the waiter's bridge; if that
    bridge closes between finding it and posting (its hub is shutting down: nobody is
    left to wake), the waker's ``set()`` still returns quietly. The interleaving is
    forced: the waker's bridge lookup closes the bridge before handing it over."""
    from eventlet_handler import _bridge, _parking

    bridge = bridge_of(hubs.get_hub(), create=True)
    event = Event()
    busy = eventlet.spawn_after(30, int)  # a live timer: the wait below is green

    def closed_meanwhile(target: Any, create: bool = False) -> Any:
        _bridge.close_bridge(target)
        return bridge

    def waker() -> None:
        until(lambda: event._waiters and event._waiters[0].hub is not None, what="a green waiter")
        monkeypatch.setattr(_parking, "bridge_of", closed_meanwhile)
        event.set()

    waking = Caller("native").run(waker)
    assert event.wait(0.5), "the flag was set"  # the wake itself is lost: the hub is closing
    try:
        waking.join(5)  # re-raises what the waker's set() raised
    finally:
        busy.cancel()
        monkeypatch.undo()
