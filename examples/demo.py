"""Hundreds of green threads (and a few native ones) coordinating through one kazoo client.

Run with ``make demo``. Starts a local ZooKeeper from Debian's jars (or uses
``ZK_HOSTS``), then on one ``KazooClient(handler=EventletHandler())``:

* 300 green workers each join a group (an ephemeral child), bump a shared
  ``Counter`` (optimistic: conflicting bumps retry), and append to a ledger under a ``Lock``;
* 4 native threads bump the same counter at the same time;
* 20 green candidates take turns as leader through an ``Election``;
* a ``ChildrenWatch`` and a ``DataWatch`` follow along; progress prints twice a second.

The summary checks every number against what ZooKeeper holds.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
import warnings
from typing import Any, Dict, List, Optional

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet announces its own deprecation on import
    import eventlet

from eventlet import patcher
from kazoo.client import KazooClient

from eventlet_handler import EventletHandler
from eventlet_handler.testing.zookeeper import ZooKeeperServer, zookeeper_available

_threading: Any = patcher.original("threading")

GREEN_WORKERS = 300
BUMPS_EACH = 1
NATIVE_THREADS = 4
NATIVE_BUMPS = 10
CANDIDATES = 20


class Demo:
    def __init__(self, client: KazooClient, root: str) -> None:
        self.client = client
        self.root = root
        self.counter = client.Counter(f"{root}/counter")
        self.members_seen = 0
        self.counter_seen = 0
        self.terms: List[int] = []
        self.ledger_writes = 0
        self.errors: List[str] = []

    def watch(self) -> None:
        self.client.ensure_path(f"{self.root}/members")
        self.client.ensure_path(f"{self.root}/counter")

        @self.client.ChildrenWatch(f"{self.root}/members")
        def members(children: List[str]) -> None:
            self.members_seen = max(self.members_seen, len(children))

        @self.client.DataWatch(f"{self.root}/counter")
        def counter(data: Optional[bytes], stat: Any) -> None:
            if data:
                self.counter_seen = max(self.counter_seen, int(data))

    def green_worker(self, n: int) -> None:
        try:
            self.client.create(f"{self.root}/members/w{n:03d}", ephemeral=True)
            for _ in range(BUMPS_EACH):
                self.counter += 1
            with self.client.Lock(f"{self.root}/ledger-lock", identifier=f"w{n}"):
                data, _ = self.client.get(f"{self.root}/ledger")
                self.client.set(f"{self.root}/ledger", data + b"%d," % n)
                self.ledger_writes += 1
        except Exception as exc:  # counted and shown in the summary
            self.errors.append(f"worker {n}: {exc!r}")

    def native_worker(self) -> None:
        try:
            for _ in range(NATIVE_BUMPS):
                self.counter += 1
        except Exception as exc:
            self.errors.append(f"native thread: {exc!r}")

    def candidate(self, n: int) -> None:
        def lead() -> None:
            self.terms.append(n)
            eventlet.sleep(0.01)

        self.client.Election(f"{self.root}/election", identifier=f"c{n}").run(lead)

    def progress(self, started: float) -> str:
        return (
            f"  {time.monotonic() - started:5.1f} s  members seen {self.members_seen:3d}/{GREEN_WORKERS}"
            f"  counter (watch) {self.counter_seen:4d}/{expected_count()}"
            f"  ledger {self.ledger_writes:3d}/{GREEN_WORKERS}  leaders {len(self.terms):2d}/{CANDIDATES}"
        )


def expected_count() -> int:
    return GREEN_WORKERS * BUMPS_EACH + NATIVE_THREADS * NATIVE_BUMPS


def run(hosts: str) -> int:
    handler = EventletHandler()
    client = KazooClient(hosts=hosts, handler=handler)
    client.start(timeout=15)
    print(f"connected to {hosts} with {handler!r}")
    root = f"/demo-{uuid.uuid4().hex[:8]}"
    client.ensure_path(root)
    client.create(f"{root}/ledger", b"")
    demo = Demo(client, root)
    demo.watch()
    started = time.monotonic()
    natives = [_threading.Thread(target=demo.native_worker, daemon=True) for _ in range(NATIVE_THREADS)]
    for thread in natives:
        thread.start()
    greens = [eventlet.spawn(demo.green_worker, n) for n in range(GREEN_WORKERS)]
    greens += [eventlet.spawn(demo.candidate, n) for n in range(CANDIDATES)]
    deadline = started + 120
    while (any(not g.dead for g in greens) or any(t.is_alive() for t in natives)) and time.monotonic() < deadline:
        print(demo.progress(started), flush=True)
        eventlet.sleep(0.5)
    elapsed = time.monotonic() - started
    eventlet.sleep(0.2)  # let the last watch callbacks land
    print(demo.progress(started))
    ok = summarize(demo, elapsed, handler)
    client.delete(root, recursive=True)
    client.stop()
    client.close()
    return 0 if ok else 1


def summarize(demo: Demo, elapsed: float, handler: EventletHandler) -> bool:
    client, root = demo.client, demo.root
    counter = int(client.get(f"{root}/counter")[0])
    ledger = client.get(f"{root}/ledger")[0].decode().rstrip(",").split(",")
    stats: Dict[str, Any] = handler.stats()
    checks = {
        "counter on the server": (counter, expected_count()),
        "ledger entries (each worker once, under the lock)": (len(set(ledger)), GREEN_WORKERS),
        "members the ChildrenWatch saw": (demo.members_seen, GREEN_WORKERS),
        "counter the DataWatch saw last": (demo.counter_seen, expected_count()),
        "election terms (each candidate once)": (sorted(demo.terms), list(range(CANDIDATES))),
        "errors": (len(demo.errors), 0),
    }
    print("\nsummary")
    ok = True
    for name, (got, want) in checks.items():
        good = got == want
        ok &= good
        shown = got if not isinstance(got, list) else f"{len(got)} terms"
        print(f"  {'ok ' if good else 'BAD'} {name}: {shown}")
    for error in demo.errors[:5]:
        print(f"      {error}")
    watch, completion = stats["queues"]["watch"], stats["queues"]["completion"]
    print(f"  {GREEN_WORKERS + CANDIDATES} green threads + {NATIVE_THREADS} native threads in {elapsed:.2f} s")
    print(f"  watch callbacks run {watch['run']} (failed {watch['failed']}), "
          f"completion callbacks run {completion['run']}, calls into the hub from other threads "
          f"{stats['bridge_calls']}")
    print("demo " + ("passed" if ok else "FAILED"))
    return ok


def main() -> int:
    hosts = os.environ.get("ZK_HOSTS")
    if hosts:
        return run(hosts)
    if not zookeeper_available():
        print("ZooKeeper jars not found: run `make demo` (it installs Debian's zookeeper) "
              "or set ZK_HOSTS=host:port", file=sys.stderr)
        return 2
    print("starting a local ZooKeeper on 127.0.0.1 ...")
    with ZooKeeperServer() as server:
        return run(server.hosts)


if __name__ == "__main__":
    sys.exit(main())
