"""Bad input: each call gets a clear exception or its documented behaviour; none hangs."""

from __future__ import annotations

import errno
import math
import socket
from typing import Any

import pytest
from kazoo.protocol.states import Callback

from eventlet_handler import EventletHandler, HandlerStoppedError, NoHubError
from support import in_native_thread, native_threading as _threading


pytestmark = pytest.mark.timeout(20)

BAD_TIMEOUTS = [
    pytest.param(-1, ValueError, id="negative"),
    pytest.param(-0.001, ValueError, id="small-negative"),
    pytest.param(math.nan, ValueError, id="nan"),
    pytest.param("1", TypeError, id="string"),
    pytest.param(b"1", TypeError, id="bytes"),
    pytest.param([1], TypeError, id="list"),
    pytest.param(True, TypeError, id="bool"),
]


@pytest.mark.parametrize("func", [None, 42, "not callable", object()])
def test_spawn_of_a_non_callable_is_a_TypeError(eventlet_handler: EventletHandler, func: Any) -> None:
    with pytest.raises(TypeError, match="callable"):
        eventlet_handler.spawn(func)


def test_spawn_on_a_stopped_isolated_handler_is_refused() -> None:
    handler = EventletHandler("isolated")
    with pytest.raises(HandlerStoppedError, match="start"):
        handler.spawn(lambda: None)
    handler.start()
    handler.stop(timeout=10)
    threads = set(_threading.enumerate())
    with pytest.raises(HandlerStoppedError, match="start"):
        handler.spawn(lambda: None)
    assert set(_threading.enumerate()) == threads, "a refused spawn started a home (its hub thread)"


def test_spawn_before_start_from_a_native_thread_without_a_hub_is_refused() -> None:
    """Shared mode spawns into the caller's hub before start(); a plain native thread
    has none that would ever run, so its Task would never finish: refused instead.
    One precondition, one exception: start() there raises the same NoHubError (a
    RuntimeError, as before)."""
    handler = EventletHandler("shared")
    outcome: list[BaseException] = []

    def native() -> None:
        for call in (lambda: handler.spawn(lambda: None), handler.start):
            try:
                call()
            except BaseException as exc:
                outcome.append(exc)

    in_native_thread(native)
    assert [type(exc) for exc in outcome] == [NoHubError, NoHubError], outcome
    assert all(isinstance(exc, RuntimeError) and "no eventlet hub" in str(exc) for exc in outcome)
    assert not handler.running


@pytest.mark.parametrize("timeout, error", BAD_TIMEOUTS)
def test_bad_timeouts_are_refused_before_waiting(
    eventlet_handler: EventletHandler, timeout: Any, error: type
) -> None:
    result = eventlet_handler.async_result()
    event = eventlet_handler.event_object()
    reader, writer = eventlet_handler.create_socket_pair()
    try:
        calls = {
            "AsyncResult.get": lambda: result.get(timeout=timeout),
            "AsyncResult.wait": lambda: result.wait(timeout),
            "Event.wait": lambda: event.wait(timeout),
            "select": lambda: eventlet_handler.select([reader], [], [], timeout),
            "stop": lambda: eventlet_handler.stop(timeout=timeout),
        }
        for name, call in calls.items():
            with pytest.raises(error, match="timeout"):
                call()
        assert eventlet_handler.running, "a refused stop() must not stop the handler"
        assert not result.ready()
    finally:
        reader.close()
        writer.close()


def test_infinite_timeout_is_accepted_and_zero_returns_at_once(eventlet_handler: EventletHandler) -> None:
    result = eventlet_handler.async_result()
    assert result.wait(0) is False
    with pytest.raises(eventlet_handler.timeout_exception):
        result.get(timeout=0)
    result.set("done")
    assert result.get(timeout=math.inf) == "done"


def test_select_on_a_closed_socket_raises_EBADF(eventlet_handler: EventletHandler) -> None:
    sock = socket.socket()
    sock.close()
    with pytest.raises(OSError) as info:
        eventlet_handler.select([sock], [], [], 1.0)
    assert info.value.errno == errno.EBADF
    reader, writer = eventlet_handler.create_socket_pair()
    reader.close()
    writer.close()
    for lists in (([reader], [], []), ([], [reader], []), ([], [], [reader])):
        with pytest.raises(OSError) as info:
            eventlet_handler.select(*lists, 1.0)
        assert info.value.errno == errno.EBADF


