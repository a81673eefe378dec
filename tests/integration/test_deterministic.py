"""DeterministicHandler drives kazoo recipes against a real ZooKeeper, one step at a time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import eventlet
import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import EventType
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from eventlet_handler.testing import DeterministicHandler
from eventlet_handler.testing.zookeeper import ZooKeeperServer
from support import connected_client

pytestmark = pytest.mark.timeout(60)

CONNECT_TIMEOUT = 15.0
WAIT = 10.0


@pytest.fixture
def handler() -> DeterministicHandler:
    return DeterministicHandler(step_timeout=WAIT)


@pytest.fixture
def client(zookeeper_server: ZooKeeperServer, handler: DeterministicHandler) -> Iterator[KazooClient]:
    with connected_client(zookeeper_server.hosts, handler, CONNECT_TIMEOUT) as client:
        yield client


@pytest.fixture
def other_client(zookeeper_server: ZooKeeperServer) -> Iterator[KazooClient]:
    """Another session, as another process would have, on its own handler."""
    with connected_client(zookeeper_server.hosts, DeterministicHandler(), CONNECT_TIMEOUT) as client:
        yield client


@pytest.fixture
def path(client: KazooClient) -> str:
    base = f"/deterministic/{uuid.uuid4().hex}"
    client.ensure_path(base)  # kazoo's own completion chain runs without steps (rule 2)
    return base


def names(steps: Any) -> list[str]:
    return [step.name for step in steps]


# -- the handler alone -----------------------------------------------------------------


def test_DeterministicHandler_spawn_is_queued_until_run() -> None:
    handler = DeterministicHandler()
    calls: list[str] = []
    work = handler.spawn(calls.append, "spawned")
    assert work.is_alive() and calls == []
    assert str(handler.pending[0]) == "spawn: list.append('spawned')"
    assert handler.run_one() is handler.ran[0]
    assert calls == ["spawned"] and not work.is_alive()
    assert handler.run_one() is None


def test_DeterministicHandler_spawn_runs_for_real_when_not_deterministic() -> None:
    handler = DeterministicHandler(deterministic_spawn=False)
    done = handler.event_object()
    thread = handler.spawn(done.set)
    assert handler.pending == ()
    assert done.wait(WAIT)
    thread.join(WAIT)
    assert not thread.is_alive()


def test_DeterministicHandler_run_pending_leaves_steps_queued_by_steps() -> None:
    handler = DeterministicHandler()
    order: list[str] = []

    def first() -> None:
        order.append("first")
        handler.spawn(order.append, "queued by first")

    handler.spawn(first)
    handler.spawn(order.append, "second")
    assert handler.run_pending() == 2
    assert order == ["first", "second"]
    assert [str(step) for step in handler.pending] == ["spawn: list.append('queued by first')"]
    assert handler.drain(WAIT) == 1
    assert order == ["first", "second", "queued by first"]


def test_DeterministicHandler_step_errors_are_recorded_and_raised() -> None:
    handler = DeterministicHandler()

    def broken() -> None:
        raise ValueError("boom")

    handler.spawn(broken)
    with pytest.raises(ValueError, match="boom"):
        handler.run_one()
    assert [(step.name, str(exc)) for step, exc in handler.errors] == [("test_DeterministicHandler_step_errors_are_recorded_and_raised.<locals>.broken", "boom")]

    quiet = DeterministicHandler(raise_errors=False)
    quiet.spawn(broken)
    assert quiet.run_pending() == 1
    assert len(quiet.errors) == 1


def test_DeterministicHandler_drain_bounds_a_blocked_step() -> None:
    handler = DeterministicHandler()
    never = handler.event_object()
    handler.spawn(never.wait)
    with pytest.raises(handler.timeout_exception, match="still blocked after 0.2 s"):
        handler.drain(timeout=0.2)
    assert len(handler.errors) == 1


def test_DeterministicHandler_wait_for_pending_times_out_with_the_handler_exception() -> None:
    handler = DeterministicHandler()
    with pytest.raises(handler.timeout_exception, match="waited 0.1 s for 1 pending steps"):
        handler.wait_for_pending(timeout=0.1)


def test_DeterministicHandler_results_link_completions_as_steps() -> None:
    handler = DeterministicHandler()
    result = handler.async_result()
    seen: list[Any] = []
    result.rawlink(lambda r: seen.append(r.get()))
    result.set(42)
    assert result.get(timeout=0) == 42 and seen == []
    assert handler.pending[0].kind == "completion"
    handler.run_one()
    assert seen == [42]


def test_DeterministicHandler_run_one_refuses_to_nest() -> None:
    handler = DeterministicHandler()
    handler.spawn(handler.run_one)
    handler.spawn(lambda: None)
    with pytest.raises(RuntimeError, match="inside the running step"):
        handler.run_one()


# -- kazoo recipes against a real server -------------------------------------------------


def test_DataWatch_calls_are_stepped(client: KazooClient, handler: DeterministicHandler, path: str) -> None:
    node = f"{path}/data"
    client.create(node, b"0")
    seen: list[bytes | None] = []
    DataWatch(client, node, lambda data, stat: seen.append(data))
    assert seen == [b"0"]  # the first call is synchronous, in DataWatch()
    assert handler.pending == ()

    client.set(node, b"1")
    client.set(node, b"2")
    # ZooKeeper fired the one armed watch; the second change waits for re-arming.
    assert names(handler.pending) == ["DataWatch._watcher"]
    assert handler.pending[0].args[0].type == EventType.CHANGED
    assert seen == [b"0"]

    handler.run_one()
    assert seen == [b"0", b"2"]
    client.set(node, b"3")
    assert handler.run_pending() == 1
    assert seen == [b"0", b"2", b"3"]
    assert names(handler.ran) == ["DataWatch._watcher", "DataWatch._watcher"]


def test_ChildrenWatch_calls_are_stepped(client: KazooClient, handler: DeterministicHandler, path: str) -> None:
    seen: list[list[str]] = []
    ChildrenWatch(client, path, lambda children: seen.append(sorted(children)))
    assert seen == [[]]

    client.create(f"{path}/a")
    client.create(f"{path}/b")
    assert names(handler.pending) == ["ChildrenWatch._watcher"]
    handler.run_one()
    assert seen == [[], ["a", "b"]]

    client.delete(f"{path}/a")
    assert handler.pending[0].args[0].type == EventType.CHILD
    handler.run_one()
    assert seen == [[], ["a", "b"], ["b"]]


def test_watches_run_in_the_order_ZooKeeper_sent_them(
    client: KazooClient, other_client: KazooClient, handler: DeterministicHandler, path: str
) -> None:
    order: list[str] = []
    DataWatch(client, path, lambda data, stat: order.append(f"data {data!r}"))
    ChildrenWatch(client, path, lambda children: order.append(f"children {sorted(children)}"))
    order.clear()

    other_client.set(path, b"x")
    other_client.create(f"{path}/c")
    handler.wait_for_pending(2, timeout=WAIT)
    assert names(handler.pending) == ["DataWatch._watcher", "ChildrenWatch._watcher"]

    handler.run_one()
    assert order == ["data b'x'"]
    handler.run_one()
    assert order == ["data b'x'", "children ['c']"]


def test_application_completions_are_steps_kazoo_plumbing_is_not(
    client: KazooClient, handler: DeterministicHandler, path: str
) -> None:
    client.create(f"{path}/deep/er/node", b"v", makepath=True)  # ensure_path chain inside
    assert handler.pending == ()
    result = client.get_async(f"{path}/deep/er/node")
    values: list[bytes] = []
    result.rawlink(lambda r: values.append(r.get()[0]))
    assert result.get(timeout=WAIT)[0] == b"v"
    assert [step.kind for step in handler.pending] == ["completion"]
    assert values == []
    handler.run_one()
    assert values == [b"v"]


def test_Lock_contender_wakes_only_when_the_test_steps_the_watch(
    client: KazooClient, handler: DeterministicHandler, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_path = f"{path}/lock"
    events: list[str] = []
    watching = eventlet.event.Event()
    real_get = client.get

    def get(node: str, watch: Any = None) -> Any:  # tells the test when the watch is set
        reply = real_get(node, watch)
        if watch is not None and not watching.ready():
            watching.send(node)
        return reply

    monkeypatch.setattr(client, "get", get)

    first = client.Lock(lock_path, "first")
    assert first.acquire(timeout=WAIT)
    events.append("first acquired")

    second = client.Lock(lock_path, "second")

    def contend() -> None:
        assert second.acquire(timeout=WAIT)
        events.append("second acquired")

    contender = eventlet.spawn(contend)
    with eventlet.Timeout(WAIT):
        predecessor = watching.wait()
    assert predecessor.endswith(first.node)

    first.release()
    events.append("first released")
    handler.wait_for_pending(1, timeout=WAIT)
    step = handler.pending[0]
    assert step.name == "Lock._watch_predecessor"
    assert step.args[0].type == EventType.DELETED
    assert not contender.dead and events == ["first acquired", "first released"]

    handler.run_one()
    events.append("stepped")
    with eventlet.Timeout(WAIT):
        contender.wait()
    assert events == ["first acquired", "first released", "stepped", "second acquired"]
    assert second.is_acquired
    second.release()
    assert names(handler.ran) == ["Lock._watch_predecessor"]
