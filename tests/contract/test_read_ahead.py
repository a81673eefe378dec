"""Read-ahead on kazoo's plain connection (eventlet_handler/_readahead.py) and select's
rule 10: buffered bytes come out in order, ``pending()`` counts them, and a select on a
socket holding some answers at once, though the kernel socket is empty."""

from __future__ import annotations

import socket
from typing import Any, Iterator, Tuple

import eventlet
import pytest
from eventlet.green import socket as green_socket

from eventlet_handler import EventletHandler, _readahead
from eventlet_handler._readahead import ReadAheadSocket, data_ahead
from eventlet_handler._select import select
from support import native_select as _select

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pair() -> Iterator[Tuple[ReadAheadSocket, socket.socket]]:
    a, b = socket.socketpair()
    ras = ReadAheadSocket(green_socket.socket(fileno=a.detach()))
    ras.setblocking(0)
    yield ras, b
    ras.close()
    b.close()


def _kernel_readable(sock: Any) -> bool:
    return bool(_select.select([sock.fileno()], [], [], 0)[0])


def test_read_ahead_serves_bytes_in_order_and_counts_them(hub: str, pair: Any) -> None:
    ras, peer = pair
    peer.sendall(b"\0\0\0\x05hello" + b"\0\0\0\x03abc")
    eventlet.sleep(0.01)
    assert ras.recv(4) == b"\0\0\0\x05"  # one kernel read took all 16 bytes
    assert ras.pending() == 12 and not _kernel_readable(ras) and ras in data_ahead
    assert ras.recv(5) == b"hello"
    buf = bytearray(10)
    assert ras.recv_into(buf, 4) == 4 and bytes(buf[:4]) == b"\0\0\0\x03"
    assert ras.recv(100) == b"abc"  # what is left, not more
    assert ras.pending() == 0 and ras not in data_ahead
    peer.sendall(b"next")
    eventlet.sleep(0.01)
    assert ras.recv(100) == b"next"


