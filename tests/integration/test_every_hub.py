"""A KazooClient on our handler works on every eventlet hub, against a real ZooKeeper.

The other integration tests run on the process's hub (epolls, or asyncio in the
``EVENTLET_HUB=asyncio`` process). Here each case runs in a fresh native thread
whose hub is ``epolls``, ``poll``, ``selects`` or ``asyncio`` (the contract
suite's ``hub`` axis), in both handler modes, so the connection loop's
``select``, the wake pair and the bridge meet every hub with a real server.
Only in the unpatched default process: per-thread hubs and monkey patching do
not mix, and the asyncio process would repeat the same cases.
"""

from __future__ import annotations

import uuid
from typing import Any, List

import eventlet
import pytest
from kazoo.recipe.lock import Lock

from support import MONKEY_PATCHED, HandlerInBody, connected_client
from eventlet_handler.testing.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.skipif(
    MONKEY_PATCHED,
    reason="per-thread hubs need an unpatched process (it runs whatever EVENTLET_HUB says: each thread picks its hub)",
)

GREEN_THREADS = 50


def _exercise(hosts: str, mode: str) -> None:
    """CRUD, a data watch, a get_async pipeline and a contended Lock, all bounded."""
    root = f"/every-hub-{uuid.uuid4().hex[:10]}"
    with HandlerInBody(mode) as handler, connected_client(hosts, handler) as client:
        client.ensure_path(root)
        seen: List[Any] = []
        changed = handler.event_object()

        def watch(data: Any, stat: Any) -> None:
            seen.append(data)
            if data == b"v2":
                changed.set()

        client.create(f"{root}/node", b"v1")
        client.DataWatch(f"{root}/node")(watch)
        client.set(f"{root}/node", b"v2")
        assert changed.wait(10), f"the data watch saw only {seen!r}"
        assert seen == [b"v1", b"v2"]

        results = [client.get_async(f"{root}/node") for _ in range(500)]
        assert all(r.get(timeout=20)[0] == b"v2" for r in results)

        holders: List[int] = []
        inside: List[int] = []
        overlaps: List[int] = []

        def contend(index: int) -> None:
            # One Lock object per contender, as kazoo intends: a shared instance makes
            # kazoo itself retry with back-off (5 s for 50 threads, threading handler too).
            with Lock(client, f"{root}/lock", identifier=str(index)):
                inside.append(index)
                if len(inside) > 1:
                    overlaps.append(index)
                client.exists(root)  # a round trip while holding: others get to run
                holders.append(index)
                inside.remove(index)

        pool = eventlet.GreenPool(GREEN_THREADS)
        for index in range(GREEN_THREADS):
            pool.spawn_n(contend, index)
        with eventlet.Timeout(30):
            pool.waitall()
        assert sorted(holders) == list(range(GREEN_THREADS))
        assert overlaps == [], f"green threads {overlaps} held the lock together"
        client.delete(root, recursive=True)


@pytest.mark.hub_timeout(60)
@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_client_works_on_every_hub(hub: str, mode: str, zookeeper_server: ZooKeeperServer) -> None:
    _exercise(zookeeper_server.hosts, mode)
