"""select rule 9: a hub keeps one poll object per fd set, and a kept one answers as a
fresh one would, even after an fd number was closed and reused."""

from __future__ import annotations

import socket
from typing import Any, List

import pytest

from eventlet_handler import _select
from eventlet_handler._hubs import current_hub

pytestmark = pytest.mark.timeout(60)


def _counting_polls(monkeypatch: Any) -> List[Any]:
    made: List[Any] = []
    real = _select._select_mod

    class CountingSelect:  # the unpatched select module, counting poll objects made
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def poll() -> Any:
            made.append(1)
            return real.poll()

    monkeypatch.setattr(_select, "_select_mod", CountingSelect())
    return made


def test_select_reuses_one_poll_object_per_fd_set_in_a_hub(hub: str, monkeypatch: Any) -> None:
    """kazoo's loop selects the same fds 4-5 times per request: building and registering
    a poll object each time is work a kept one saves."""
    a, b = socket.socketpair()
    try:
        b.send(b"x")
        made = _counting_polls(monkeypatch)
        for _ in range(5):
            assert _select.select([a], [a], [], 1.0) == ([a], [a], [])
        assert len(made) == 1
        assert _select.select([a], [], [], 1.0) == ([a], [], [])  # another set: its own
        assert len(made) == 2
    finally:
        a.close()
        b.close()


def test_select_kept_poll_object_answers_for_a_reused_fd_number(hub: str) -> None:
    """A poll object holds fd numbers, not sockets: after a socket closes and a new one
    gets its number, selecting on the new one answers for the new one."""
    assert current_hub() is not None
    a, b = socket.socketpair()
    fd = a.fileno()
    b.send(b"x")
    assert _select.select([a], [], [], 1.0) == ([a], [], [])
    a.close()
    b.close()
    c, d = socket.socketpair()
    try:
        if c.fileno() != fd:
            c, d = d, c
        assert c.fileno() == fd, "the fd number was not reused; the test needs it"
        assert _select.select([c], [], [], 0) == ([], [], [])  # nothing sent to c yet
        d.send(b"y")
        assert _select.select([c], [], [], 1.0) == ([c], [], [])
    finally:
        c.close()
        d.close()


def test_select_keeps_at_most_POLLERS_KEPT_fd_sets_per_hub(hub: str) -> None:
    socks = [socket.socketpair() for _ in range(_select.POLLERS_KEPT + 4)]
    try:
        for a, b in socks:
            b.send(b"x")
            assert _select.select([a], [], [], 1.0) == ([a], [], [])
        kept = getattr(current_hub(), _select._POLLERS)
        assert 0 < len(kept) <= _select.POLLERS_KEPT
    finally:
        for a, b in socks:
            a.close()
            b.close()
