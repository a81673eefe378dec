"""The self-pipe: non-blocking ends, poke never blocks, take_byte empties it, close_fds is forgiving."""

from __future__ import annotations

import os
import select
from typing import Iterator, Tuple

import pytest

from eventlet_handler import _selfpipe


@pytest.fixture
def pipe() -> Iterator[Tuple[int, int]]:
    rfd, wfd = _selfpipe.open_pipe()
    yield rfd, wfd
    _selfpipe.close_fds(rfd, wfd)


def readable(rfd: int) -> bool:
    return bool(select.select([rfd], [], [], 0)[0])


def test_open_pipe_makes_both_ends_non_blocking(pipe: Tuple[int, int]) -> None:
    rfd, wfd = pipe
    assert (os.get_blocking(rfd), os.get_blocking(wfd)) == (False, False)


def test_poke_on_a_full_pipe_neither_blocks_nor_raises(pipe: Tuple[int, int]) -> None:
    rfd, wfd = pipe
    with pytest.raises(BlockingIOError):
        while True:
            os.write(wfd, b"x" * 65536)
    _selfpipe.poke(wfd)  # a blocking write end would hang here (pytest-timeout), a raise fails
    assert readable(rfd)


def test_take_byte_makes_the_read_end_quiet(pipe: Tuple[int, int]) -> None:
    rfd, wfd = pipe
    _selfpipe.poke(wfd)  # rule 2: at most one byte in the pipe
    assert readable(rfd)
    _selfpipe.take_byte(rfd)
    assert not readable(rfd)
    _selfpipe.take_byte(rfd)  # an empty pipe: returns at once


def test_close_fds_skips_minus_one_and_ignores_an_fd_already_closed() -> None:
    rfd, wfd = _selfpipe.open_pipe()
    os.close(rfd)
    _selfpipe.close_fds(-1, rfd, wfd)  # rfd: EBADF, ignored; wfd still closed
    with pytest.raises(OSError):
        os.fstat(wfd)


def test_close_fds_closes_fd_zero() -> None:
    """0 is a valid fd (a daemon may have closed stdin): close_fds must close it."""
    saved = os.dup(0)
    rfd, wfd = os.pipe()
    try:
        os.dup2(rfd, 0)
        _selfpipe.close_fds(0)
        with pytest.raises(OSError):
            os.fstat(0)
    finally:
        os.dup2(saved, 0)
        for fd in (saved, rfd, wfd):
            os.close(fd)
