"""The self-pipe: a non-blocking pipe whose read end is readable while a byte is in it.

Both cross-thread wake-ups of this package wake through :func:`poke` and :func:`take_byte`:
the bridge (wakes a hub's pump) on a pipe from :func:`open_pipe`, and the wake pair
(wakes kazoo's connection loop) on the fds of a real socketpair, which ``os.write``
and ``os.read`` serve alike. Rules:

1. The fds are made with the *unpatched* ``os`` and are non-blocking: a patched
   write that met EAGAIN would trampoline into the calling thread's hub.
2. Callers keep at most one byte in the pipe (or socket) (each under its own native lock), so
   :func:`poke` never meets a full pipe; a byte already there is as good as a new one.
"""

from __future__ import annotations

from typing import Any, Tuple

from eventlet import patcher

_os: Any = patcher.original("os")


def open_pipe() -> Tuple[int, int]:
    """A new non-blocking (read fd, write fd) pair. Any thread."""
    rfd, wfd = _os.pipe()
    _os.set_blocking(rfd, False)
    _os.set_blocking(wfd, False)
    return rfd, wfd


def poke(wfd: int) -> None:
    """Make the read end readable; never blocks (rule 2). Any thread."""
    try:
        _os.write(wfd, b"\0")
    except BlockingIOError:
        pass


def take_byte(rfd: int) -> None:
    """Make the read end quiet again: take the one byte rule 2 allows with a single read
    (no second read to meet EAGAIN); never blocks. A byte left over would only make the
    read end readable once more. Any thread."""
    try:
        _os.read(rfd, 64)
    except BlockingIOError:
        pass


def close_fds(*fds: int) -> None:
    """Close each fd that is not -1, ignoring one already closed. Any thread."""
    for fd in fds:
        if fd >= 0:
            try:
                _os.close(fd)
            except OSError:
                pass
