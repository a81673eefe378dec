"""The awaiting-caller axis: who awaits, as a coroutine, relative to the test body.

* ``asyncio_hub``: a coroutine on eventlet's asyncio hub. In a body whose own hub is
  the asyncio hub it runs there (``eventlet.asyncio.spawn_for_awaitable``); in a body
  on another hub, on the asyncio hub of a fresh native thread.
* ``plain_loop``: a coroutine on a plain asyncio loop (``asyncio.run``) in a fresh
  native thread that has no eventlet hub.

``Awaiter.run(coro_fn)`` must be called from a green context (the body); the
returned :class:`Awaited` joins green, bounded, and re-raises what the coroutine raised.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Dict

import eventlet
import eventlet.asyncio
from eventlet import hubs
from eventlet.hubs.asyncio import Hub as AsyncioHub

from eventlet_handler._hubs import current_hub
from eventlet_handler._hubthread import shutdown_current_hub
from support import native_threading as _threading


AWAITERS = ["asyncio_hub", "plain_loop"]
CoroFn = Callable[[], Awaitable[Any]]


class Awaited:
    """A running coroutine; ``join()`` waits green (bounded) and returns its value."""

    def __init__(self, wait: Callable[[float], None], outcome: Dict[str, Any]) -> None:
        self._wait = wait
        self._outcome = outcome

    def join(self, timeout: float = 10.0) -> Any:
        self._wait(timeout)
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome.get("value")


def _on_thread(target: Callable[[], None], name: str) -> Callable[[float], None]:
    thread = _threading.Thread(target=target, name=name, daemon=True)
    thread.start()

    def wait(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while thread.is_alive():
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: coroutine still running after {timeout} s")
            eventlet.sleep(0.001)

    return wait


class Awaiter:
    """Runs coroutines in the awaiting context named by ``kind``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"Awaiter({self.kind})"

    def refused_by(self, handler: Any) -> bool:
        """True where the handler refuses this awaiter (shared mode, plain loop)."""
        return self.kind == "plain_loop" and handler.mode == "shared"

    def run(self, coro_fn: CoroFn) -> Awaited:
        outcome: Dict[str, Any] = {}

        async def guarded() -> None:
            try:
                outcome["value"] = await coro_fn()
            except BaseException as exc:  # re-raised by join()
                outcome["error"] = exc

        if self.kind == "plain_loop":
            return Awaited(_on_thread(lambda: plain_run(guarded), "plain-loop"), outcome)
        if isinstance(current_hub(), AsyncioHub):
            gt = eventlet.asyncio.spawn_for_awaitable(guarded())

            def wait_green(timeout: float) -> None:
                with eventlet.Timeout(timeout):
                    gt.wait()

            return Awaited(wait_green, outcome)
        return Awaited(_on_thread(lambda: on_asyncio_hub(guarded), "asyncio-hub"), outcome)

    def abandon(self, coro_fn: CoroFn, parked: Any) -> Callable[[float], None]:
        """Start ``coro_fn`` on a loop of its own thread, wait until ``parked`` is set,
        then close that loop without cancelling the coroutine; returns a green join."""

        def plain() -> None:
            loop = asyncio.new_event_loop()
            task = loop.create_task(coro_fn())
            deadline = time.monotonic() + 5
            while not parked.is_set() and time.monotonic() < deadline:
                loop.run_until_complete(asyncio.sleep(0.005))
            loop.close()
            del task
            shutdown_current_hub()  # as in plain_run

        def hub() -> None:
            hubs.use_hub("asyncio")
            gt = eventlet.asyncio.spawn_for_awaitable(coro_fn())
            deadline = time.monotonic() + 5
            while not parked.is_set() and time.monotonic() < deadline:
                eventlet.sleep(0.005)
            shutdown_current_hub()  # closes the hub's loop with the coroutine parked
            del gt

        return _on_thread(plain if self.kind == "plain_loop" else hub, f"abandoned-{self.kind}")


def on_asyncio_hub(coro_fn: CoroFn) -> Any:
    """In a native thread without a hub: run ``coro_fn()`` on eventlet's asyncio hub
    there, then retire that hub."""
    hubs.use_hub("asyncio")
    try:
        return eventlet.asyncio.spawn_for_awaitable(coro_fn()).wait()
    finally:
        shutdown_current_hub()


def plain_run(coro_fn: CoroFn) -> Any:
    """``asyncio.run(coro_fn())`` in a native thread. In a monkey-patched process the
    loop's selector is eventlet's green one, which gives the thread a hub: retire it."""
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    finally:
        shutdown_current_hub()
