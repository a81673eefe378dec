"""The wake pair kazoo's connection loop selects on: two real sockets that never fill up.

kazoo appends a request to ``client._queue`` and then sends one byte on the
write end; the connection loop sends one queued request per byte it reads. A
real socketpair holds about 278 one-byte sends; past that a green sender parks,
a second one is refused by eventlet, and kazoo strands the request
(``design/kazoo-eventlet-gaps.md`` section 3). Here the ends are ``socket.socket``
objects over a real ``socketpair()`` (so code written against kazoo's other
handlers can call ``getsockname()``, ``family``, ``gettimeout()``... on them),
but the bytes kazoo sends are *tokens*:

1. ``tokens`` (guarded by a native lock) counts bytes sent and not yet received;
   kazoo's one-request-per-byte bookkeeping stays exact.
2. Exactly one real byte sits in the kernel socket while ``tokens > 0`` or the
   pair is closed, none otherwise; so the read end's fd is readable exactly
   when ``recv`` has something to return, for ``select`` in any hub. Taking it
   is one read (kazoo's loop does that once per request in the hub thread).
3. ``send`` never blocks and never raises while the pair is open: it only
   changes a counter and, on 0 -> 1, writes one byte to the empty non-blocking
   socket with the unpatched ``os.write``. Safe from any green or native thread.
4. Closing either end closes the pair: a reader waiting in ``select`` wakes and
   ``recv`` returns ``b""`` (EOF). A closed end is a closed socket (``fileno()``
   is -1, socket calls raise ``OSError(EBADF)``), but its fd stays open, held
   by the pair, until both ends are closed: a ``select`` still waiting on it
   wakes instead of waiting on a closed (possibly reused) fd number.
5. Only ``send``/``sendall`` (write end) and ``recv`` (read end) move tokens; the
   other data calls and ``dup()`` raise ``OSError(EOPNOTSUPP)``, since a real byte
   moved behind the counter's back would break rule 2.
"""

from __future__ import annotations

import _socket
import errno
import socket as _socket_now
from typing import Any, List, NoReturn, Optional, Tuple

from eventlet import patcher

from . import _selfpipe
from ._parking import allocate_lock

#: The stdlib socket class (what ``socket.socket`` is in an unpatched process), even if
#: this module is imported after ``eventlet.monkey_patch()``.
_StdSocket: Any = (
    patcher.original("socket").socket if patcher.is_monkey_patched("socket") else _socket_now.socket
)


class _WakeState:
    __slots__ = ("lock", "tokens", "rfd", "wfd", "shut", "held", "ends")

    def __init__(self, reader: "WakeReader", writer: "WakeWriter") -> None:
        self.lock = allocate_lock()
        self.tokens = 0
        self.rfd = reader.fileno()
        self.wfd = writer.fileno()
        self.shut = False
        self.held: List[Any] = []  # sockets owning the fds of closed ends (rule 4)
        self.ends: Optional[Tuple[Any, Any]] = (reader, writer)  # neither is collected alone

    def poke(self) -> None:  # caller holds lock: make the read fd readable
        _selfpipe.poke(self.wfd)

    def unpoke(self) -> None:  # caller holds lock: make the read fd quiet
        _selfpipe.take_byte(self.rfd)  # rule 2: one byte, so one read (no read until EAGAIN)

    def close_end(self, end: "_End") -> None:  # caller holds lock
        if not self.shut:
            self.shut = True
            if not self.tokens:
                self.poke()
        self.held.append(_socket.socket(fileno=_StdSocket.detach(end)))
        if len(self.held) == 2:
            for sock in self.held:
                sock.close()
            self.held = []
            self.ends = None
            self.rfd = self.wfd = -1


class _End(_StdSocket):
    __slots__ = ("_wake", "_wake_closed")

    _wake: _WakeState

    def __init__(self, fileno: int) -> None:
        super().__init__(fileno=fileno)
        self.setblocking(False)
        self._wake_closed = False

    def _check_open(self) -> None:
        if self._wake_closed:
            raise OSError(errno.EBADF, "wake pair end is closed")

    def close(self) -> None:
        """Close this end (idempotent); the other end sees the pair closed. Any thread."""
        state = self._wake
        with state.lock:
            if self._wake_closed:
                return
            self._wake_closed = True
            state.close_end(self)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, tokens={self._wake.tokens}>"


def _refuse(name: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        raise OSError(errno.EOPNOTSUPP, f"{name}() is not supported on a wake pair end (rule 5 of _wakepair)")

    method.__name__ = name
    return method


class WakeWriter(_End):
    """The write end: ``send(b"\\0")`` adds one token. Any thread, never blocks."""

    __slots__ = ()

    def send(self, data: bytes, flags: int = 0) -> int:  # type: ignore[override]
        """Add ``len(data)`` tokens; never blocks. Any green or native thread.

        :raises OSError: ``EBADF`` once this end is closed, ``EPIPE`` once the
            read end is.
        """
        n = len(data)
        state = self._wake
        with state.lock:
            self._check_open()
            if state.shut:
                raise OSError(errno.EPIPE, "wake pair's read end is closed")
            if n:
                was_empty = not state.tokens
                state.tokens += n
                if was_empty:
                    state.poke()
        return n

    def sendall(self, data: bytes, flags: int = 0) -> None:  # type: ignore[override]
        """``send``, returning ``None`` as a socket's ``sendall`` does. Any thread."""
        self.send(data)


class WakeReader(_End):
    """The read end: ``fileno()`` for select; ``recv(n)`` takes up to n tokens."""

    __slots__ = ()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:  # type: ignore[override]
        """Take up to ``bufsize`` tokens; ``b""`` once the pair is closed. Any thread.

        Never blocks: with no token pending, raises ``BlockingIOError`` like a
        non-blocking socket (kazoo's loop only reads after ``select``).
        """
        state = self._wake
        with state.lock:
            self._check_open()
            if not state.tokens:
                if state.shut:
                    return b""
                raise BlockingIOError(errno.EAGAIN, "no wake token pending")
            taken = min(bufsize, state.tokens)
            state.tokens -= taken
            if not state.tokens and not state.shut:
                state.unpoke()
        return b"\0" * taken

    def readable(self) -> bool:
        """What a select of the read fd would say now (rule 2), without a syscall:
        tokens pending or the pair closed. Any thread, never blocks."""
        state = self._wake
        return bool(state.tokens or state.shut)

    def tokens_pending(self) -> int:
        """Tokens sent and not yet received. Any thread, never blocks."""
        return self._wake.tokens


_RECEIVE_CALLS = ("recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "recvmsg_into")
_SEND_CALLS = ("send", "sendall", "sendto", "sendmsg", "sendfile")
_REFUSED = (
    (_End, ("detach", "dup")),
    (WakeWriter, _RECEIVE_CALLS + _SEND_CALLS[2:]),
    (WakeReader, _RECEIVE_CALLS[1:] + _SEND_CALLS),
)
for _end_class, _names in _REFUSED:
    for _name in _names:
        setattr(_end_class, _name, _refuse(_name))


def create_wake_pair() -> Tuple[WakeReader, WakeWriter]:
    """A new (read end, write end) pair; the read end comes first, as kazoo unpacks it."""
    a, b = _socket.socketpair()
    reader, writer = WakeReader(a.detach()), WakeWriter(b.detach())
    state = _WakeState(reader, writer)
    reader._wake = writer._wake = state
    return reader, writer
