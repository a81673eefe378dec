"""select rule 5: on an idle hub the wait is one native poll that a bridge call wakes."""

from __future__ import annotations

import os
import time
from typing import Any, Iterator, List, Tuple

import eventlet
import pytest
from eventlet import hubs

from eventlet_handler._bridge import bridge_of
from eventlet_handler._hubs import current_hub, hub_is_idle
from eventlet_handler._select import select
from support import later, native_os as _os

NATIVE_WAIT_HUBS = ("epolls", "poll", "selects")


def _jump_select_clock(monkeypatch: pytest.MonkeyPatch, jump: float) -> List[int]:
    """Make ``_select``'s clock jump ``jump`` seconds after its first reading (the
    deadline's), so the time-left reading sees it; returns the list of readings."""
    from eventlet_handler import _select

    readings: List[int] = []

    def clock() -> float:
        readings.append(0)
        return time.monotonic() + (jump if len(readings) > 1 else 0.0)

    monkeypatch.setattr(_select, "_clock", clock)
    return readings


@pytest.fixture
def pipe() -> Iterator[Tuple[int, int]]:
    rfd, wfd = os.pipe()
    yield rfd, wfd
    os.close(rfd)
    os.close(wfd)


def _recording_adds(hub: Any) -> List[int]:
    added: List[int] = []
    original = hub.add

    def add(evtype: Any, fileno: int, *rest: Any) -> Any:
        added.append(fileno)
        return original(evtype, fileno, *rest)

    hub.add = add  # an instance attribute: only this hub, only this test
    return added


def test_idle_hub_select_waits_natively_and_answers(hub: str, pipe: Tuple[int, int]) -> None:
    rfd, wfd = pipe
    bridge_of(hubs.get_hub(), create=True)
    added = _recording_adds(current_hub())
    try:
        later(0.05, _os.write, wfd, b"x")
        ready = select([rfd], [], [], 3.0)
    finally:
        del current_hub().add
    assert ready == ([rfd], [], [])
    if hub in NATIVE_WAIT_HUBS:
        assert rfd not in added  # no listener added and removed


def test_bridge_call_wakes_the_native_select_and_runs_first(hub: str, pipe: Tuple[int, int]) -> None:
    # Only a green thread the bridge starts can make the fd readable: a native poll
    # the bridge's fd did not wake would sit out the whole timeout.
    rfd, wfd = pipe
    bridge = bridge_of(hubs.get_hub(), create=True)
    late: List[bool] = []
    later(2.0, late.append, True)  # an order check: the select answers before this flag
    later(0.05, bridge.call_soon_threadsafe, eventlet.spawn_n, _os.write, wfd, b"x")
    ready = select([rfd], [], [], 30.0)
    assert ready == ([rfd], [], []) and not late, f"select answered {ready} only after {late and 'the flag'}"


