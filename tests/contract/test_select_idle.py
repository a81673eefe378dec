"""select rule 5: on an idle hub the wait is one native poll that a bridge call wakes."""

from __future__ import annotations

import os
import time
from typing import Any, Iterator, List, Tuple

import eventlet
import pytest
from eventlet import hubs

from eventlet_handler._bridge import bridge_of
from eventlet_handler._hubs import current_hub
from eventlet_handler._select import select
from support import later, native_os as _os

NATIVE_WAIT_HUBS = ("epolls", "poll", "selects")


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
    later(0.05, bridge.call_soon_threadsafe, eventlet.spawn_n, _os.write, wfd, b"x")
    started = time.monotonic()
    ready = select([rfd], [], [], 3.0)
    elapsed = time.monotonic() - started
    assert ready == ([rfd], [], [])
    assert elapsed < 2.0


def test_idle_select_times_out_with_its_own_timeout_after_a_bridge_call(hub: str, pipe: Tuple[int, int]) -> None:
    rfd, _wfd = pipe
    bridge = bridge_of(hubs.get_hub(), create=True)
    later(0.3, bridge.call_soon_threadsafe, int)  # wakes the poll, readies nothing
    started = time.monotonic()
    ready = select([rfd], [], [], 0.4)
    elapsed = time.monotonic() - started
    assert ready == ([], [], [])
    assert 0.35 <= elapsed < 0.6  # the time left (0.1 s), not a fresh 0.4 s, nor nothing
