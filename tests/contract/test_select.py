"""``handler.select`` (eventlet_handler/_select.py), on every hub.

Rules under test: selects of one fd from several green threads of one hub, and from
native threads, all answer, as with the stdlib (eventlet's own green select refuses
the second: "Second simultaneous read on fileno"); a poll (``timeout=0``) registers
no hub listener, so an application may poll the fd kazoo's connection loop waits on;
a native thread with no hub selects natively and gets no hub; a hub callback never
switches into a select that already returned (rules 1, 2); a woken select returns
everything ready (rule 7); a loop of selects on always-ready fds gets every fd and lets
its hub run (rule 4).
"""

from __future__ import annotations

import socket
import time
from typing import Any, Iterator, List, Tuple

import eventlet
import greenlet
import pytest

from support import Caller, green_wait_native_thread, native_threading as _threading, socket_pairs
from eventlet_handler import EventletHandler
from eventlet_handler._hubs import current_hub


pytestmark = pytest.mark.timeout(60)

WAIT = 5.0
NOTHING: Tuple[list, list, list] = ([], [], [])


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    """A real socketpair: ``pair[0]`` is selected on, ``pair[1]`` makes it readable."""
    with socket_pairs() as [ends]:
        yield ends


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
    hub runs the second, stale callback. It must not answer the second select, and the
    first returns both fds (rule 7). Leaving the shared listeners and the answered flag
    both keep the stale callback out: only the next test fails with one of them gone."""
    results: List[Any] = []
    with socket_pairs(3) as [(a, a_peer), (b, b_peer), (c, _)]:

        def loop() -> None:
            results.append(eventlet_handler.select([a, b], [], [], WAIT))
            results.append(eventlet_handler.select([c], [], [], 0.3))

        gt = eventlet.spawn(loop)
        eventlet.sleep(0.05)
        a_peer.send(b"x")  # both ready before the hub polls again
        b_peer.send(b"x")
        with eventlet.Timeout(WAIT * 2):
            gt.wait()
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


class _Interrupt(Exception):
    pass


def test_select_answered_by_one_callback_never_switches_into_a_select_that_returned(
    hub: str, eventlet_handler: EventletHandler
) -> None:
    """Rules 1 and 2: two green threads wait in a select of one fd, so one hub callback
    answers both, in turn. The first, answered, interrupts the second (a synchronous
    throw, as a kill from another green thread), which goes on into a select of an fd
    never ready; then the callback reaches the second's old call. It must not switch
    in: that would hand the new select the old answer."""
    first: List[Any] = []
    second: List[Any] = []
    greens: List[Any] = []
    with socket_pairs(2) as [(a, a_peer), (c, _)]:

        def answered_first() -> None:
            first.append(eventlet_handler.select([a], [], [], WAIT))
            # Resume this green thread on the hub's next round, then hand control to the
            # other one at once, still inside the callback that answered this select.
            eventlet.hubs.get_hub().schedule_call_global(0, greenlet.getcurrent().switch)
            greens[1].throw(_Interrupt())

        def interrupted() -> None:
            try:
                second.append(eventlet_handler.select([a], [], [], WAIT))
            except _Interrupt:
                second.append("interrupted")
            second.append(eventlet_handler.select([c], [], [], 0.3))

        greens.extend([eventlet.spawn(answered_first), eventlet.spawn(interrupted)])
        eventlet.sleep(0.05)  # both wait on a's one shared listener, in this order
        a_peer.send(b"x")
        with eventlet.Timeout(WAIT * 2):
            for gt in greens:
                gt.wait()
    assert first == [([a], [], [])]
    assert second == ["interrupted", NOTHING], f"a returned select was switched into: {second}"


@pytest.mark.parametrize("ready", ["read", "write"])
def test_select_on_always_ready_fds_lets_the_hub_run_and_answers_every_fd(
    hub: str, eventlet_handler: EventletHandler, ready: str
) -> None:
    """Rule 4: a loop selecting fds that are always ready (kazoo's connection loop under
    load) gets every ready fd each time, never only the first, and yields to its hub
    every FAIR_EVERY answers, so the hub's other green threads run meanwhile."""
    from eventlet_handler._select import FAIR_EVERY

    ticks: List[int] = []
    during: List[int] = []
    rounds = FAIR_EVERY * 10

    def ticker() -> None:
        while len(during) < rounds:
            ticks.append(1)
            eventlet.sleep(0)

    with socket_pairs(2) as [(a, a_peer), (b, b_peer)]:
        a_peer.send(b"x")  # never read: a and b stay readable (and writable)
        b_peer.send(b"x")
        rlist, wlist = ([a, b], []) if ready == "read" else ([], [a, b])
        expected = (rlist, wlist, [])
        gt = eventlet.spawn(ticker)
        eventlet.sleep(0)  # the ticker runs once, then waits for the hub
        answers = []
        for _ in range(rounds):
            answers.append(eventlet_handler.select(rlist, wlist, [], WAIT))
            during.append(len(ticks))
        with eventlet.Timeout(WAIT):
            gt.wait()
    assert answers == [expected] * rounds, "a select left out a ready fd"
    ran = during[-1] - during[0]
    assert ran >= 10 - 1, f"the hub ran its other green threads {ran} times in {rounds} selects"