def test_select_on_a_non_socket_is_a_clear_error(eventlet_handler: EventletHandler) -> None:
    with pytest.raises((TypeError, ValueError)):
        eventlet_handler.select([object()], [], [], 0.1)


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_dispatch_callback_after_stop_runs_inline_in_the_caller(mode: str) -> None:
    """Documented (handler rule 5, kazoo's rule for stopped handlers): a callback
    dispatched while the handler is not running runs at once in the calling thread."""
    handler = EventletHandler(mode)
    handler.start()
    handler.stop(timeout=10)
    ran: list[int] = []
    handler.dispatch_callback(Callback("watch", lambda: ran.append(_threading.get_ident()), ()))
    assert ran == [_threading.get_ident()]


def test_dispatch_callback_after_stop_that_raises_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = EventletHandler("isolated")

    def broken() -> None:
        raise RuntimeError("callback broke")

    handler.dispatch_callback(Callback("watch", broken, ()))
    assert "callback broke" in caplog.text


@pytest.mark.parametrize("callback", [None, "watch", (print, ()), Callback("watch", "not callable", ())])
def test_dispatch_callback_of_a_non_callback_is_a_TypeError(
    eventlet_handler: EventletHandler, callback: Any
) -> None:
    with pytest.raises(TypeError, match="dispatch_callback"):
        eventlet_handler.dispatch_callback(callback)


@pytest.mark.parametrize("value", ["boom", 42, None, ValueError, object()])
def test_AsyncResult_set_exception_of_a_non_exception_is_a_TypeError(
    eventlet_handler: EventletHandler, value: Any
) -> None:
    result = eventlet_handler.async_result()
    with pytest.raises(TypeError, match="exception"):
        result.set_exception(value)
    assert not result.ready(), "a refused set_exception() must leave the result pending"
    result.set_exception(ValueError("real"))
    with pytest.raises(ValueError, match="real"):
        result.get(timeout=1)


def test_AsyncResult_rawlink_of_a_non_callable_is_a_TypeError(eventlet_handler: EventletHandler) -> None:
    with pytest.raises(TypeError, match="callable"):
        eventlet_handler.async_result().rawlink("not callable")


def test_create_connection_ignores_unknown_keywords_with_a_warning(
    eventlet_handler: EventletHandler, caplog: pytest.LogCaptureFixture
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        conn = eventlet_handler.create_connection(
            listener.getsockname(), timeout=5.0, some_future_kazoo_option=True
        )
        conn.close()
    finally:
        listener.close()
    assert "some_future_kazoo_option" in caplog.text


def test_create_connection_with_half_a_client_certificate_is_a_ValueError(
    eventlet_handler: EventletHandler,
) -> None:
    with pytest.raises(ValueError, match="certfile"):
        eventlet_handler.create_connection(("127.0.0.1", 9), use_ssl=True, certfile="/nonexistent.pem")


def _shared_handler_whose_home_hub_is_gone() -> EventletHandler:
    """A shared-mode handler whose home thread retired its hub without stopping it (an
    application thread that ended)."""
    from eventlet import hubs

    from eventlet_handler._hubthread import shutdown_current_hub

    handler = EventletHandler("shared")

    def service() -> None:
        hubs.get_hub()
        handler.start()
        shutdown_current_hub()  # the thread retires its hub, the handler still "running"

    in_native_thread(service)
    return handler


def test_no_private_BridgeClosed_escapes_when_the_home_hub_is_gone() -> None:
    """Dispatching runs the callback inline (the rule for a handler that cannot run it),
    spawn() raises HandlerStoppedError, stop() returns; none lets the private
    BridgeClosed out."""
    handler = _shared_handler_whose_home_hub_is_gone()
    ran: list[int] = []
    handler.dispatch_callback(Callback("watch", ran.append, (1,)))
    assert ran == [1]
    with pytest.raises(HandlerStoppedError, match="start"):
        handler.spawn(lambda: None)
    handler.stop(timeout=5)
    assert not handler.running


def test_spawn_refused_because_the_home_hub_is_gone_leaves_no_task_behind() -> None:
    """A spawn() that cannot reach its home hub raises and does not count as running
    work: a phantom task would keep the home from ever retiring."""
    handler = _shared_handler_whose_home_hub_is_gone()
    with pytest.raises(HandlerStoppedError):
        handler.spawn(print)
    assert handler.stats()["tasks_running"] == 0, "the refused spawn is still counted as running"
    handler.stop(timeout=5)
