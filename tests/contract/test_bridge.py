"""The cross-thread bridge: FIFO, never loses a call, refuses after close."""

from __future__ import annotations

import logging
from typing import Any, List

import eventlet
import pytest
from eventlet import hubs

from support import green_wait_native_thread, native_threading as _threading, until
from eventlet_handler._bridge import BridgeClosed, bridge_of, close_bridge
from eventlet_handler._hubs import current_hub


def local_bridge() -> Any:
    bridge = bridge_of(hubs.get_hub(), create=True)
    assert bridge is not None
    return bridge


def test_Bridge_call_soon_threadsafe_native_stress_runs_every_call_in_order(hub: str) -> None:
    bridge = local_bridge()
    here = current_hub()
    runs: dict = {}
    wrong_hub: List[int] = []

    def record(producer: int, n: int) -> None:
        if current_hub() is not here:
            wrong_hub.append(n)
        runs.setdefault(producer, []).append(n)

    def produce(producer: int) -> None:
        for n in range(5000):
            bridge.call_soon_threadsafe(record, producer, n)

    threads = [_threading.Thread(target=produce, args=(p,), daemon=True) for p in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        green_wait_native_thread(thread, 20)
    # No further call is queued to end the test: one would wake the pump and run
    # whatever a lost wake-up had stranded. The calls must all run on their own.
    until(lambda: sum(map(len, runs.values())) == 4 * 5000, 10, "every call to run")
    assert wrong_hub == []
    assert {p: runs[p] for p in range(4)} == {p: list(range(5000)) for p in range(4)}


def test_Bridge_call_queued_while_a_batch_runs_is_woken_for(hub: str) -> None:
    """A call queued while the pump runs a batch (by a call of that batch, or by a
    native thread at that moment) runs without any later call to wake the pump."""

    bridge = local_bridge()
    ran: List[str] = []
    queued = _threading.Event()

    def from_native() -> None:
        bridge.call_soon_threadsafe(ran.append, "native")
        queued.set()

    def in_batch() -> None:
        ran.append("batch")
        bridge.call_soon_threadsafe(ran.append, "from the pump")
        _threading.Thread(target=from_native, daemon=True).start()
        assert queued.wait(5), "the native thread did not queue its call"  # a brief native wait

    bridge.call_soon_threadsafe(in_batch)
    until(lambda: len(ran) == 3, 5, "the calls queued during the batch to run")
    assert ran == ["batch", "from the pump", "native"]


def test_Bridge_refuses_after_close_and_runs_calls_queued_before(hub: str) -> None:
    bridge = local_bridge()
    ran: List[int] = []
    bridge.call_soon_threadsafe(ran.append, 1)
    close_bridge(current_hub())
    with pytest.raises(BridgeClosed, match="shut down"):
        bridge.call_soon_threadsafe(ran.append, 2)
    for _ in range(100):
        if bridge.pump_exited:
            break
        eventlet.sleep(0)
    assert ran == [1] and bridge.pump_exited
    assert local_bridge() is not bridge  # a fresh one on demand


def test_Bridge_call_that_raises_is_logged_and_pump_goes_on(
    hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = local_bridge()
    done = eventlet.event.Event()
    with caplog.at_level(logging.ERROR):
        bridge.call_soon_threadsafe(lambda: 1 / 0)
        bridge.call_soon_threadsafe(done.send, True)
        with eventlet.Timeout(5):
            done.wait()
    logged = [r for r in caplog.records if r.name == "eventlet_handler._bridge" and r.exc_info]
    assert logged and logged[0].exc_info[0] is ZeroDivisionError, caplog.records
