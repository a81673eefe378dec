"""The callers of a chaos run: green threads of the app's hub, native threads, watches.

Rules
1. One client, shared by every caller; each call goes through :meth:`Workload._record`
   so the history sees its start before it can block.
2. Callers stop at ``stopping`` and never block beyond a call (kazoo's own bounds,
   or ``CALL_BOUND`` on an async result); the runner's monitor reports a call
   open for longer than ``CALL_BOUND`` as stranded.
3. Every value written is unique (``worker:n``), so the checks can tell which
   call produced what the servers hold.
4. Coroutine callers where the handler offers them: ``ASYNCIO_WORKERS`` coroutines
   that ``await`` kazoo's async results (creates, conditional sets, pipelines), in
   isolated mode on a plain asyncio loop in a native thread, in shared mode on
   eventlet's asyncio hub (the ``shared-asyncio`` runs), as a green thread of the
   app's hub (``eventlet.asyncio.spawn_for_awaitable``). Shared mode on another hub
   offers no coroutines, so there the kind has no workers (the report says so).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.protocol.states import KazooState

from ._history import ACK, Call, History

CALL_BOUND = 40.0  # seconds: no call may take longer, whatever the faults
LOCK_TIMEOUT = 5.0
GREEN_WORKERS = 6
NATIVE_WORKERS = 3
ASYNCIO_WORKERS = 2
HOT_KEYS = 4
TREE_NODES = ("a", "a/x", "a/y", "b", "b/z", "c")
_OPS = {"seq_create": 3, "cas_set": 3, "lock_incr": 1, "pipeline": 1, "tree_write": 2}


def asyncio_callers(handler: Any) -> str | None:
    """Rule 4: where coroutines may await this handler's results: ``"thread"`` (a plain
    asyncio loop in a native thread: isolated mode), ``"hub"`` (eventlet's asyncio hub,
    the app's: shared mode on that hub), or None (shared mode on another hub)."""
    mode = getattr(handler, "mode", None)
    if mode == "isolated":
        return "thread"
    if mode == "shared":
        from eventlet import hubs

        if getattr(hubs.get_hub(), "loop", None) is not None:  # eventlet's asyncio hub
            return "hub"
    return None


@dataclasses.dataclass
class Paths:
    root: str

    @property
    def seq(self) -> str:
        return f"{self.root}/seq"

    @property
    def hot(self) -> list[str]:
        return [f"{self.root}/hot/k{index}" for index in range(HOT_KEYS)]

    @property
    def counter(self) -> str:
        return f"{self.root}/counter"

    @property
    def lock(self) -> str:
        return f"{self.root}/lock"

    @property
    def tree(self) -> str:
        return f"{self.root}/tree"


@dataclasses.dataclass
class Hold:
    """One holder of the Lock: from acquire returning True until release begins."""

    worker: str
    session: int | None
    acquired: float
    released: float | None = None


class Workload:
    """Callers, watches and the Lock ledger of one run.  Created and started on the app's hub."""

    def __init__(
        self,
        client: Any,
        history: History,
        paths: Paths,
        *,
        seed: int,
        spawn_green: Callable[..., Any],
        spawn_native: Callable[..., Any],
        green_sleep: Callable[[float], None],
        native_sleep: Callable[[float], None],
    ) -> None:
        self.client, self.history, self.paths, self.seed = client, history, paths, seed
        self._spawn_green, self._spawn_native = spawn_green, spawn_native
        self._sleeps = {"green": green_sleep, "native": native_sleep}
        self.stopping = False
        self.ledger: list[Hold] = []
        self.data_seen: list[tuple[bytes | None, int | None]] = []
        self.children_seen: list[list[str]] = []
        self.watch_times: dict[str, float] = {}  # when each watch last fired (monotonic)
        self.tree_cache: Any = None
        self.data_watch: Any = None
        self.children_watch: Any = None
        self.workers: list[Any] = []
        self.caller_kinds = {"green": GREEN_WORKERS, "native": NATIVE_WORKERS, "asyncio": 0}

    # -- setup ------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the tree, the listener, the watches and the TreeCache (app's hub)."""
        client, paths = self.client, self.paths
        for path in (paths.seq, paths.lock, paths.tree):
            client.ensure_path(path)
        for path in [*paths.hot, paths.counter]:
            client.create(path, b"0", makepath=True)
        client.add_listener(self._on_state)
        self.history.event("connected", session=client.client_id[0])
        self.data_watch = client.DataWatch(paths.hot[0], self._on_data)
        self.children_watch = client.ChildrenWatch(paths.seq, self._on_children)
        from kazoo.recipe.cache import TreeCache

        self.tree_cache = TreeCache(client, paths.tree)
        self.tree_cache.start()

    def start(self) -> None:
        for index in range(GREEN_WORKERS):
            self.workers.append(("green", self._spawn_green(self._work, "green", f"g{index}")))
        for index in range(NATIVE_WORKERS):
            self.workers.append(("native", self._spawn_native(self._work, "native", f"n{index}")))
        where = asyncio_callers(self.client.handler)  # rule 4
        if where is not None:
            self.caller_kinds["asyncio"] = ASYNCIO_WORKERS
        if where == "thread":
            self.workers.append(("asyncio", self._spawn_native(asyncio.run, self._aio_callers())))
        elif where == "hub":
            import eventlet.asyncio

            self.workers.append(("asyncio", eventlet.asyncio.spawn_for_awaitable(self._aio_callers())))

    # -- coroutine callers (rule 4) ---------------------------------------------

    async def _aio_callers(self) -> None:
        await asyncio.gather(*(self._aio_work(f"a{index}") for index in range(ASYNCIO_WORKERS)))

    async def _aio_work(self, worker: str) -> None:
        rng = random.Random(f"{self.seed}:{worker}")
        ops = (self._aio_seq_create, self._aio_cas_set, self._aio_pipeline)
        n = 0
        while not self.stopping:
            n += 1
            ok = await rng.choice(ops)(rng, worker, f"{worker}:{n}".encode())
            await asyncio.sleep(0.01 if ok else 0.1)

    async def _aio_record(self, op: str, worker: str, result: Any, **detail: Any) -> tuple[Call, Any]:
        """``_record`` for a coroutine: await ``result()`` (an async result), bounded."""
        from eventlet_handler import aio

        call = self.history.begin(op, "asyncio", worker, **detail)
        try:
            value = await asyncio.wait_for(aio.future(result()), CALL_BOUND)
        except Exception as exc:  # as in _record: every outcome is data
            self.history.finish(call, type(exc).__name__)
            return call, None
        self.history.finish(call, ACK)
        return call, value

    async def _aio_seq_create(self, rng: random.Random, worker: str, token: bytes) -> bool:
        call, path = await self._aio_record(
            "seq_create", worker, lambda: self.client.create_async(self.paths.seq + "/n-", token, sequence=True),
            token=token,
        )
        call.detail["path"] = path
        return call.acked

    async def _aio_cas_set(self, rng: random.Random, worker: str, token: bytes) -> bool:
        key = rng.choice(self.paths.hot)
        read, got = await self._aio_record("get", worker, lambda: self.client.get_async(key), key=key)
        if not read.acked:
            return False
        version = got[1].version
        call, stat = await self._aio_record(
            "cas_set", worker, lambda: self.client.set_async(key, token, version=version),
            key=key, token=token, expected=version,
        )
        if stat is not None:
            call.detail["version"] = stat.version
        return call.acked or call.outcome == BadVersionError.__name__

    async def _aio_pipeline(self, rng: random.Random, worker: str, token: bytes) -> bool:
        paths = [rng.choice(self.paths.hot) for _ in range(6)]
        calls = await asyncio.gather(
            *(self._aio_record("get_async", worker, lambda p=path: self.client.get_async(p), key=path) for path in paths)
        )
        return all(call.acked for call, _ in calls)

    # -- watches and the state listener (kazoo's threads: must not block) -------------

    def _on_state(self, state: str) -> None:
        if state == KazooState.LOST:
            self.history.event("lost")
        elif state == KazooState.CONNECTED:
            client_id = self.client.client_id
            self.history.event("connected", session=client_id[0] if client_id else None)
        else:
            self.history.event("suspended")

    def _on_data(self, data: bytes | None, stat: Any) -> None:
        self.data_seen.append((data, stat.version if stat is not None else None))
        self.watch_times["DataWatch"] = time.monotonic()

    def _on_children(self, children: list[str]) -> None:
        self.children_seen.append(sorted(children))
        self.watch_times["ChildrenWatch"] = time.monotonic()

    # -- one caller -------------------------------------------------------------

    def _work(self, caller: str, worker: str) -> None:
        rng = random.Random(f"{self.seed}:{worker}")
        ops, weights = zip(*_OPS.items())
        sleep = self._sleeps[caller]
        n = 0
        while not self.stopping:
            n += 1
            op = rng.choices(ops, weights)[0]
            ok = getattr(self, "_" + op)(rng, caller, worker, f"{worker}:{n}".encode())
            sleep(0.01 if ok else 0.1)

    def _record(self, op: str, caller: str, worker: str, fn: Callable[[], Any], **detail: Any) -> tuple[Call, Any]:
        call = self.history.begin(op, caller, worker, **detail)
        try:
            result = fn()
        except Exception as exc:  # every outcome is data: the checks judge them
            self.history.finish(call, type(exc).__name__)
            return call, None
        self.history.finish(call, ACK)
        return call, result

    def _seq_create(self, rng: random.Random, caller: str, worker: str, token: bytes) -> bool:
        call, path = self._record(
            "seq_create", caller, worker,
            # Bounded: ZooKeeper may answer a Create with a null path, and kazoo's
            # create() then never completes (_checks.calls_bounded).
            lambda: self.client.create_async(self.paths.seq + "/n-", token, sequence=True).get(timeout=CALL_BOUND),
            token=token,
        )
        call.detail["path"] = path
        return call.acked

    def _cas_set(self, rng: random.Random, caller: str, worker: str, token: bytes) -> bool:
        key = rng.choice(self.paths.hot)
        read, got = self._record("get", caller, worker, lambda: self.client.get(key), key=key)
        if not read.acked:
            return False
        return self._conditional_set("cas_set", caller, worker, key, token, got[1].version)

    def _conditional_set(self, op: str, caller: str, worker: str, key: str, token: bytes, version: int) -> bool:
        call, stat = self._record(
            op, caller, worker, lambda: self.client.set(key, token, version=version),
            key=key, token=token, expected=version,
        )
        if stat is not None:
            call.detail["version"] = stat.version
        return call.acked or call.outcome == BadVersionError.__name__

    def _pipeline(self, rng: random.Random, caller: str, worker: str, token: bytes) -> bool:
        paths = [rng.choice(self.paths.hot) for _ in range(6)]
        pending = []
        for path in paths:
            call = self.history.begin("get_async", caller, worker, key=path)
            try:
                pending.append((call, self.client.get_async(path)))
            except Exception as exc:
                self.history.finish(call, type(exc).__name__)
        ok = True
        for call, result in pending:
            try:
                result.get(timeout=CALL_BOUND)
            except Exception as exc:
                self.history.finish(call, type(exc).__name__)
                ok = False
            else:
                self.history.finish(call, ACK)
        return ok

    def _tree_write(self, rng: random.Random, caller: str, worker: str, token: bytes) -> bool:
        path = f"{self.paths.tree}/{rng.choice(TREE_NODES)}"
        if rng.random() < 0.1 and "/" in path[len(self.paths.tree) + 1 :]:
            call, _ = self._record("tree_delete", caller, worker, lambda: self.client.delete(path), key=path)
            return call.acked or call.outcome == NoNodeError.__name__

        def write() -> Any:
            try:
                return self.client.set(path, token)
            except NoNodeError:
                try:
                    return self.client.create_async(path, token, makepath=True).get(timeout=CALL_BOUND)
                except NodeExistsError:
                    return self.client.set(path, token)

        call, _ = self._record("tree_write", caller, worker, write, key=path, token=token)
        return call.acked

    def _lock_incr(self, rng: random.Random, caller: str, worker: str, token: bytes) -> bool:
        lock = self.client.Lock(self.paths.lock, identifier=worker)
        call, got = self._record("lock_acquire", caller, worker, lambda: lock.acquire(timeout=LOCK_TIMEOUT))
        if not got:
            self._release(lock, caller, worker)  # a failed acquire may have left its node
            return call.acked
        client_id = self.client.client_id
        hold = Hold(worker, client_id[0] if client_id else None, time.monotonic())
        self.ledger.append(hold)
        try:
            read, got_counter = self._record("get", caller, worker, lambda: self.client.get(self.paths.counter))
            if read.acked:
                value = int(got_counter[0]) + 1
                self._conditional_set(
                    "counter_set", caller, worker, self.paths.counter, str(value).encode(), got_counter[1].version
                )
        finally:
            hold.released = time.monotonic()
            self._release(lock, caller, worker)
        return True

    def _release(self, lock: Any, caller: str, worker: str) -> None:
        """Release, retrying (bounded): a lock node left behind would block every other holder."""
        for _attempt in range(5):
            call, _ = self._record("lock_release", caller, worker, lock.release)
            if call.acked or not lock.is_acquired:
                return
            self._sleeps[caller](0.5)