def test_read_ahead_never_reads_more_than_READ_AHEAD(hub: str, pair: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(_readahead, "READ_AHEAD", 8)
    ras, peer = pair
    peer.sendall(b"0123456789abcdef")
    eventlet.sleep(0.01)
    assert ras.recv(2) == b"01" and ras.pending() == 6
    assert _kernel_readable(ras)  # the rest is still the kernel's
    assert ras.recv(100) == b"234567" and ras.recv(100) == b"89abcdef"


@pytest.mark.parametrize("where", ["green", "native"])
def test_select_answers_at_once_for_bytes_read_ahead(hub: str, pair: Any, where: str) -> None:
    """The kernel socket is empty, so only rule 10 can answer; without it the select
    would wait out its timeout and kazoo's loop would leave the reply unread."""
    ras, peer = pair
    peer.sendall(b"abcdef")
    eventlet.sleep(0.01)
    assert ras.recv(2) == b"ab" and not _kernel_readable(ras)
    if where == "green":
        answer = select([ras], [], [], 2.0)
    else:
        from support import native_threading

        out: list = []
        t = native_threading.Thread(target=lambda: out.append(select([ras], [], [], 2.0)))
        t.start()
        t.join(5)
        answer = out[0]
    assert answer == ([ras], [], [])


def test_select_with_read_ahead_reports_a_pending_wake_pair_too(
    hub: str, pair: Any, eventlet_handler: EventletHandler
) -> None:
    """kazoo's loop selects [socket, wake pair]: both are answered, so a queued request
    is sent between replies (kazoo PR#633), and a quiet wake pair is not reported."""
    ras, peer = pair
    reader, writer = eventlet_handler.create_socket_pair()
    try:
        peer.sendall(b"abcdef")
        eventlet.sleep(0.01)
        ras.recv(2)
        assert select([ras, reader], [], [], 2.0) == ([ras], [], [])
        writer.send(b"\0")
        assert select([ras, reader], [], [], 2.0) == ([ras, reader], [], [])
    finally:
        reader.close()
        writer.close()


def test_close_drops_the_buffer(hub: str) -> None:
    a, b = socket.socketpair()
    ras = ReadAheadSocket(green_socket.socket(fileno=a.detach()))
    b.sendall(b"abcdef")
    eventlet.sleep(0.01)
    ras.recv(1)
    assert ras in data_ahead
    ras.close()
    b.close()
    assert ras not in data_ahead and ras.pending() == 0


def test_plain_connections_read_ahead(hub: str) -> None:
    """create_connection's plain path wraps (TLS never does: test_tls covers that path)."""
    from eventlet_handler._sockets import create_connection

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        conn = create_connection(server.getsockname(), timeout=5)
        assert isinstance(conn, ReadAheadSocket)
        conn.close()
    finally:
        server.close()


class _CountingSocket:
    """The wrapped socket, recording the size of every kernel read."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.reads: list = []

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.reads.append(bufsize)
        return bytes(self.sock.recv(bufsize, flags))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.fixture
def counted() -> Iterator[Tuple[ReadAheadSocket, _CountingSocket, socket.socket]]:
    a, b = socket.socketpair()
    inner = _CountingSocket(green_socket.socket(fileno=a.detach()))
    ras = ReadAheadSocket(inner)
    ras.setblocking(0)
    yield ras, inner, b
    ras.close()
    b.close()


def test_a_new_socket_has_nothing_ahead(hub: str, pair: Any) -> None:
    ras, _ = pair
    assert ras.pending() == 0 and ras not in data_ahead
    assert repr(ras).startswith("<ReadAheadSocket 0 bytes ahead of ")


@pytest.mark.parametrize("sent, left", [(5, 0), (8, 0), (12, 4)])
def test_recv_keeps_only_the_bytes_past_bufsize(hub: str, pair: Any, sent: int, left: int) -> None:
    """Fewer or exactly bufsize bytes: all returned, nothing ahead; more: the rest is ahead."""
    ras, peer = pair
    data = bytes(range(sent))
    peer.sendall(data)  # a socketpair's send is in the peer's queue when it returns
    assert ras.recv(8) == data[:8]
    assert ras.pending() == left and (ras in data_ahead) == bool(left)
    if left:
        assert ras.recv(100) == data[8:]
    assert ras.pending() == 0 and ras not in data_ahead


def test_recv_up_to_the_buffer_end_empties_it(hub: str, pair: Any) -> None:
    ras, peer = pair
    peer.sendall(b"0123456789")
    assert ras.recv(4) == b"0123" and ras.pending() == 6
    assert ras.recv(6) == b"456789"  # exactly what is ahead
    assert ras.pending() == 0 and ras not in data_ahead
    peer.sendall(b"next")
    assert ras.recv(100) == b"next"


def test_recv_zero_takes_nothing(hub: str, pair: Any) -> None:
    ras, peer = pair
    peer.sendall(b"abcdef")
    assert ras.recv(0) == b""  # buffer empty: nothing read ahead either
    assert ras.pending() == 0 and ras not in data_ahead and _kernel_readable(ras)
    assert ras.recv(2) == b"ab" and ras.pending() == 4
    assert ras.recv(0) == b"" and ras.pending() == 4  # from the buffer: nothing taken
    assert ras.recv(100) == b"cdef"


def test_negative_bufsize_is_refused_and_loses_nothing(hub: str, pair: Any) -> None:
    ras, peer = pair
    peer.sendall(b"abcdef")
    with pytest.raises(ValueError, match="negative buffersize"):
        ras.recv(-1)  # buffer empty
    assert ras.pending() == 0
    assert ras.recv(2) == b"ab"
    with pytest.raises(ValueError, match="negative buffersize"):
        ras.recv(-1)  # bytes ahead
    assert ras.recv(100) == b"cdef"


def test_recv_with_flags_is_the_kernel_socket_s(hub: str, pair: Any) -> None:
    """MSG_PEEK must not read ahead: the peeked bytes are still there for the next recv."""
    ras, peer = pair
    peer.sendall(b"abcdef")
    assert ras.recv(4, socket.MSG_PEEK) == b"abcd" and ras.pending() == 0
    buf = bytearray(3)
    assert ras.recv_into(buf, 0, socket.MSG_PEEK) == 3 and bytes(buf) == b"abc" and ras.pending() == 0
    assert ras.recv(100) == b"abcdef"


def test_recv_with_MSG_PEEK_leaves_buffered_bytes_where_they_are(hub: str, pair: Any) -> None:
    """A peek at bytes already read ahead returns them and takes none: the next recv
    gets the same bytes (a peek that took them would lose them)."""
    ras, peer = pair
    peer.sendall(b"0123456789")
    eventlet.sleep(0.01)
    assert ras.recv(2) == b"01" and ras.pending() == 8  # the rest is read ahead
    assert ras.recv(3, socket.MSG_PEEK) == b"234" and ras.pending() == 8
    assert ras.recv(100) == b"23456789" and ras not in data_ahead


def test_recv_into_fills_the_buffer_by_default(hub: str, pair: Any) -> None:
    ras, peer = pair
    peer.sendall(b"abcdefghij")
    buf = bytearray(4)
    assert ras.recv_into(buf) == 4 and bytes(buf) == b"abcd"  # from the kernel, the rest read ahead
    assert ras.pending() == 6
    assert ras.recv_into(buf) == 4 and bytes(buf) == b"efgh"  # from the buffer
    assert ras.recv_into(buf) == 2 and bytes(buf[:2]) == b"ij"
    assert ras.pending() == 0 and ras not in data_ahead


def test_recv_into_a_too_small_buffer_is_refused_and_loses_nothing(hub: str, pair: Any) -> None:
    ras, peer = pair
    peer.sendall(b"abcdef")
    with pytest.raises(ValueError, match="pass a larger buffer"):
        ras.recv_into(bytearray(4), 5)
    buf = bytearray(4)
    assert ras.recv_into(buf, 4) == 4 and bytes(buf) == b"abcd"  # nbytes == len(buffer) is fine
    with pytest.raises(ValueError, match="pass a larger buffer"):
        ras.recv_into(bytearray(1), 2)
    assert ras.recv(100) == b"ef"


def test_a_burst_larger_than_READ_AHEAD_comes_in_order_in_bounded_reads(
    hub: str, counted: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(_readahead, "READ_AHEAD", 8)
    ras, inner, peer = counted
    data = bytes(range(20))
    peer.sendall(data)
    got = b"".join(ras.recv(2) for _ in range(10))
    assert got == data
    assert inner.reads == [8, 8, 8]  # one kernel read per READ_AHEAD bytes, never per recv
    peer.sendall(bytes(range(12)))
    assert ras.recv(12) == bytes(range(12)) and inner.reads[-1] == 12  # a larger recv asks for all of it
