"""Isolated mode's hub thread (``_hubthread``): started and stopped from any thread,
``join()`` says True once the thread is gone, a second ``stop()`` is quiet."""

from __future__ import annotations

from typing import Any

import pytest
from eventlet import hubs, patcher

from support import HUBS, in_native_thread
from eventlet_handler._bridge import bridge_of
from eventlet_handler._hubs import current_hub, hub_module_of
from eventlet_handler._hubthread import HubThread, shutdown_current_hub

_threading: Any = patcher.original("threading")
_time: Any = patcher.original("time")


def test_HubThread_join_after_stop_is_true_once_the_thread_is_gone() -> None:
    """``join()`` waits for the thread's exit, not just the hub's: True means the native
    thread has ended. The window is made wide: a profile hook holds the thread for
    0.2 s as its main function returns, after it said it exited."""
    import time

    def slow_last_frame(frame: Any, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is HubThread._main.__code__:
            time.sleep(0.2)

    _threading.setprofile(slow_last_frame)  # for threads started from now on
    try:
        hubthread = HubThread("hubthread-test-join")
        hubthread.start()
    finally:
        _threading.setprofile(None)
    thread = hubthread._thread
    hubthread.stop()
    assert hubthread.join(5) is True, "join() returned while the thread was still unwinding"
    assert not thread.is_alive()


def test_HubThread_stop_again_after_it_exited_is_quiet() -> None:
    hubthread = HubThread("hubthread-test-twice")
    hubthread.start()
    hubthread.stop()
    assert hubthread.join(5)
    hubthread.stop()  # its bridge is closed now: nothing to ask, nothing raised
    assert hubthread.join(1)


@pytest.mark.parametrize("with_bridge", [True, False], ids=["with_bridge", "hub_only"])
def test_shutdown_current_hub_closes_the_bridge_and_retires_the_hub(with_bridge: bool) -> None:
    """What a hub thread does last: its bridge (if it made one) drains and closes, the
    hub's poller closes and the thread has no hub any more."""
    def body() -> "tuple[Any, Any, Any]":
        hub = hubs.get_hub()
        bridge = bridge_of(hub, create=True) if with_bridge else None
        shutdown_current_hub()
        return bridge, hub, current_hub()

    bridge, hub, after = in_native_thread(body)
    assert after is None, "the thread still has its hub"
    if bridge is not None:
        assert bridge.pump_exited and bridge.read_fd == -1, "the bridge was not closed"
    epoll = getattr(hub, "poll", None)
    if epoll is not None and hasattr(epoll, "closed"):
        assert epoll.closed, "the hub's poller was left open"


@pytest.mark.parametrize("name", HUBS)
def test_HubThread_runs_the_kind_of_hub_it_is_given(name: str) -> None:
    """Isolated mode's hub thread runs the starting thread's kind of hub."""
    module = in_native_thread(lambda: (hubs.use_hub(name), hub_module_of(hubs.get_hub()))[1])
    hubthread = HubThread(f"hubthread-kind-{name}", module)
    hubthread.start()
    try:
        assert type(hubthread.hub).__module__ == module.__name__
    finally:
        hubthread.stop()
        assert hubthread.join(5)


def test_HubThread_that_failed_to_start_says_why_and_stop_is_a_no_op() -> None:
    import types

    no_hub = types.ModuleType("no_hub_here")  # a hub module without its Hub class
    no_hub.is_available = lambda: True  # type: ignore[attr-defined]
    hubthread = HubThread("hubthread-no-hub", no_hub)
    with pytest.raises(RuntimeError, match="'hubthread-no-hub' failed to start") as failed:
        hubthread.start(5)
    assert isinstance(failed.value.__cause__, AttributeError)
    hubthread.stop()  # no bridge to ask: nothing raised


def test_HubThread_join_says_False_while_it_runs_and_at_once_from_its_own_thread() -> None:
    """``join(timeout)`` is False while the thread runs; from the hub thread itself (which
    cannot wait for its own end) it says False at once instead of waiting."""
    import eventlet

    hubthread = HubThread("hubthread-self-join")
    hubthread.start()
    try:
        assert hubthread.join(0.05) is False, "join() said a running hub thread had exited"
        inside: dict = {}

        def join_from_inside() -> None:
            started = _time.monotonic()
            inside["result"] = hubthread.join(3.0)
            inside["seconds"] = _time.monotonic() - started

        hubthread.call(eventlet.spawn_n, join_from_inside)
        deadline = _time.monotonic() + 10
        while "seconds" not in inside and _time.monotonic() < deadline:
            _time.sleep(0.01)
        assert inside.get("result") is False, inside
        assert inside["seconds"] < 2.0, f"join() from the hub thread waited {inside['seconds']:.2f} s for itself"
    finally:
        hubthread.stop()
        assert hubthread.join(5)