def test_idle_select_times_out_with_its_own_timeout_after_a_bridge_call(
    hub: str, pipe: Tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a bridge call wakes the native poll, the select waits green for the time
    left of its own timeout: not a fresh timeout, and not nothing. The time left is
    made 0.7 s of a 5 s timeout by a clock that jumps 4 s at its time-left reading,
    so the bounds (at least 0.6 s, under 3 s) keep seconds of margin on a loaded
    machine: a fresh timeout ends after 5.3 s, no wait at all after 0.3 s. A hub
    with no native wait (asyncio) waits green throughout: its 1 s timeout, unjumped."""
    rfd, _wfd = pipe
    bridge = bridge_of(hubs.get_hub(), create=True)
    native = hub in NATIVE_WAIT_HUBS
    if native:
        _jump_select_clock(monkeypatch, 4.0)
    later(0.3, bridge.call_soon_threadsafe, int)  # wakes the poll, readies nothing
    started = time.monotonic()
    ready = select([rfd], [], [], 5.0 if native else 1.0)
    elapsed = time.monotonic() - started
    monkeypatch.undo()
    assert ready == ([], [], [])
    assert 0.6 <= elapsed < 3.0, f"{elapsed:.2f} s: not the time left (about 1.0 s in all)"


def test_idle_hub_select_is_one_poll(hub: str, pipe: Tuple[int, int], monkeypatch: Any) -> None:
    """The native poll comes first on an idle hub: it answers at once for a ready fd,
    so a zero-timeout poll before it would be one syscall (a GIL release) more."""
    from eventlet_handler import _select

    rfd, wfd = pipe
    bridge_of(hubs.get_hub(), create=True)
    polls: List[int] = []
    real = _select._select_mod

    class CountingPoll:
        def __init__(self) -> None:
            self._poll = real.poll()

        def register(self, *args: Any) -> None:
            self._poll.register(*args)

        def poll(self, *args: Any) -> Any:
            polls.append(1)
            return self._poll.poll(*args)

    class CountingSelect:  # the unpatched select module, its poll objects counting polls
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        poll = CountingPoll

    monkeypatch.setattr(_select, "_select_mod", CountingSelect())
    later(0.05, _os.write, wfd, b"x")
    assert select([rfd], [], [], 3.0) == ([rfd], [], [])
    if hub in NATIVE_WAIT_HUBS:
        assert len(polls) == 1


def test_idle_select_with_nothing_happening_ends_at_its_own_timeout(hub: str, pipe: Tuple[int, int]) -> None:
    """An order check: nothing readies the fd nor calls the bridge, so the native poll
    itself must end the wait, at the select's timeout (0.1 s), before a flag a native
    thread raises 0.9 s in (a native thread: a green timer would make the hub busy)."""
    rfd, _wfd = pipe
    bridge_of(hubs.get_hub(), create=True)
    late: List[bool] = []
    added = _recording_adds(current_hub())
    try:
        later(0.9, late.append, True)
        ready = select([rfd], [], [], 0.1)
    finally:
        del current_hub().add
    assert ready == ([], [], []) and not late, f"select answered {ready} only after {late and 'the flag'}"
    if hub in NATIVE_WAIT_HUBS:
        assert rfd not in added  # the native wait, not a green one


def test_select_answered_before_its_timeout_leaves_the_hub_idle(hub: str) -> None:
    """A green select that the fd answers cancels its timeout's timer: left live, that
    timer (30 s here) would keep the hub from idling, and every later select in it
    would wait green instead of natively (rule 8)."""
    import socket

    bridge = bridge_of(hubs.get_hub(), create=True)
    a, b = socket.socketpair()
    try:
        eventlet.spawn_after(0.05, b.send, b"x")  # a busy hub: the select waits green
        assert select([a], [], [], 30.0)[0] == [a]
        eventlet.sleep(0)  # the sender's green thread ends
        if hub in NATIVE_WAIT_HUBS:
            assert hub_is_idle(current_hub(), bridge), "the select's timer outlived it"
    finally:
        a.close()
        b.close()


def test_idle_select_woken_by_the_bridge_after_its_deadline_answers_at_once(
    hub: str, pipe: Tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bridge call that wakes the native poll at or past the select's deadline leaves
    no time to wait green: the select answers "nothing ready" on the hub's next round,
    before a flag a native thread raises 2 s in. The race (the bridge wake and the
    deadline together) is forced: the clock jumps 100 s past the deadline between the
    deadline's reading and the time-left one."""
    rfd, _wfd = pipe
    bridge = bridge_of(hubs.get_hub(), create=True)
    readings = _jump_select_clock(monkeypatch, 100.0)
    late: List[bool] = []
    later(2.0, late.append, True)
    later(0.05, bridge.call_soon_threadsafe, int)  # wakes the poll, readies nothing
    ready = select([rfd], [], [], 1.0)
    monkeypatch.undo()
    assert ready == ([], [], []) and not late, f"select answered {ready} only after {late and 'the flag'}"
    if hub in NATIVE_WAIT_HUBS:
        assert len(readings) == 2, "the select did not wait natively"
