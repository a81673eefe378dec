"""Both handlers satisfy one ``KazooHandler`` protocol, and the contract cases that apply
to the deterministic one hold for it too (issue 11: the two had drifted)."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import pytest

from support import import_or_skip
from kazoo.protocol.states import Callback

from eventlet_handler import EventletHandler, KazooHandler, TaskLike
from eventlet_handler.testing import DeterministicHandler

HANDLERS = [EventletHandler, DeterministicHandler]


def _protocol_members(protocol: type) -> list[str]:
    return sorted(
        name for name in dir(protocol)
        if not name.startswith("_") and (callable(getattr(protocol, name)) or isinstance(getattr(protocol, name), property))
    )


def _parameters(func: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter: what a caller can rely on."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.mark.parametrize("handler_class", HANDLERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("member", _protocol_members(KazooHandler))
def test_handler_signature_matches_the_protocol(handler_class: type, member: str) -> None:
    expected = getattr(KazooHandler, member)
    actual = getattr(handler_class, member)
    if isinstance(expected, property):  # read-only: a class attribute or a property will do
        assert hasattr(handler_class(), member), f"{handler_class.__name__} has no {member}"
        return
    assert _parameters(actual) == _parameters(expected), (
        f"{handler_class.__name__}.{member}{inspect.signature(actual)} differs from "
        f"KazooHandler.{member}{inspect.signature(expected)}"
    )


@pytest.mark.parametrize("handler_class", HANDLERS, ids=lambda c: c.__name__)
def test_handler_instances_are_KazooHandlers(handler_class: type) -> None:
    handler = handler_class()
    assert isinstance(handler, KazooHandler)
    assert issubclass(handler.timeout_exception, Exception) and isinstance(handler.name, str)


# -- the contract cases that apply to DeterministicHandler --------------------------


def test_deterministic_dispatch_runs_in_dispatch_order() -> None:
    handler = DeterministicHandler()
    handler.start()
    seen: list[int] = []
    for i in range(20):
        handler.dispatch_callback(Callback("watch", seen.append, (i,)))
    assert handler.drain(5) == 20
    assert seen == list(range(20))


@pytest.mark.parametrize("handler_class", HANDLERS, ids=lambda c: c.__name__)
def test_dispatch_callback_refuses_what_is_not_a_Callback(handler_class: type) -> None:
    handler = handler_class()
    with pytest.raises(TypeError, match="Callback"):
        handler.dispatch_callback(print)
    with pytest.raises(TypeError, match="not callable"):
        handler.dispatch_callback(Callback("watch", 42, ()))


def test_deterministic_spawn_returns_a_task_whose_join_says_whether_it_ran() -> None:
    handler = DeterministicHandler()
    handler.start()
    task = handler.spawn(lambda: None)
    assert isinstance(task, TaskLike)
    assert task.is_alive() and task.join(0.01) is False
    handler.run_pending(5)
    assert task.join(0.01) is True and not task.is_alive()


def test_deterministic_spawn_for_real_returns_a_joinable_task() -> None:
    handler = DeterministicHandler(deterministic_spawn=False)
    handler.start()
    ran: list[bool] = []
    task = handler.spawn(ran.append, True)
    assert isinstance(task, TaskLike)
    assert task.join(5) is True and ran == [True]


def test_deterministic_stop_takes_a_timeout_and_checks_it() -> None:
    handler = DeterministicHandler()
    handler.start()
    with pytest.raises(ValueError):
        handler.stop(timeout=-1)
    assert handler.running
    handler.stop(timeout=5)
    assert not handler.running


STATIC_CHECK = """
from eventlet_handler import EventletHandler, KazooHandler, TaskLike
from eventlet_handler.testing import DeterministicHandler

real: KazooHandler = EventletHandler()
deterministic: KazooHandler = DeterministicHandler()
task: TaskLike = real.spawn(print)
queued: TaskLike = deterministic.spawn(print)
"""


@pytest.mark.timeout(180)
def test_both_handlers_satisfy_the_protocol_for_a_type_checker(tmp_path: Any) -> None:
    """What a user's ``mypy --strict`` sees: both handlers are ``KazooHandler``s and
    their ``spawn()`` results ``TaskLike``s, through the package facade."""
    import os
    import subprocess
    import sys

    import_or_skip("mypy")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    (tmp_path / "use.py").write_text(STATIC_CHECK)
    proc = subprocess.run(
        # The user's file under --strict; the package itself is checked by test_typing.
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--no-incremental",
         "--follow-imports=silent",
         "--cache-dir", os.devnull, str(tmp_path / "use.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=170,
        env=dict(os.environ, MYPYPATH=root),
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
