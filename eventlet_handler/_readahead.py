"""Read-ahead for kazoo's plain (non-TLS) connection: one ``recv`` per burst of replies.

kazoo reads a reply in two steps (``_read(4)`` for the length, then ``_read(length)``),
each a ``select`` and a ``recv``, and selects again before the next reply: four
GIL-releasing syscalls per reply in the connection loop's thread. A
:class:`ReadAheadSocket` wraps the green socket and, when kazoo reads, takes what the
kernel has (up to ``READ_AHEAD`` bytes) into a buffer, then serves kazoo's reads from it.

Rules:

1. Bytes come out of ``recv`` / ``recv_into`` in the order the peer sent them: the
   buffer first, the kernel socket only once the buffer is empty.
2. ``pending()`` is the number of buffered bytes. kazoo's ``_read`` skips its ``select``
   while ``pending() > 0`` (its hook for TLS, whose record layer buffers the same way).
3. A socket with buffered bytes is in :data:`data_ahead` (and only then); ``_select``
   answers a select on it at once, without a syscall, as the kernel would for unread
   bytes. ``close()`` drops the buffer and leaves the set.
4. Only ``create_connection``'s plain path wraps; TLS sockets are never wrapped (their
   ``pending()`` is the record layer's, and reading ahead of it would break it).
5. One reader: kazoo's connection loop, the one green thread that reads the socket.
   Everything but the reads is the wrapped socket's own (``__getattr__``).
"""

from __future__ import annotations

import socket
from typing import Any, Set

READ_AHEAD = 65536  # bytes one recv may take from the kernel

#: Sockets holding buffered bytes (rule 3). Adds and discards are atomic under the GIL.
data_ahead: Set["ReadAheadSocket"] = set()


class ReadAheadSocket:
    """A plain green socket whose reads read ahead (see the module rules).

    Its reads: kazoo's connection loop (rule 5); everything else any thread, as the
    wrapped socket allows.
    """

    __slots__ = ("_sock", "_buffer", "_offset", "__weakref__")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._offset = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<ReadAheadSocket {self.pending()} bytes ahead of {self._sock!r}>"

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def pending(self) -> int:
        """Bytes buffered and not yet returned (rule 2). Any thread, never blocks."""
        return len(self._buffer) - self._offset

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Up to ``bufsize`` bytes: buffered ones first, else one read of what the kernel
        has (raises like the wrapped socket when it has nothing). The reading green thread."""
        if bufsize < 0:  # the socket's own check, made before the buffer can answer
            raise ValueError(f"negative buffersize in recv ({bufsize}): pass a bufsize >= 0")
        if self._buffer:  # MSG_PEEK looks at the buffered bytes and leaves them there
            return self._peek(bufsize) if flags & socket.MSG_PEEK else self._take(bufsize)
        if flags or not bufsize:
            return bytes(self._sock.recv(bufsize, flags))
        data = self._sock.recv(max(bufsize, READ_AHEAD))
        if len(data) <= bufsize:
            return bytes(data)
        self._buffer, self._offset = bytes(data), bufsize
        data_ahead.add(self)
        return self._buffer[:bufsize]

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """``recv`` into ``buffer``, buffered bytes first (rule 1). The reading green thread."""
        view = memoryview(buffer).cast("B")
        if nbytes > len(view):  # checked before reading, so no byte is taken and lost
            raise ValueError(
                f"recv_into: nbytes {nbytes} > the buffer's {len(view)} bytes: pass a larger buffer"
            )
        data = self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    def _peek(self, bufsize: int) -> bytes:
        return self._buffer[self._offset : self._offset + bufsize]

    def _take(self, bufsize: int) -> bytes:
        start, end = self._offset, self._offset + bufsize
        if end < len(self._buffer):
            self._offset = end
            return self._buffer[start:end]
        chunk = self._buffer[start:]
        self._buffer, self._offset = b"", 0  # empty again: _buffer is falsy exactly when nothing is ahead
        data_ahead.discard(self)
        return chunk

    def close(self) -> None:
        """Drop the buffer, then close the socket. Any thread."""
        self._buffer, self._offset = b"", 0
        data_ahead.discard(self)
        self._sock.close()
