"""AsyncResult's small surface: repr per state, ``value``, and the timeout messages."""

from __future__ import annotations

import pytest

from eventlet_handler import EventletHandler, HandlerTimeoutError


@pytest.fixture
def handler() -> EventletHandler:
    return EventletHandler("shared")  # results need no running handler


def test_AsyncResult_repr_names_its_state(handler: EventletHandler) -> None:
    pending, valued, failed = handler.async_result(), handler.async_result(), handler.async_result()
    valued.set([1])
    failed.set_exception(KeyError("k"))
    assert repr(pending) == "<AsyncResult pending>"
    assert repr(valued) == "<AsyncResult value=[1]>"
    assert repr(failed) == "<AsyncResult exception=KeyError('k')>"


def test_AsyncResult_value_is_an_attribute(handler: EventletHandler) -> None:
    result = handler.async_result()
    assert result.value is None
    result.set("v")
    assert result.value == "v"


def test_AsyncResult_timeout_messages_say_which_wait_gave_up(handler: EventletHandler) -> None:
    result = handler.async_result()
    with pytest.raises(HandlerTimeoutError, match="non-blocking"):
        result.get(block=False, timeout=1.0)  # block=False: the timeout is not waited for
    with pytest.raises(HandlerTimeoutError, match="after waiting 0.01 s"):
        result.get(timeout=0.01)


def test_AsyncResult_unlink_of_a_callback_never_linked_is_a_no_op(handler: EventletHandler) -> None:
    result = handler.async_result()
    result.unlink(print)  # never linked: nothing to remove, nothing raised
    result.rawlink(print)
    result.unlink(print)
    result.unlink(print)  # already removed: the same
