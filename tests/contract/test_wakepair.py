"""The wake pair kazoo's connection loop selects on (``handler.create_socket_pair()``).

Rules under test (eventlet_handler/_wakepair.py): the write end never blocks and never
raises while open, from green threads of any hub and from native threads at once; one
``send`` is one token and ``recv`` hands out exactly the tokens sent; closing wakes a
reader blocked in ``handler.select``; use after close raises ``OSError(EBADF)``; the
socketpair's fds are closed once both ends are closed; both ends are ``socket.socket``
objects, as kazoo's other handlers return.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from typing import Any, Iterator, List, Tuple

import eventlet
import pytest

from support import green_wait_native_thread, later, native_threading as _threading
from eventlet_handler import EventletHandler


pytestmark = pytest.mark.timeout(60)

TOTAL_SENDS = 100_000
NATIVE_SENDERS = 4
GREEN_SENDERS = 100


@pytest.fixture
def wake_pair(eventlet_handler: EventletHandler) -> Iterator[Tuple[Any, Any]]:
    """``eventlet_handler.create_socket_pair()``: (reader, writer), both closed afterwards
    (closing is idempotent)."""
    reader, writer = eventlet_handler.create_socket_pair()
    yield reader, writer
    reader.close()
    writer.close()


def _drain(reader: Any) -> int:
    """Take every pending token without blocking; return how many."""
    taken = 0
    while True:
        try:
            chunk = reader.recv(4096)
        except BlockingIOError:
            return taken
        assert chunk, "recv returned EOF on an open pair"
        assert set(chunk) == {0}
        taken += len(chunk)


def _open_fd_targets() -> dict:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
    return found


def _send_from_everywhere(writer: Any, total: int, reader_loop: Any = None) -> float:
    """``total`` sends split between native threads and green threads of this hub, all at
    once; returns the longest single ``send`` seen (seconds)."""
    per_native = total // 2 // NATIVE_SENDERS
    per_green = (total - per_native * NATIVE_SENDERS) // GREEN_SENDERS
    assert per_native * NATIVE_SENDERS + per_green * GREEN_SENDERS == total
    longest = [0.0]
    errors: List[BaseException] = []
    start = _threading.Event()

    def send_many(count: int, yield_every: int) -> None:
        clock = time.perf_counter
        try:
            for i in range(count):
                began = clock()
                assert writer.send(b"\0") == 1
                spent = clock() - began
                if spent > longest[0]:
                    longest[0] = spent
                if yield_every and i % yield_every == 0:
                    eventlet.sleep(0)
        except BaseException as exc:
            errors.append(exc)

    def native_sender() -> None:
        start.wait(10)
        send_many(per_native, 0)

    threads = [_threading.Thread(target=native_sender, daemon=True) for _ in range(NATIVE_SENDERS)]
    for thread in threads:
        thread.start()
    pool = eventlet.GreenPool(GREEN_SENDERS)
    start.set()
    for _ in range(GREEN_SENDERS):
        pool.spawn_n(send_many, per_green, 50)
    with eventlet.Timeout(30):
        pool.waitall()
    for thread in threads:
        green_wait_native_thread(thread, 30)
    if errors:
        raise errors[0]
    return longest[0]


def test_WakeWriter_send_never_blocks_at_100k_from_green_and_native_threads(hub: str, wake_pair: Any) -> None:
    reader, writer = wake_pair
    longest = _send_from_everywhere(writer, TOTAL_SENDS)
    # Nobody read: a socketpair would have filled after ~278 sends.
    assert reader.tokens_pending() == TOTAL_SENDS
    assert _drain(reader) == TOTAL_SENDS
    assert longest < 2.0, f"one send took {longest:.3f} s: it blocked"  # margin for a loaded 2-core machine


def test_WakeReader_recv_counts_exactly_while_senders_and_reader_race(
    hub: str, eventlet_handler: EventletHandler, wake_pair: Any
) -> None:
    """A reader selecting and receiving concurrently with all senders gets every token
    exactly once: kazoo sends one queued request per byte, so a lost or duplicated token
    is a stranded or phantom request."""

    reader, writer = wake_pair
    received = [0]
    senders_done = eventlet.event.Event()

    def read_all() -> None:
        while received[0] < TOTAL_SENDS:
            ready, _, _ = eventlet_handler.select([reader], [], [], 5.0)
            if not ready:
                assert senders_done.ready(), "select timed out with tokens still coming"
                continue
            received[0] += _drain(reader)

    reading = eventlet.spawn(read_all)
    try:
        _send_from_everywhere(writer, TOTAL_SENDS)
        senders_done.send()
        with eventlet.Timeout(30):
            reading.wait()
        assert received[0] == TOTAL_SENDS
        assert reader.tokens_pending() == 0
        with pytest.raises(BlockingIOError):
            reader.recv(1)
        ready, _, _ = eventlet_handler.select([reader], [], [], 0.05)
        assert ready == [], "the read end is readable with no token pending"
    finally:
        reading.kill()


@pytest.mark.parametrize("closer", ["green", "native"])
def test_WakeWriter_close_wakes_reader_blocked_in_select(
    hub: str, eventlet_handler: EventletHandler, wake_pair: Any, closer: str
) -> None:
    reader, writer = wake_pair
    if closer == "green":
        eventlet.spawn_after(0.1, writer.close)
    else:
        later(0.1, writer.close)
    began = time.monotonic()
    ready, _, _ = eventlet_handler.select([reader], [], [], 10.0)
    waited = time.monotonic() - began
    assert ready == [reader], "select returned without the closed pair's read end"
    assert waited < 5.0
    assert reader.recv(1) == b"", "recv after the writer closed is EOF"


def test_WakeReader_close_wakes_its_own_select_then_raises_EBADF(
    hub: str, eventlet_handler: EventletHandler, wake_pair: Any
) -> None:
    reader, writer = wake_pair
    later(0.1, reader.close)
    ready, _, _ = eventlet_handler.select([reader], [], [], 10.0)
    assert ready == [reader]
    with pytest.raises(OSError) as info:
        reader.recv(1)
    assert info.value.errno == errno.EBADF


def test_wake_pair_tokens_sent_before_close_are_still_received(wake_pair: Any) -> None:
    reader, writer = wake_pair
    for _ in range(3):
        writer.send(b"\0")
    writer.close()
    assert reader.recv(2) == b"\0\0"
    assert reader.recv(2) == b"\0"
    assert reader.recv(2) == b""


def test_wake_pair_use_after_close_raises_EBADF(eventlet_handler: EventletHandler, wake_pair: Any) -> None:
    reader, writer = wake_pair
    writer.close()
    reader.close()
    for call in (lambda: writer.send(b"\0"), lambda: reader.recv(1), reader.getsockname, writer.getpeername):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF
    assert reader.fileno() == writer.fileno() == -1, "a closed socket's fileno() is -1"
    with pytest.raises(OSError) as info:
        eventlet_handler.select([reader], [], [], 1.0)
    assert info.value.errno == errno.EBADF
    writer.close()  # idempotent
    reader.close()


def test_WakeWriter_send_after_reader_closed_raises_EPIPE(wake_pair: Any) -> None:
    reader, writer = wake_pair
    reader.close()
    with pytest.raises(OSError) as info:
        writer.send(b"\0")
    assert info.value.errno == errno.EPIPE


@pytest.mark.parametrize("first", ["reader", "writer"])
def test_wake_pair_fds_closed_when_both_ends_close(eventlet_handler: EventletHandler, first: str) -> None:
    before = _open_fd_targets()
    reader, writer = eventlet_handler.create_socket_pair()
    rfd = reader.fileno()
    opened = {fd: t for fd, t in _open_fd_targets().items() if before.get(fd) != t}
    assert rfd in opened and len(opened) == 2, f"expected one socketpair (2 fds), got {opened}"
    ends = [reader, writer] if first == "reader" else [writer, reader]
    ends[0].close()
    still = _open_fd_targets()
    assert all(still.get(fd) == t for fd, t in opened.items()), "fds closed while one end is open"
    ends[1].close()
    after = _open_fd_targets()
    assert not [fd for fd, t in opened.items() if after.get(fd) == t], "pipe fds leaked"


def test_wake_pair_many_pairs_leave_no_fds(eventlet_handler: EventletHandler) -> None:
    before = len(_open_fd_targets())
    for _ in range(1000):
        reader, writer = eventlet_handler.create_socket_pair()
        writer.send(b"\0")
        writer.close()
        reader.close()
    assert len(_open_fd_targets()) == before


def test_wake_pair_ends_are_sockets(eventlet_handler: EventletHandler) -> None:
    """kazoo's other handlers return a real socketpair; code written against them (fd
    accounting, diagnostics) calls the socket API on both ends."""
    reader, writer = eventlet_handler.create_socket_pair()
    try:
        for end in (reader, writer):
            assert isinstance(end, socket.socket), f"{end!r} is not a socket.socket"
            assert end.family == socket.AF_UNIX and end.type == socket.SOCK_STREAM
            assert end.fileno() >= 0 and os.fstat(end.fileno())
            assert end.getsockname() == ""  # an unnamed AF_UNIX socket
            assert end.gettimeout() == 0.0, "the ends are non-blocking"
            end.setblocking(False)
            assert end.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
            assert "tokens=0" in repr(end)
        assert reader.fileno() != writer.fileno()
        writer.send(b"\0")
        assert reader.recv(1) == b"\0"
    finally:
        with writer:
            pass  # a socket is a context manager that closes it
        reader.close()
    assert reader.fileno() == writer.fileno() == -1


def test_wake_pair_calls_that_would_bypass_the_tokens_are_refused(wake_pair: Any) -> None:
    """A real byte moved behind the token counter would make the read end readable with
    no token (kazoo's loop would spin) or quiet with tokens pending (requests stranded)."""
    reader, writer = wake_pair
    for call in (
        lambda: writer.recv(1), lambda: writer.sendto(b"\0", None), lambda: reader.send(b"\0"),
        lambda: reader.recv_into(bytearray(1)), reader.dup, writer.detach,
    ):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EOPNOTSUPP
    assert reader.tokens_pending() == 0
    with pytest.raises(BlockingIOError):
        reader.recv(1)
