"""The dedicated hub thread of isolated mode.

A native daemon thread whose main greenlet parks on a green event, so the
thread's hub runs until :meth:`HubThread.stop`. Everything the handler owns in
isolated mode (workers, the connection loop, spawned work) lives in this hub;
other threads reach it only through its bridge. On stop the bridge is closed,
its pump drains the last calls and exits, and the thread releases its hub.
When to stop it is the home's decision (:mod:`._home`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import eventlet
from eventlet import event as green_event
from eventlet import hubs, patcher

from ._bridge import Bridge, BridgeClosed, bridge_of, close_bridge
from ._hubs import current_hub, retire_current_hub
from ._primitives import Event

_threading: Any = patcher.original("threading")

LOG = logging.getLogger(__name__)


class HubThread:
    """A native thread running one eventlet hub. Start and stop from any thread."""

    def __init__(self, name: str, hub_module: Any = None) -> None:
        self.name = name
        self._hub_module = hub_module
        self.hub: Any = None
        self.bridge: Bridge | None = None
        self._ready = Event()
        self._exited = Event()
        self._exit_request: Any = None
        self._thread: Any = None
        self._error: BaseException | None = None

    @property
    def ident(self) -> int | None:
        return None if self._thread is None else self._thread.ident

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until its hub accepts calls."""
        self._thread = _threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"hub thread {self.name!r} did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"hub thread {self.name!r} failed to start") from self._error

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the hub thread soon. Any thread."""
        assert self.bridge is not None
        self.bridge.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        """Ask the thread to exit; returns at once (:meth:`join` waits). Any thread."""
        if self._thread is None or self.bridge is None:
            return
        try:
            self.call(self._request_exit)
        except BridgeClosed:  # already exiting
            pass

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the thread to exit; True once it has.

        Any thread but the hub thread itself; waits green in a thread with a hub.
        """
        if self._thread is None or _threading.get_ident() == self._thread.ident:
            return self._thread is None
        if not self._exited.wait(timeout):  # green where it can: never blocks a hub natively
            return False
        self._thread.join(1.0)  # past _exited it only unwinds its last frame
        return not self._thread.is_alive()

    def _request_exit(self) -> None:
        if not self._exit_request.ready():
            self._exit_request.send(True)

    def _main(self) -> None:
        try:
            if self._hub_module is not None:  # the starting thread's kind of hub
                hubs.use_hub(self._hub_module)
            self.hub = hubs.get_hub()
            self.bridge = bridge_of(self.hub, create=True)
            self._exit_request = green_event.Event()
        except BaseException as exc:  # pragma: no cover - hub creation failed
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._exit_request.wait()
            shutdown_current_hub()
        finally:
            self.hub = None
            self._exited.set()


def shutdown_current_hub() -> None:
    """Retire the calling thread's hub before the thread ends.

    Closes the hub's bridge (its pump runs the last calls and closes the pipe),
    then the hub's poller or asyncio loop, and forgets the hub, so a thread
    that ends leaves no fds behind. Call from the thread's main greenlet.
    """
    hub = current_hub()
    if hub is None:
        return
    bridge = bridge_of(hub)
    close_bridge(hub)
    for _ in range(100):
        if bridge is None or bridge.pump_exited:
            break
        eventlet.sleep(0)
    retire_current_hub()
