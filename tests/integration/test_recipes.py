"""kazoo's recipes on EventletHandler, through ``client.stop()``/``client.start()`` and
through a dropped connection, in both handler modes, against a real ZooKeeper.

Each recipe is built and used once, then the event happens, then the *same* recipe
objects must work again: each check fails if the recipe is broken afterwards (a lock
that no longer excludes, a watch that no longer fires, a cache that stops following).
A restart ends the session (ephemeral nodes go); a dropped connection keeps it (kazoo
reconnects with the same session), so some checks differ by event, as they would on
kazoo's threading handler.
"""

from __future__ import annotations

import socket
import time
import uuid
from datetime import timedelta
from typing import Any, Callable, Dict, Iterator, List, Tuple

import eventlet
import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.recipe.lease import NonBlockingLease
from kazoo.recipe.partitioner import SetPartitioner

from support import kazoo_socket, until

pytestmark = pytest.mark.timeout(60)

WAIT = 6.0
MODES = ("shared", "isolated")
EVENTS = ("restart", "drop")


def _restart(client: KazooClient) -> None:
    client.stop()
    client.start(timeout=15)


def _drop(client: KazooClient) -> None:
    """Cut the client's TCP connection under it: kazoo reconnects, same session."""
    states: List[str] = []
    suspended = client.handler.event_object()

    def listener(state: str) -> None:
        states.append(state)
        if state == KazooState.SUSPENDED:
            suspended.set()

    client.add_listener(listener)
    try:
        session = client.client_id
        kazoo_socket(client).shutdown(socket.SHUT_RDWR)
        assert suspended.wait(WAIT), "the dropped connection was not noticed"
        until(lambda: client.state == KazooState.CONNECTED, WAIT, "reconnect after the drop")
        assert client.client_id[0] == session[0], "the drop was not survived with the same session"
    finally:
        client.remove_listener(listener)


# Each recipe: set_up(client, path) -> state, used once before the event; check(client,
# path, state, event) after it.

def lock_set_up(client: KazooClient, path: str) -> Any:
    lock = client.Lock(path, "one")
    assert lock.acquire(timeout=WAIT)
    lock.release()
    return lock


def lock_check(client: KazooClient, path: str, lock: Any, event: str) -> None:
    assert lock.acquire(timeout=WAIT)
    other = client.Lock(path, "two")
    assert not other.acquire(blocking=False), "the lock no longer excludes"
    assert lock.contenders() == ["one"]
    lock.release()
    assert other.acquire(timeout=WAIT)
    other.release()


def semaphore_set_up(client: KazooClient, path: str) -> Any:
    sem = client.Semaphore(path, max_leases=2)
    assert sem.acquire(timeout=WAIT)
    sem.release()
    return sem


def semaphore_check(client: KazooClient, path: str, sem: Any, event: str) -> None:
    second = client.Semaphore(path, max_leases=2)
    third = client.Semaphore(path, max_leases=2)
    assert sem.acquire(timeout=WAIT) and second.acquire(timeout=WAIT)
    assert not third.acquire(blocking=False), "a third lease on a 2-lease semaphore"
    sem.release()
    assert third.acquire(timeout=WAIT)
    second.release()
    third.release()


def _lead_once(client: KazooClient, election: Any) -> None:
    led = client.handler.event_object()
    task = client.handler.spawn(election.run, led.set)
    assert led.wait(WAIT), "the election never chose a leader"
    assert task.join(WAIT)


def election_set_up(client: KazooClient, path: str) -> Any:
    election = client.Election(path, "me")
    _lead_once(client, election)
    return election


def election_check(client: KazooClient, path: str, election: Any, event: str) -> None:
    _lead_once(client, election)
    assert election.contenders() == [], "the leader did not leave the election"


def barrier_set_up(client: KazooClient, path: str) -> Any:
    barrier = client.Barrier(path)
    barrier.create()
    barrier.remove()
    return barrier


