"""The cross-thread bridge: FIFO, never loses a call, refuses after close."""

from __future__ import annotations

import logging
import os
import time
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


def test_Bridge_counts_the_calls_it_ran_and_says_when_some_are_pending(hub: str) -> None:
    bridge = local_bridge()
    assert bridge.calls_run == 0 and bridge.pending is False
    for _ in range(3):
        bridge.call_soon_threadsafe(int)
    assert bridge.pending is True  # queued from the hub's thread: no switch yet
    until(lambda: not bridge.pending, 5, "the pump to run the calls")
    assert bridge.calls_run == 3


def test_bridge_of_without_create_never_makes_one(hub: str) -> None:
    """``bridge_of(hub)`` only finds a bridge: a thread that is not the hub's may call it,
    and a bridge must be made in its hub's thread (rule 1). A closed one is not found."""
    here = current_hub()
    assert bridge_of(here) is None, "bridge_of() without create made a bridge"
    bridge = local_bridge()
    assert bridge_of(here) is bridge
    close_bridge(here)
    assert bridge_of(here) is None, "a closed bridge was still found"
    until(lambda: bridge.pump_exited, 5, "the closed bridge's pump to exit")
    assert bridge.read_fd == -1, "a retired bridge still names an fd"


def test_Bridge_whose_pipe_the_hub_obsoletes_refuses_new_calls_and_runs_those_it_had(
    hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The hub declares the pump's fd obsolete (it saw that fd number opened again) and
    throws into its listener: nothing can wake that pump any more, so the bridge refuses
    new calls (rule 3: none is stranded), runs those it accepted, and retires."""
    caplog.set_level(logging.ERROR)
    here = current_hub()
    bridge = local_bridge()
    ran: List[Any] = []
    refused: List[BaseException] = []

    def in_last_batch() -> None:
        ran.append(1)
        try:  # the bridge refuses it, or it runs: it is never stranded
            bridge.call_soon_threadsafe(ran.append, "queued by the last batch")
        except BridgeClosed as exc:
            refused.append(exc)

    bridge.call_soon_threadsafe(in_last_batch)
    here.mark_as_reopened(bridge.read_fd)
    until(lambda: bridge.pump_exited, 5, "the pump to fail and retire")
    assert ran[:1] == [1], "a call accepted before the failure did not run"
    assert refused or ran == [1, "queued by the last batch"], "a call accepted during the last batch never ran"
    with pytest.raises(BridgeClosed):
        bridge.call_soon_threadsafe(ran.append, 2)
    assert bridge_of(here) is None and bridge.read_fd == -1
    assert local_bridge() is not bridge  # a fresh one on demand
    assert any("pipe failed" in r.getMessage() for r in caplog.records), caplog.records


def test_Bridge_wake_byte_meeting_a_torn_down_pipe_is_not_the_callers_error(hub: str) -> None:
    """EBADF on the wake byte (the pipe of a torn-down hub, or a parent's after fork) is
    not raised into whoever queued the call."""
    bridge = local_bridge()
    wfd, bridge._wfd = bridge._wfd, 1 << 30  # no such fd: os.write gives EBADF
    try:
        bridge.call_soon_threadsafe(int)
    finally:
        bridge._wfd = wfd


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork() on this platform")
def test_bridge_of_in_a_forked_child_never_returns_the_parents_bridge(hub: str) -> None:
    """After ``fork()`` the parent's bridges share their pipes with the parent (rule 9):
    the child finds none, and makes its own on demand."""
    here = current_hub()
    parent_bridge = local_bridge()
    pid = os.fork()
    if pid == 0:  # the child: only this thread; report by exit status, never return
        try:
            status = 0 if bridge_of(here) is None and bridge_of(here, create=True) is not parent_bridge else 1
        except BaseException:
            status = 2
        os._exit(status)
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            raise AssertionError("the forked child did not exit within 10 s")
        eventlet.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, "the forked child found the parent's bridge (1) or raised (2)"


def test_close_bridge_losing_a_race_to_another_close_bridge_is_quiet(hub: str) -> None:
    """Two ``close_bridge(hub)`` at once: the one that finds the bridge already forgotten
    (the other deleted it between its lookup and its delete) closes it too, quietly.
    The interleaving is forced: the first delete runs the second close_bridge first."""
    from eventlet_handler import _bridge

    here = current_hub()
    bridge = local_bridge()
    real_class = type(here)
    raced: List[bool] = []

    class RacedHub(real_class):  # type: ignore[misc, valid-type]
        def __delattr__(self, name: str) -> None:
            if name == _bridge._ATTR and not raced:
                raced.append(True)
                close_bridge(self)  # the concurrent one wins
            super().__delattr__(name)

    here.__class__ = RacedHub
    try:
        close_bridge(here)
    finally:
        here.__class__ = real_class
    assert raced and bridge_of(here) is None
    until(lambda: bridge.pump_exited, 5, "the closed bridge's pump to exit")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork() on this platform")
def test_parents_pump_in_a_forked_child_retires_when_it_next_runs(hub: str) -> None:
    """Rule 9: a wake byte pending at ``fork()`` lets the parent's pump run once in the
    child; there it retires (its pipe is the parent's) instead of serving on.

    The parent waits for the child natively (its hub does not run meanwhile), so only
    the child's pump can read the byte. poll and select hubs only: an epoll instance
    (the epolls hub's, the asyncio loop's selector) is shared with the child across
    ``fork()``, so the child's retiring unregisters the fd in the parent's too."""
    if hub not in ("poll", "selects"):
        pytest.skip(f"the {hub} hub's epoll instance is shared with a forked child")

    here = current_hub()
    bridge = local_bridge()
    bridge.call_soon_threadsafe(int)  # the wake byte is in the pipe; no switch until the fork
    pid = os.fork()
    if pid == 0:  # the child: only this thread; report by exit status, never return
        status = 1
        try:
            deadline = time.monotonic() + 5
            while not bridge.pump_exited and time.monotonic() < deadline:
                eventlet.sleep(0.001)
            status = 0 if bridge.pump_exited else 1
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)  # the child exits within its 5 s
    close_bridge(here)  # the parent's call lost its byte to the child: close runs it
    until(lambda: bridge.pump_exited, 5, "the parent's pump to exit")
    assert (os.waitstatus_to_exitcode(status)) == 0, "the parent's pump kept serving in the forked child"


def test_Bridge_pump_runs_calls_while_a_producer_holds_the_bridge_lock(hub: str) -> None:
    """Rule 10: the pump never takes the producers' lock (waiting for it costs the hub
    thread two thread switches per wake, while a producer finishes its wake write)."""
    bridge = local_bridge()
    ran: List[str] = []
    bridge.call_soon_threadsafe(ran.append, "call")
    seen: List[bool] = []

    def hold_the_lock() -> None:
        with bridge._lock:
            deadline = time.monotonic() + 2.0
            while not ran and time.monotonic() < deadline:
                time.sleep(0.005)
            seen.append(bool(ran))

    holder = _threading.Thread(target=hold_the_lock, daemon=True)
    holder.start()
    green_wait_native_thread(holder, 10)
    assert seen == [True], "the pump waited for the lock a producer held"
