"""``_select``'s rules that its contract tests did not pin: fairness toward the hub's
other green threads (rule 4), a busy hub's select waits green (rule 8 only for an
idle hub), and what counts as an fd (closed, invalid, in any list)."""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import Any, Iterator, List

import eventlet
import pytest
from eventlet import hubs

from support import fill_send_buffer, in_native_thread, later, socket_pairs
from eventlet_handler._bridge import bridge_of
from eventlet_handler._select import FAIR_EVERY, select




@contextlib.contextmanager
def _ticker() -> Iterator[List[int]]:
    """A green thread of this hub counting its turns in ``ticks[0]`` until the block ends."""
    ticks, stop = [0], [False]

    def tick() -> None:
        while not stop[0]:
            ticks[0] += 1
            eventlet.sleep(0)

    eventlet.spawn_n(tick)
    eventlet.sleep(0)
    try:
        yield ticks
    finally:
        stop[0] = True

def test_select_on_ever_ready_fds_lets_the_hubs_other_green_threads_run(hub: str) -> None:
    """Rule 4: a caller looping on an fd that is always ready gets its answers without a
    switch, but every ``FAIR_EVERY`` of them the hub's other green threads run, however
    long the loop goes on: about 10 turns for the ticker in 10 x FAIR_EVERY selects, not
    none after the first few, and not one per select."""
    with socket_pairs() as [(a, b)], _ticker() as ticks:
        b.send(b"x")  # a stays readable
        before = ticks[0]
        for _ in range(10 * FAIR_EVERY):
            assert select([a], [], [], 5)[0] == [a]
        turns = ticks[0] - before
    assert 9 <= turns <= 15, f"the ticker ran {turns} times during {10 * FAIR_EVERY} ready selects"


def test_select_of_a_ready_fd_answers_without_a_switch_first_and_after_a_wait(hub: str) -> None:
    """Rule 4's fast path: a ready select returns without letting the hub's other green
    threads run, the hub's very first one and the first after a select that did not
    answer at once (the fairness count starts over there) included: only every
    ``FAIR_EVERY``-th fast answer in a row yields."""
    with socket_pairs(2) as [(a, b), (c, _d)], _ticker() as ticks:
        b.send(b"x")  # a stays readable; c never is
        before = ticks[0]
        assert select([a], [], [], 5)[0] == [a]
        assert ticks[0] == before, "the hub's first ready select let other green threads run"
        assert select([c], [], [], 0) == ([], [], [])  # not at once: the count starts over
        before = ticks[0]
        assert select([a], [], [], 5)[0] == [a]
        assert ticks[0] == before, "the first ready select after a waiting one let other green threads run"


def test_select_in_a_busy_hub_waits_green(hub: str) -> None:
    """Rule 8 is for an idle hub only: with a green thread due to run (a timer), select
    waits green, so that green thread runs and can make the fd ready."""
    bridge_of(hubs.get_hub(), create=True)
    with socket_pairs() as [(a, b)]:
        eventlet.spawn_after(0.05, b.send, b"x")  # only the hub can run it
        ready = select([a], [], [], 3.0)[0]
    assert ready == [a], "select waited natively in a busy hub: the green writer never ran"


class _ClosedEnd:
    """Like a closed wake pair end: ``fileno()`` raises ``OSError``."""

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "closed")


@pytest.mark.parametrize("where", ["rlist", "wlist", "xlist"])
def test_select_refuses_closed_and_invalid_objects_in_every_list(where: str) -> None:
    def lists(obj: Any) -> List[List[Any]]:
        return [[obj] if name == where else [] for name in ("rlist", "wlist", "xlist")]

    closed_socket = socket.socket()
    closed_socket.close()  # fileno() is -1 now
    for closed_obj in (_ClosedEnd(), closed_socket):
        with pytest.raises(OSError) as closed:
            select(*lists(closed_obj), 0)
        assert closed.value.errno == errno.EBADF, closed_obj
    with pytest.raises(TypeError):
        select(*lists(object()), 0)


@pytest.mark.parametrize("where", ["rlist", "wlist"])
def test_select_of_an_fd_that_is_not_open_raises_EBADF(where: str) -> None:
    """As the stdlib's: an fd number that is not open (poll says POLLNVAL) is EBADF,
    alone or beside a ready one; not "nothing ready" at once, which a select without
    a timeout must never answer."""
    import os

    a, b = socket.socketpair()  # a is writable; made first, so it cannot take r's number
    r, w = os.pipe()
    os.close(r)
    os.close(w)  # r is not open now
    try:
        for ready in ([], [a]):
            lists = ([r], ready) if where == "rlist" else (ready, [r])

            def native() -> Any:
                try:
                    return select(*lists, [], None)
                except OSError as exc:
                    return exc

            got = in_native_thread(native)
            assert isinstance(got, OSError) and got.errno == errno.EBADF, (ready, got)
    finally:
        a.close()
        b.close()


def test_select_takes_fd_0_like_any_other() -> None:
    """fd 0 is an fd (stdin's, or whatever the process put there): only negative
    numbers mean a closed socket. Here fd 0 is a socketpair end for the while."""
    import os

    a, b = socket.socketpair()
    try:
        saved = os.dup(0)
    except OSError:
        saved = None  # fd 0 was not open
    os.dup2(a.fileno(), 0)
    try:
        assert in_native_thread(lambda: select([], [0], [], 3.0)) == ([], [0], [])
    finally:
        if saved is None:
            os.close(0)
        else:
            os.dup2(saved, 0)
            os.close(saved)
        a.close()
        b.close()