def barrier_check(client: KazooClient, path: str, barrier: Any, event: str) -> None:
    barrier.create()
    passed = client.handler.spawn(barrier.wait, WAIT)
    eventlet.sleep(0.1)
    assert passed.is_alive(), "wait() passed a barrier that is up"
    barrier.remove()
    assert passed.join(WAIT) and passed.exception is None


def double_barrier_set_up(client: KazooClient, path: str) -> Any:
    barrier = client.DoubleBarrier(path, 1)
    barrier.enter()
    barrier.leave()
    return barrier


def double_barrier_check(client: KazooClient, path: str, barrier: Any, event: str) -> None:
    barrier.enter()
    assert barrier.participating and client.get_children(path) != []
    barrier.leave()
    assert not barrier.participating


def counter_set_up(client: KazooClient, path: str) -> Any:
    counter = client.Counter(path)
    counter += 1
    return counter


def counter_check(client: KazooClient, path: str, counter: Any, event: str) -> None:
    counter += 5
    assert counter.value == 6
    assert client.Counter(path).value == 6


def lease_set_up(client: KazooClient, path: str) -> Any:
    assert NonBlockingLease(client, path, timedelta(seconds=60), identifier="holder")
    return None


def lease_check(client: KazooClient, path: str, state: Any, event: str) -> None:
    assert not NonBlockingLease(client, path, timedelta(seconds=60), identifier="other"), (
        "another holder got a lease that is still running")
    assert NonBlockingLease(client, path, timedelta(seconds=60), identifier="holder")


def party_set_up(client: KazooClient, path: str) -> Any:
    party = client.Party(path, "member")
    party.join()
    assert len(party) == 1
    return party


def party_check(client: KazooClient, path: str, party: Any, event: str) -> None:
    if event == "restart":  # a new session: the ephemeral membership is gone
        until(lambda: len(party) == 0, WAIT, "the old session's membership to go")
        party.leave()
        party.join()
    assert list(client.Party(path)) == ["member"]
    party.leave()
    assert len(party) == 0


def _queue_set_up(kind: str) -> Callable[[KazooClient, str], Any]:
    def set_up(client: KazooClient, path: str) -> Any:
        queue = getattr(client, kind)(path)
        queue.put(b"1")
        return queue

    return set_up


def queue_check(client: KazooClient, path: str, queue: Any, event: str) -> None:
    queue.put(b"2")
    assert [queue.get(), queue.get(), queue.get()] == [b"1", b"2", None]


def locking_queue_check(client: KazooClient, path: str, queue: Any, event: str) -> None:
    queue.put(b"2")
    assert queue.get(WAIT) == b"1" and queue.consume()
    assert queue.get(WAIT) == b"2" and queue.consume()
    assert queue.get(0.1) is None


def partitioner_set_up(client: KazooClient, path: str) -> Any:
    partitioner = SetPartitioner(client, path, ("a", "b", "c"), time_boundary=0.1)
    partitioner.wait_for_acquire(WAIT)
    assert partitioner.acquired and sorted(partitioner) == ["a", "b", "c"]
    return [partitioner]


def partitioner_check(client: KazooClient, path: str, box: List[Any], event: str) -> None:
    deadline = time.monotonic() + WAIT
    while not box[0].acquired:
        assert time.monotonic() < deadline, f"the partitioner is stuck in {box[0].state}"
        if box[0].failed:  # kazoo's rule after a lost session: make a new one
            box[0] = SetPartitioner(client, path, ("a", "b", "c"), time_boundary=0.1)
        elif box[0].release:
            box[0].release_set()
        elif box[0].allocating:
            box[0].wait_for_acquire(WAIT)
        eventlet.sleep(0.01)
    assert sorted(box[0]) == ["a", "b", "c"]
    box[0].finish()


