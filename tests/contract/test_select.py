"""``handler.select`` (eventlet_handler/_select.py), on every hub.

Rules under test: selects of one fd from several green threads of one hub, and from
native threads, all answer, as with the stdlib (eventlet's own green select refuses
the second: "Second simultaneous read on fileno"); a poll (``timeout=0``) registers
no hub listener, so an application may poll the fd kazoo's connection loop waits on;
a native thread with no hub selects natively and gets no hub; a stale hub callback of
an answered select never switches into the green thread's next select.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Iterator, List, Tuple

import eventlet
import pytest

from support import Caller, green_wait_native_thread, native_threading as _threading
from eventlet_handler import EventletHandler
from eventlet_handler._hubs import current_hub


pytestmark = pytest.mark.timeout(60)

WAIT = 5.0
NOTHING: Tuple[list, list, list] = ([], [], [])


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    """A real socketpair: ``pair[0]`` is selected on, ``pair[1]`` makes it readable."""
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def _park(handler: EventletHandler, sock: Any, answers: List[Any]) -> Any:
    """A green thread of this hub waiting in select on ``sock``, as kazoo's loop does."""
    gt = eventlet.spawn(lambda: answers.append(handler.select([sock], [], [], WAIT)))
    eventlet.sleep(0.05)
    assert not answers, "select answered before the fd was ready"
    return gt


@pytest.mark.parametrize("caller", ["other_green", "native"], indirect=True)
@pytest.mark.parametrize("timeout", [0, WAIT], ids=["poll", "wait"])
def test_select_of_one_fd_while_another_green_thread_waits_on_it(
    hub: str, eventlet_handler: EventletHandler, pair: Any, caller: Caller, timeout: float
) -> None:
    a, b = pair

    parked: List[Any] = []
    gt = _park(eventlet_handler, a, parked)
    seen: List[Any] = []
    hubs_after: List[Any] = []

    def second() -> None:
        if timeout == 0:
            seen.append(eventlet_handler.select([a], [], [], 0))  # nothing ready yet
            b.send(b"x")
            seen.append(eventlet_handler.select([a], [], [], 0))
        else:
            seen.append(eventlet_handler.select([a], [], [], timeout))
        hubs_after.append(current_hub())

    done = caller.run(second)
    if timeout:
        eventlet.sleep(0.05)
        assert not seen, "the second select answered before the fd was ready"
        b.send(b"x")
    done.join(WAIT * 2)
    with eventlet.Timeout(WAIT * 2):
        gt.wait()
    expected = [NOTHING, ([a], [], [])] if timeout == 0 else [([a], [], [])]
    assert seen == expected
    assert parked == [([a], [], [])], "the waiting select did not answer"
    if caller.kind == "native":
        assert hubs_after == [None], "a native thread's select created a hub for it"


def test_select_many_green_threads_wait_on_one_fd_all_answer(
    hub: str, eventlet_handler: EventletHandler, pair: Any
) -> None:
    a, b = pair

    answers: List[Any] = []
    threads = [eventlet.spawn(lambda: answers.append(eventlet_handler.select([a], [], [], WAIT)))
               for _ in range(20)]
    eventlet.sleep(0.05)
    assert not answers
    b.send(b"x")
    with eventlet.Timeout(WAIT * 2):
        for gt in threads:
            gt.wait()
    assert answers == [([a], [], [])] * 20
    # Every waiter left: the next select on the fd waits again, and times out.
    a.recv(1)
    began = time.monotonic()
    assert eventlet_handler.select([a], [], [], 0.1) == NOTHING
    assert time.monotonic() - began >= 0.09


def test_select_native_thread_without_hub_waits_natively(
    eventlet_handler: EventletHandler, pair: Any
) -> None:
    a, b = pair
    seen: List[Any] = []

    def native() -> None:
        seen.append(eventlet_handler.select([a], [], [], 0.05))
        seen.append(eventlet_handler.select([a], [], [], WAIT))
        seen.append(current_hub())

    thread = _threading.Thread(target=native, daemon=True)
    thread.start()
    time.sleep(0.2)
    b.send(b"x")
    thread.join(WAIT * 2)
    assert not thread.is_alive()
    assert seen == [NOTHING, ([a], [], []), None]


def test_select_stale_callback_of_an_answered_select_never_switches_in(
    hub: str, eventlet_handler: EventletHandler
) -> None:
    """Two fds of one select turn ready in the same hub poll: the first callback answers,
    the green thread goes on into a second select (of a third fd, never ready), then the
    hub runs the second, stale callback. It must not answer the second select."""
    pairs = [socket.socketpair() for _ in range(3)]
    (a, a_peer), (b, b_peer), (c, _) = pairs
    results: List[Any] = []

    def loop() -> None:
        results.append(eventlet_handler.select([a, b], [], [], WAIT))
        results.append(eventlet_handler.select([c], [], [], 0.3))

    try:
        gt = eventlet.spawn(loop)
        eventlet.sleep(0.05)
        a_peer.send(b"x")  # both ready before the hub polls again
        b_peer.send(b"x")
        with eventlet.Timeout(WAIT * 2):
            gt.wait()
    finally:
        for x, y in pairs:
            x.close()
            y.close()
    assert len(results) == 2
    assert results[0] == ([a, b], [], []), "select returned less than what was ready"
    assert results[1] == NOTHING, f"a stale callback answered the next select: {results[1]}"


def test_select_poll_registers_no_hub_listener(hub: str, eventlet_handler: EventletHandler, pair: Any) -> None:
    a, _ = pair

    here = current_hub()
    added: List[Any] = []
    original_add = here.add
    here.add = lambda *args: added.append(args) or original_add(*args)
    try:
        for _ in range(100):
            assert eventlet_handler.select([a], [], [], 0) == NOTHING
    finally:
        del here.add
    assert added == [], "a poll (timeout=0) registered hub listeners"


def test_select_native_waiter_unblocks_when_a_green_thread_makes_the_fd_ready(
    hub: str, eventlet_handler: EventletHandler, pair: Any
) -> None:
    """The green and native selects of one fd are independent (the native one holds no
    hub listener); checked from the green side too."""
    a, b = pair

    seen: List[Any] = []
    thread = _threading.Thread(target=lambda: seen.append(eventlet_handler.select([a], [], [], WAIT)),
                               daemon=True)
    thread.start()
    parked: List[Any] = []
    gt = _park(eventlet_handler, a, parked)
    b.send(b"x")
    green_wait_native_thread(thread, WAIT * 2)
    with eventlet.Timeout(WAIT * 2):
        gt.wait()
    assert seen == parked == [([a], [], [])]
