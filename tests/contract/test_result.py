"""AsyncResult contract: every hub x every caller x both modes."""

from __future__ import annotations

import time
from typing import Any, List

import eventlet
import pytest

from support import Caller, home_thread_ident, until, native_threading as _threading


def _parked(result: Any) -> List[Any]:
    """The callers parked on ``result``. White-box, on purpose: a test must act only once
    its caller is parked, and nothing public says who waits (a sleep would only hope)."""
    return list(result._waiters)


def _park_then(caller: Caller, result: Any, action: Any) -> Any:
    """Once the test's green thread is parked on ``result``, run ``action`` from ``caller``."""
    if not caller.is_concurrent:
        return caller.run(action)
    return caller.run(lambda: (until(lambda: _parked(result), what="the waiter to park"), action()))


def test_AsyncResult_set_wakes_green_waiter(hub: str, caller: Caller, started: Any) -> None:
    with started() as handler:
        result = handler.async_result()
        done = _park_then(caller, result, lambda: result.set("value"))
        assert result.get(timeout=5) == "value"
        assert result.ready() and result.successful()
        done.join()


def test_AsyncResult_set_exception_raises_in_waiter(hub: str, caller: Caller, started: Any) -> None:
    with started() as handler:
        result = handler.async_result()
        done = _park_then(caller, result, lambda: result.set_exception(KeyError("boom")))
        with pytest.raises(KeyError, match="boom"):
            result.get(timeout=5)
        assert result.ready() and not result.successful()
        assert isinstance(result.exception, KeyError)
        done.join()


def test_AsyncResult_set_wakes_1000_green_waiters(hub: str, caller: Caller, started: Any) -> None:
    with started() as handler:
        result = handler.async_result()
        woke: List[Any] = []
        waiters = [eventlet.spawn(lambda: woke.append(result.get(timeout=10))) for _ in range(1000)]
        until(lambda: len(_parked(result)) == 1000, what="all 1000 waiters to park")
        caller.run(lambda: result.set(7)).join()
        with eventlet.Timeout(10):
            for waiter in waiters:
                waiter.wait()
        assert woke == [7] * 1000


def test_AsyncResult_native_waiter_wakes_on_set(hub: str, caller: Caller, started: Any) -> None:
    with started() as handler:
        result = handler.async_result()
        got: List[Any] = []
        parked = _threading.Event()

        def native_waiter() -> None:
            parked.set()
            got.append(result.get(timeout=5))

        waiter = Caller("native").run(native_waiter)
        until(parked.is_set, what="the native waiter to start")
        started_at = time.monotonic()
        caller.run(lambda: result.set("x")).join()
        waiter.join(5)
        assert got == ["x"]
        assert time.monotonic() - started_at < 4, "native waiter woke only near its timeout"


def test_AsyncResult_rawlink_runs_once_on_completion_worker(hub: str, caller: Caller, started: Any) -> None:
    with started() as handler:
        result = handler.async_result()
        calls: List[Any] = []
        ran = handler.event_object()

        def link(res: Any) -> None:
            calls.append((res.get(), _threading.get_ident()))
            ran.set()

        caller.run(lambda: result.rawlink(link)).join()
        caller.run(lambda: result.set(1)).join()
        assert ran.wait(5)
        result.set(2)  # a second set wakes and calls nobody again
        late = handler.event_object()
        caller.run(lambda: result.rawlink(lambda res: late.set())).join()
        assert late.wait(5)
        assert calls == [(1, home_thread_ident(handler))]


def test_AsyncResult_unlink_before_set_skips_callback(hub: str, caller: Caller, started: Any) -> None:
    with started() as handler:
        result = handler.async_result()
        calls: List[str] = []
        marker = handler.event_object()

        def removed(res: Any) -> None:
            calls.append("removed")

        result.rawlink(removed)
        result.rawlink(lambda res: marker.set())
        caller.run(lambda: result.unlink(removed)).join()
        caller.run(lambda: result.set(None)).join()
        assert marker.wait(5)
        assert calls == []


def test_AsyncResult_get_timeout_raises_timeout_exception(hub: str, started: Any) -> None:
    with started() as handler:
        result = handler.async_result()
        with pytest.raises(handler.timeout_exception, match=r"0\.05 s"):
            result.get(timeout=0.05)
        with pytest.raises(handler.timeout_exception, match="non-blocking"):
            result.get_nowait()
        assert result.wait(0.01) is False
        assert issubclass(handler.timeout_exception, Exception)


def test_AsyncResult_timeout_from_native_thread(started: Any, hub: str) -> None:
    with started() as handler:
        result = handler.async_result()
        with pytest.raises(handler.timeout_exception):
            Caller("native").run(lambda: result.get(timeout=0.05)).join(5)