class _Cache:
    def __init__(self, client: KazooClient, path: str) -> None:
        self.events: List[Any] = []
        self.cache = TreeCache(client, path)
        self.cache.listen(self.events.append)
        self.cache.start()
        initialized = TreeEvent.INITIALIZED
        until(lambda: any(e.event_type == initialized for e in self.events), WAIT, "TreeCache start")

    def follows(self, client: KazooClient, child: str, data: bytes) -> None:
        client.create(child, data)
        until(lambda: self.cache.get_data(child) is not None, WAIT, f"TreeCache to see {child}")
        assert self.cache.get_data(child).data == data
        client.set(child, data + b"!")
        changed = data + b"!"
        until(lambda: self.cache.get_data(child).data == changed, WAIT, f"TreeCache to see {child} change")


def tree_cache_set_up(client: KazooClient, path: str) -> Any:
    cache = _Cache(client, path)
    cache.follows(client, f"{path}/before", b"1")
    return cache


def tree_cache_check(client: KazooClient, path: str, cache: _Cache, event: str) -> None:
    try:
        cache.follows(client, f"{path}/after", b"2")
        assert cache.cache.get_children(path) == frozenset({"before", "after"})
    finally:
        cache.cache.close()


def _data_watch(client: KazooClient, path: str) -> List[Any]:
    seen: List[Any] = []
    client.set(path, b"v1")
    client.DataWatch(path)(lambda data, stat: seen.append(data))
    until(lambda: seen[-1:] == [b"v1"], WAIT, "DataWatch's first call")
    return seen


def data_watch_check(client: KazooClient, path: str, seen: List[Any], event: str) -> None:
    client.set(path, b"v2")
    until(lambda: seen[-1:] == [b"v2"], WAIT, "DataWatch after the event")


def _children_watch(client: KazooClient, path: str) -> List[Any]:
    seen: List[Any] = []
    client.ChildrenWatch(path)(lambda children: seen.append(sorted(children)))
    until(lambda: seen[-1:] == [[]], WAIT, "ChildrenWatch's first call")
    return seen


def children_watch_check(client: KazooClient, path: str, seen: List[Any], event: str) -> None:
    client.create(f"{path}/kid")
    until(lambda: seen[-1:] == [["kid"]], WAIT, "ChildrenWatch after the event")


RECIPES: Dict[str, Tuple[Callable[..., Any], Callable[..., None]]] = {
    "Lock": (lock_set_up, lock_check),
    "Semaphore": (semaphore_set_up, semaphore_check),
    "Election": (election_set_up, election_check),
    "Barrier": (barrier_set_up, barrier_check),
    "DoubleBarrier": (double_barrier_set_up, double_barrier_check),
    "Counter": (counter_set_up, counter_check),
    "NonBlockingLease": (lease_set_up, lease_check),
    "Party": (party_set_up, party_check),
    "Queue": (_queue_set_up("Queue"), queue_check),
    "LockingQueue": (_queue_set_up("LockingQueue"), locking_queue_check),
    "SetPartitioner": (partitioner_set_up, partitioner_check),
    "TreeCache": (tree_cache_set_up, tree_cache_check),
    "DataWatch": (_data_watch, data_watch_check),
    "ChildrenWatch": (_children_watch, children_watch_check),
}


def _cases() -> Iterator[Any]:
    for mode in MODES:
        for event in EVENTS:
            for name in RECIPES:
                marks = [pytest.mark.eventlet_handler_options(mode=mode)]
                yield pytest.param(mode, event, name, id=f"{name}-{event}-{mode}", marks=marks)


@pytest.fixture
def path(kazoo_client: KazooClient) -> Iterator[str]:
    base = f"/recipes-{uuid.uuid4().hex[:10]}"
    kazoo_client.ensure_path(base)
    yield base
    kazoo_client.delete(base, recursive=True)


@pytest.mark.parametrize("mode, event, name", list(_cases()))
def test_recipe_works_after_the_event(kazoo_client: KazooClient, path: str, mode: str, event: str, name: str) -> None:
    assert kazoo_client.handler.mode == mode
    set_up, check = RECIPES[name]
    state = set_up(kazoo_client, path)
    (_restart if event == "restart" else _drop)(kazoo_client)
    check(kazoo_client, path, state, event)
