"""The wake pair's fd rule, checked at the fd: readable exactly while ``recv`` has
something to return (tokens pending, or the pair closed), and the ends' ``closed``."""

from __future__ import annotations

from typing import Any


from eventlet_handler import EventletHandler
from support import native_select as _select


def readable(reader: Any) -> bool:
    return bool(_select.select([reader.fileno()], [], [], 0)[0])


def test_wake_pair_read_fd_is_readable_exactly_while_tokens_are_pending(eventlet_handler: EventletHandler) -> None:
    reader, writer = eventlet_handler.create_socket_pair()
    try:
        assert not readable(reader)
        writer.send(b"\0")  # 0 -> 1: the one byte is written
        assert readable(reader)
        writer.send(b"\0\0")  # 1 -> 3: nothing more to write, still readable
        assert readable(reader)
        assert reader.recv(1) == b"\0"  # 3 -> 2: tokens left, so still readable
        assert readable(reader)
        assert reader.recv(4096) == b"\0\0"  # 2 -> 0: quiet again
        assert not readable(reader)
        writer.send(b"\0")  # and readable again on the next 0 -> 1
        assert readable(reader)
        assert reader.recv(10) == b"\0" and not readable(reader)
    finally:
        reader.close()
        writer.close()


def test_wake_pair_closed_end_reads_as_eof_and_looks_like_a_closed_socket(eventlet_handler: EventletHandler) -> None:
    reader, writer = eventlet_handler.create_socket_pair()
    try:
        assert (reader.fileno() >= 0, writer.fileno() >= 0) == (True, True)
        writer.send(b"\0\0")
        writer.close()
        assert (reader.fileno() >= 0, writer.fileno()) == (True, -1)
        assert reader.recv(1) == b"\0" and readable(reader)  # tokens then EOF: stays readable
        assert reader.recv(1) == b"\0" and readable(reader)
        assert reader.recv(1) == b""
    finally:
        reader.close()
    assert reader.fileno() == -1


def test_wake_pair_takes_its_one_byte_with_one_read(eventlet_handler: EventletHandler, monkeypatch: Any) -> None:
    """Rule 2 keeps one byte in the socket, so the last token's ``recv`` reads once: a
    read until EAGAIN would cost kazoo's connection loop a second syscall per request."""
    from eventlet_handler import _selfpipe

    reader, writer = eventlet_handler.create_socket_pair()
    reads = []
    real_os = _selfpipe._os

    class CountingOs:  # the unpatched os, counting reads
        def __getattr__(self, name: str) -> Any:
            return getattr(real_os, name)

        @staticmethod
        def read(fd: int, n: int) -> bytes:
            reads.append(fd)
            return real_os.read(fd, n)

    monkeypatch.setattr(_selfpipe, "_os", CountingOs())
    try:
        writer.send(b"\0")
        assert reader.recv(1) == b"\0" and not readable(reader)
        assert reads.count(reader.fileno()) == 1  # (the hub thread's bridge reads its own fd)
    finally:
        monkeypatch.undo()
        reader.close()
        writer.close()
