"""The wake pair kazoo's connection loop selects on, which never fills up.

kazoo appends a request to ``client._queue`` and then sends one byte on the
write end; the connection loop sends one queued request per byte it reads. A
real socketpair holds about 278 one-byte sends; past that a green sender parks,
a second one is refused by eventlet, and kazoo strands the request
(``design/kazoo-eventlet-gaps.md`` section 3). Here the bytes are *tokens*:

1. ``tokens`` (guarded by a native lock) counts bytes sent and not yet received;
   kazoo's one-request-per-byte bookkeeping stays exact.
2. Exactly one real byte sits in the kernel pipe while ``tokens > 0`` or the
   pair is closed, none otherwise; so the read end's fd is readable exactly
   when ``recv`` has something to return, for ``select`` in any hub.
3. ``send`` never blocks and never raises while the pair is open: it only
   changes a counter and, on 0 -> 1, writes one byte to an empty non-blocking
   pipe with the unpatched ``os.write``. Safe from any green or native thread.
4. Closing either end closes the pair: a reader waiting in ``select`` wakes and
   ``recv`` returns ``b""`` (EOF); ``send``/``recv``/``fileno`` on a closed
   end raise ``OSError(EBADF)`` as a socket would. The pipe fds are closed when
   both ends are closed.
"""

from __future__ import annotations

import errno
from typing import Any, Tuple

from . import _selfpipe
from ._parking import allocate_lock


class _WakeState:
    __slots__ = ("lock", "tokens", "rfd", "wfd", "shut", "open_ends")

    def __init__(self) -> None:
        self.lock = allocate_lock()
        self.tokens = 0
        self.rfd, self.wfd = _selfpipe.open_pipe()
        self.shut = False
        self.open_ends = 2

    def poke(self) -> None:  # caller holds lock: make the read fd readable
        _selfpipe.poke(self.wfd)

    def unpoke(self) -> None:  # caller holds lock: make the read fd quiet
        _selfpipe.drain(self.rfd)

    def shutdown(self) -> None:  # caller holds lock
        if not self.shut:
            self.shut = True
            if not self.tokens:
                self.poke()

    def release_end(self) -> None:  # caller holds lock
        self.open_ends -= 1
        if not self.open_ends:
            _selfpipe.close_fds(self.rfd, self.wfd)
            self.rfd = self.wfd = -1


class _End:
    __slots__ = ("_state", "_closed")

    def __init__(self, state: _WakeState) -> None:
        self._state = state
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "wake pair end is closed")

    def close(self) -> None:
        """Close this end (idempotent); the other end sees the pair closed. Any thread."""
        state = self._state
        with state.lock:
            if self._closed:
                return
            self._closed = True
            state.shutdown()
            state.release_end()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "_End":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class WakeWriter(_End):
    """The write end: ``send(b"\\0")`` adds one token. Any thread, never blocks."""

    __slots__ = ()

    def send(self, data: bytes) -> int:
        """Add ``len(data)`` tokens; never blocks. Any green or native thread.

        :raises OSError: ``EBADF`` once this end is closed, ``EPIPE`` once the
            read end is.
        """
        n = len(data)
        state = self._state
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

    sendall = send

    def __repr__(self) -> str:
        return f"<WakeWriter tokens={self._state.tokens} closed={self._closed}>"


class WakeReader(_End):
    """The read end: ``fileno()`` for select; ``recv(n)`` takes up to n tokens."""

    __slots__ = ()

    def fileno(self) -> int:
        """The fd to select on: readable exactly while tokens are pending or the
        pair is closed. Any thread; ``OSError(EBADF)`` once this end is closed."""
        self._check_open()
        return self._state.rfd

    def recv(self, bufsize: int) -> bytes:
        """Take up to ``bufsize`` tokens; ``b""`` once the pair is closed. Any thread.

        Never blocks: with no token pending, raises ``BlockingIOError`` like a
        non-blocking socket (kazoo's loop only reads after ``select``).
        """
        state = self._state
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

    def tokens_pending(self) -> int:
        """Tokens sent and not yet received. Any thread, never blocks."""
        return self._state.tokens

    def __repr__(self) -> str:
        return f"<WakeReader tokens={self._state.tokens} closed={self._closed}>"


def create_wake_pair() -> Tuple[WakeReader, WakeWriter]:
    """A new (read end, write end) pair; the read end comes first, as kazoo unpacks it."""
    state = _WakeState()
    return WakeReader(state), WakeWriter(state)