def test_select_counts_urgent_data_as_readable() -> None:
    """A TCP socket with only out-of-band data pending is readable (POLLPRI): a reader
    waiting on it is not left asleep while the peer's byte sits there."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname()[:2])
    accepted, _ = server.accept()
    try:
        client.send(b"!", socket.MSG_OOB)
        assert select([accepted], [], [], 5)[0] == [accepted]
    finally:
        for sock in (client, accepted, server):
            sock.close()


def test_native_select_waits_for_its_timeout_or_for_ever_without_one() -> None:
    """Rule 6: a native thread with no hub selects natively: with a timeout it returns
    empty after it, without one it waits until the fd is ready."""
    with socket_pairs() as [(a, b)]:
        assert in_native_thread(lambda: select([a], [], [], 0.2)) == ([], [], [])
        later(0.2, b.send, b"x")
        assert in_native_thread(lambda: select([a], [], [], None))[0] == [a]


def test_native_select_of_an_fd_in_both_lists_answers_when_it_turns_readable() -> None:
    with socket_pairs() as [(a, b)]:
        fill_send_buffer(a)  # neither readable nor writable
        later(0.1, b.send, b"y")
        ready = in_native_thread(lambda: select([a], [a], [], 3.0))
        assert ready[0] == [a], f"the fd selected for reading and writing never answered: {ready}"


@pytest.mark.parametrize("only", ["writable", "readable"])
def test_select_of_an_fd_in_both_lists_that_is_only_one_says_only_that(only: str) -> None:
    with socket_pairs() as [(a, b)]:
        if only == "readable":
            fill_send_buffer(a)
            b.send(b"z")
        expected = ([a], [], []) if only == "readable" else ([], [a], [])
        assert in_native_thread(lambda: select([a], [a], [], 1.0)) == expected


def test_green_select_answers_when_the_fd_turns_ready_not_at_its_timeout(hub: str) -> None:
    """An order check: the fd turns readable 0.05 s in and a flag is raised 1.5 s in;
    ``select(timeout=3)`` must have answered before the flag, not at its timeout."""
    late: List[bool] = []
    busy = eventlet.spawn_after(1.5, late.append, True)  # also keeps the hub busy: a green wait
    with socket_pairs() as [(a, b)]:
        eventlet.spawn_after(0.05, b.send, b"x")
        ready = select([a], [], [], 3.0)[0]
        busy.cancel()
    assert ready == [a] and not late, f"select answered {ready} only after {late and 'the flag'}"


def test_green_select_raises_when_the_hub_drops_its_fd(hub: str) -> None:
    """The hub obsoletes the fd's listener (it saw that fd number opened again): the
    select waiting on it fails with the hub's ``IOClosed`` (on the hub's next round,
    which here is the select's own timeout), rather than answering "nothing ready"."""
    busy = eventlet.spawn_after(30, int)  # keeps the hub busy: a green wait
    with socket_pairs() as [(a, b)], pytest.raises(hubs.IOClosed):
        eventlet.spawn_after(0.05, hubs.get_hub().mark_as_reopened, a.fileno())
        select([a], [], [], 1.0)
    busy.cancel()


def test_select_reports_a_hung_up_pipe_readable_and_a_broken_one_writable() -> None:
    """POLLHUP and POLLERR wake a select as the stdlib's does: the reader of a pipe
    whose writer is gone reads EOF, the writer of a full pipe whose reader is gone gets
    EPIPE, instead of both waiting for ever."""
    import os

    r, w = os.pipe()
    os.close(w)  # the reader sees POLLHUP alone
    try:
        assert in_native_thread(lambda: select([r], [], [], 3.0)) == ([r], [], [])
    finally:
        os.close(r)
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass  # full: no POLLOUT
    os.close(r)  # the writer sees POLLERR alone
    try:
        assert in_native_thread(lambda: select([], [w], [], 3.0)) == ([], [w], [])
    finally:
        os.close(w)


def test_select_reports_a_full_socket_its_peer_shut_down_writable() -> None:
    """The writer of a full socket whose peer shut it down both ways sees POLLHUP alone
    (no room, so no POLLOUT; no error yet): select answers it writable, so its send fails
    at once with EPIPE instead of it waiting out its timeout, as eventlet's hubs wake a
    writer on POLLHUP (the stdlib's select would not answer it at all)."""
    a, b = socket.socketpair()
    fill_send_buffer(a)  # neither readable nor writable
    try:
        b.shutdown(socket.SHUT_RDWR)
        assert in_native_thread(lambda: select([], [a], [], 3.0)) == ([], [a], [])
        with pytest.raises(BrokenPipeError):
            a.send(b"x")
    finally:
        a.close()
        b.close()


def test_green_select_for_writing_answers_when_the_socket_drains(hub: str) -> None:
    """An order check like the readable one: the peer drains 0.05 s in, a flag is
    raised 1.5 s in; ``select(timeout=3)`` for writing must answer before the flag."""
    late: List[bool] = []
    busy = eventlet.spawn_after(1.5, late.append, True)
    with socket_pairs() as [(a, b)]:
        fill_send_buffer(a)

        def drain() -> None:
            b.setblocking(False)
            try:
                while b.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass

        later(0.05, drain)
        ready = select([], [a], [], 3.0)[1]
        busy.cancel()
    assert ready == [a] and not late, f"select answered {ready} only after {late and 'the flag'}"
