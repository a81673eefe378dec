"""Parking rule 5: a green caller of an idle hub waits natively, and nothing else in
that hub is ever held up by it (a timer, an fd listener, a bridge call)."""

from __future__ import annotations

import socket
import time
from typing import Any, List

import eventlet
import pytest
from eventlet import hubs

from eventlet_handler._bridge import bridge_of
from eventlet_handler._hubs import current_hub
from eventlet_handler._parking import Waiter
from eventlet_handler._primitives import Event
from support import later, native_threading as _threading

NATIVE_WAIT_HUBS = ("epolls", "poll", "selects")  # the asyncio hub always waits green


def test_idle_hub_waiter_is_woken_by_a_native_thread_without_a_bridge_call(hub: str) -> None:
    bridge = bridge_of(hubs.get_hub(), create=True)
    waiter = Waiter()
    native = waiter.hub is None
    event = Event()
    before = bridge.calls_run
    later(0.05, event.set)
    assert event.wait(5.0)
    assert native == (hub in NATIVE_WAIT_HUBS)
    if native:
        assert bridge.calls_run == before  # woken by a lock release: no pipe byte, no pump round


def test_bridge_call_interrupts_the_native_wait_and_runs_in_the_hub(hub: str) -> None:
    # The setter is a green thread that only a bridge call can start: a native wait
    # that a bridge call does not interrupt would sit out its whole timeout.
    bridge = bridge_of(hubs.get_hub(), create=True)
    event = Event()
    ran_in: List[Any] = []
    here = current_hub()

    def green_setter() -> None:
        ran_in.append(current_hub())
        event.set()

    later(0.05, bridge.call_soon_threadsafe, eventlet.spawn_n, green_setter)
    started = time.monotonic()
    assert event.wait(3.0)
    assert ran_in == [here]
    assert time.monotonic() - started < 2.0


def test_a_live_timer_keeps_the_wait_green(hub: str) -> None:
    event = Event()
    bridge_of(hubs.get_hub(), create=True)
    eventlet.spawn_after(0.05, event.set)  # only the hub's timer can set it
    assert event.wait(3.0)


def test_an_fd_listener_keeps_the_wait_green(hub: str) -> None:
    from eventlet.green import socket as green_socket

    bridge_of(hubs.get_hub(), create=True)
    event = Event()
    a, b = green_socket.socketpair()

    def reader() -> None:  # parked on the hub's listener for a, nothing else
        a.recv(1)
        event.set()

    eventlet.spawn_n(reader)
    eventlet.sleep(0)  # the reader registers its listener
    raw = socket.socket(fileno=b.detach())

    later(0.05, raw.send, b"x")
    try:
        assert event.wait(3.0)
    finally:
        a.close()
        raw.close()


@pytest.mark.parametrize("rounds", [200])
def test_native_wakes_race_with_bridge_calls_and_timeouts(hub: str, rounds: int) -> None:
    # Every wait returns True, promptly; a wake lost between the native and the green
    # wait would sit out the timeout (and return only because the flag is set).
    bridge = bridge_of(hubs.get_hub(), create=True)
    lost: List[int] = []
    for i in range(rounds):
        started = time.monotonic()
        event = Event()

        def both(event: Event = event) -> None:
            bridge.call_soon_threadsafe(int)  # interrupts the native wait...
            event.set()                       # ...as the real wake lands

        thread = _threading.Thread(target=both, daemon=True)
        thread.start()
        if not event.wait(2.0) or time.monotonic() - started > 1.0:
            lost.append(i)
        thread.join(2.0)
    assert lost == []
