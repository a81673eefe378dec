"""tooz through ``zookeeper+eventlet://`` against a real ZooKeeper."""

from __future__ import annotations

import importlib.metadata
import sys
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import eventlet
import pytest

from support import import_or_skip

tooz_coordination = import_or_skip("tooz.coordination")

from kazoo.handlers.threading import SequentialThreadingHandler  # noqa: E402

from eventlet_handler.pinned import EventletIsolatedHandler  # noqa: E402
from eventlet_handler.handler import EventletHandler  # noqa: E402
from eventlet_handler.testing.zookeeper import ZooKeeperServer, zookeeper_available  # noqa: E402

pytestmark = pytest.mark.timeout(90)

SCHEME = "zookeeper+eventlet"
WAIT = 10.0


def _backend_installed() -> bool:
    return any(ep.name == SCHEME for ep in importlib.metadata.entry_points(group="tooz.backends"))


@pytest.fixture(scope="module", autouse=True)
def tooz_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Make the entry point visible when the package is not installed (a source checkout)."""
    if _backend_installed():
        yield
        return
    root = tmp_path_factory.mktemp("entry_points")
    dist_info = root / "eventlet_handler_tooz_backend-0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eventlet-handler-tooz-backend\nVersion: 0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[tooz.backends]\n{SCHEME} = eventlet_handler.tooz:EventletKazooDriver\n"
    )
    sys.path.append(str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))


@pytest.fixture(scope="module")
def zookeeper() -> Iterator[ZooKeeperServer]:
    if not zookeeper_available():
        pytest.skip("ZooKeeper is not available here (needs java and the ZooKeeper 3.8 jars)")
    server = ZooKeeperServer()
    server.start()
    yield server
    server.stop()


def make_coordinator(hosts: str, member: bytes, query: str = "") -> Any:
    url = f"{SCHEME}://{hosts}?timeout=10{'&' + query if query else ''}"
    return tooz_coordination.get_coordinator(url, member)


STOP_TIMEOUT = 20.0


@pytest.fixture(params=["shared", "isolated"])
def coordinators(request: pytest.FixtureRequest, zookeeper: ZooKeeperServer) -> Iterator[list[Any]]:
    """Two started coordinators, as two service processes would hold, in each mode."""
    started = []
    try:
        for member in (b"member-1", b"member-2"):
            coordinator = make_coordinator(zookeeper.hosts, member, f"mode={request.param}")
            coordinator.start()
            started.append(coordinator)
        yield started
    finally:
        for coordinator in started:
            _stop_bounded(coordinator)


def _kazoo_client(coordinator: Any) -> Any:
    """The KazooClient under a tooz coordinator: tooz's KazooDriver keeps it in its
    private ``_coord`` and offers no public accessor (kazoo's side of the backend)."""
    return coordinator._coord


def _stop_bounded(coordinator: Any) -> None:
    try:
        with eventlet.Timeout(STOP_TIMEOUT):
            coordinator.stop()
    except eventlet.Timeout:
        pytest.fail(f"coordinator.stop() did not return within {STOP_TIMEOUT} s ({_kazoo_client(coordinator).handler!r})")


def unique(prefix: str) -> bytes:
    return f"{prefix}-{uuid.uuid4().hex}".encode()


# -- selection -------------------------------------------------------------------------


def test_backend_runs_tooz_driver_on_our_handler_without_deprecation_warnings() -> None:
    from tooz.drivers.zookeeper import KazooDriver

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coordinator = make_coordinator("127.0.0.1:1", b"m")
    assert isinstance(coordinator, KazooDriver)
    assert type(_kazoo_client(coordinator).handler) is EventletHandler
    assert not _kazoo_client(coordinator).handler.running  # constructing starts nothing
    deprecations = [w for w in caught if "deprecated" in str(w.message).lower() and "tooz" in w.filename]
    assert deprecations == []


@pytest.mark.parametrize(
    ("query", "handler_type", "mode", "threshold"),
    [
        ("mode=shared", EventletHandler, "shared", 1.0),
        ("mode=isolated&slow_callback_threshold=2.5", EventletHandler, "isolated", 2.5),
        ("handler=eventlet-isolated&slow_callback_threshold=off", EventletIsolatedHandler, "isolated", None),
    ],
)
def test_backend_reads_handler_options_from_the_url(
    query: str, handler_type: type, mode: str, threshold: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTLET_HANDLER_SLOW_CALLBACK_THRESHOLD", raising=False)
    handler = _kazoo_client(make_coordinator("127.0.0.1:1", b"m", query)).handler
    assert type(handler) is handler_type
    assert handler.options.mode == mode
    assert handler.options.slow_callback_threshold == threshold


def test_backend_mode_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTLET_HANDLER_MODE", "shared")
    assert make_coordinator("127.0.0.1:1", b"m")._coord.handler.options.mode == "shared"


def test_backend_can_pick_another_registered_handler() -> None:
    handler = make_coordinator("127.0.0.1:1", b"m", "handler=threading")._coord.handler
    assert type(handler) is SequentialThreadingHandler


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("mode=fast", r"mode='fast' is invalid; valid modes are auto, shared, isolated"),
        ("handler=nope", r"unknown kazoo handler 'nope'; valid names are eventlet"),
        ("handler=eventlet-shared&mode=isolated", r"conflict"),
        ("handler=threading&mode=shared", r"apply to the eventlet handlers only"),
        ("handler=threading&slow_callback_threshold=off", r"apply to the eventlet handlers only"),
        ("handler=os.path:join", r"module paths are not accepted"),
        ("slow_callback_threshold=-1", r"slow_callback_threshold='-1'"),
    ],
)
def test_backend_refuses_bad_url_options(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_coordinator("127.0.0.1:1", b"m", query)


# -- coordination against ZooKeeper ---------------------------------------------------


def test_lock_contended_by_green_threads(coordinators: list[Any]) -> None:
    name = unique("lock")
    inside: list[int] = []
    most_inside = 0
    entered: list[str] = []

    def worker(coordinator: Any, label: str) -> None:
        nonlocal most_inside
        lock = coordinator.get_lock(name)
        assert lock.acquire(blocking=True, timeout=WAIT), f"{label} never got the lock"
        try:
            inside.append(1)
            most_inside = max(most_inside, len(inside))
            entered.append(label)
            eventlet.sleep(0.005)  # hold it while the others queue up behind
        finally:
            inside.pop()
            assert lock.release()

    pool = eventlet.GreenPool()
    labels = []
    for index, coordinator in enumerate(coordinators):
        for thread in range(3):
            labels.append(f"coordinator {index} green thread {thread}")
            pool.spawn(worker, coordinator, labels[-1])
    with eventlet.Timeout(60):
        pool.waitall()
    assert sorted(entered) == sorted(labels)
    assert most_inside == 1


def test_group_membership_watch_callbacks(coordinators: list[Any]) -> None:
    watcher, member = coordinators
    group = unique("group")
    watcher.create_group(group).get(timeout=WAIT)
    watcher.join_group(group).get(timeout=WAIT)
    events: list[tuple[str, bytes]] = []
    watcher.watch_join_group(group, lambda event: events.append(("joined", event.member_id)))
    watcher.watch_leave_group(group, lambda event: events.append(("left", event.member_id)))
    watcher.run_watchers(timeout=WAIT)  # primes the member cache

    member.join_group(group, capabilities=b"caps").get(timeout=WAIT)
    watcher.run_watchers(timeout=WAIT)
    assert events == [("joined", b"member-2")]
    assert watcher.get_members(group).get(timeout=WAIT) == {b"member-1", b"member-2"}
    assert watcher.get_member_capabilities(group, b"member-2").get(timeout=WAIT) == b"caps"

    member.leave_group(group).get(timeout=WAIT)
    watcher.run_watchers(timeout=WAIT)
    assert events == [("joined", b"member-2"), ("left", b"member-2")]


def test_leader_election(coordinators: list[Any]) -> None:
    first, second = coordinators
    group = unique("election")
    first.create_group(group).get(timeout=WAIT)
    elected: list[bytes] = []
    for coordinator in coordinators:
        coordinator.join_group(group).get(timeout=WAIT)
        coordinator.watch_elected_as_leader(group, lambda event: elected.append(event.member_id))

    first.run_watchers(timeout=WAIT)
    second.run_watchers(timeout=WAIT)
    assert elected == [b"member-1"]
    assert second.get_leader(group).get(timeout=WAIT) == b"member-1"

    assert first.stand_down_group_leader(group)
    second.run_watchers(timeout=WAIT)
    assert elected == [b"member-1", b"member-2"]
    assert first.get_leader(group).get(timeout=WAIT) == b"member-2"


def test_timeout_exception_is_caught_the_way_tooz_catches_it(
    zookeeper: ZooKeeperServer, coordinators: list[Any]
) -> None:
    coordinator = coordinators[0]
    group = unique("slow")
    coordinator.create_group(group).get(timeout=WAIT)
    assert issubclass(_kazoo_client(coordinator).handler.timeout_exception, Exception)
    zookeeper.pause()
    try:
        pending = coordinator.get_members(group)
        with pytest.raises(tooz_coordination.OperationTimedOut) as info:
            pending.get(timeout=0.2)
    finally:
        zookeeper.resume()
    assert isinstance(info.value.__cause__, _kazoo_client(coordinator).handler.timeout_exception)
    assert pending.get(timeout=WAIT) == set()  # the same request, answered once resumed


@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_start_timeout_becomes_tooz_connection_error(mode: str) -> None:
    import socket

    with socket.socket() as placeholder:  # a port where nothing answers
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    coordinator = tooz_coordination.get_coordinator(f"{SCHEME}://127.0.0.1:{port}?timeout=1&mode={mode}", b"m")
    with pytest.raises(tooz_coordination.ToozConnectionError) as info, eventlet.Timeout(STOP_TIMEOUT):
        coordinator.start()  # kazoo stops the client itself before raising
    assert isinstance(info.value.__cause__, _kazoo_client(coordinator).handler.timeout_exception)
    _kazoo_client(coordinator).stop()
    _kazoo_client(coordinator).close()


# -- auto mode, per start, from every kind of thread at once (issue 9.5) ----------------

AUTO_WORKERS = {"executor": 2, "green": 2, "main": 1}


def test_auto_mode_tooz_workload_from_executor_workers_green_threads_and_main(
    zookeeper: ZooKeeperServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Coordinators started (``mode=auto``) in ``concurrent.futures`` workers, green
    threads and the main thread at once, all taking one tooz lock, and the executor
    workers also the main thread's coordinator's lock. Under ``monkey_patch()`` on the
    asyncio hub the executor's threads are native with no hub: auto must pick isolated
    mode there (shared raised ``RuntimeError``), and shared elsewhere when patched."""
    import concurrent.futures

    from eventlet import patcher

    from eventlet_handler import _hubs
    from eventlet_handler._primitives import Queue
    from eventlet_handler.config import MODE_ENV

    monkeypatch.delenv(MODE_ENV, raising=False)
    patched = patcher.is_monkey_patched("thread")
    name = unique("auto-lock")
    guard = patcher.original("threading").Lock()
    inside: list[str] = []
    entered: list[str] = []
    reports: Queue = Queue()
    main_coordinator = make_coordinator(zookeeper.hosts, b"main")
    main_coordinator.start()

    def critical(coordinator: Any, label: str) -> None:
        lock = coordinator.get_lock(name)
        assert lock.acquire(blocking=True, timeout=WAIT * 3), f"{label} never got the lock"
        try:
            with guard:
                inside.append(label)
                assert len(inside) == 1, f"two holders at once: {inside}"
                entered.append(label)
            _kazoo_client(coordinator).exists("/")  # a round trip while holding it
        finally:
            with guard:
                inside.remove(label)
            assert lock.release()

    def worker(label: str) -> None:
        try:
            no_hub = _hubs.thread_has_no_hub()
            coordinator = make_coordinator(zookeeper.hosts, label.encode())
            coordinator.start()
            try:
                handler = _kazoo_client(coordinator).handler
                expected = "shared" if patched and not no_hub else "isolated"
                assert handler.mode == expected, f"{label}: {handler!r} (no hub: {no_hub})"
                critical(coordinator, label)
                if label.startswith("executor"):
                    critical(main_coordinator, f"{label} via main")
            finally:
                coordinator.stop()
            reports.put((label, "ok"))
        except BaseException:
            import traceback

            reports.put((label, traceback.format_exc()))

    labels = [f"{kind}-{i}" for kind, count in AUTO_WORKERS.items() for i in range(count)]
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=AUTO_WORKERS["executor"])
    try:
        for label in labels:
            if label.startswith("executor"):
                executor.submit(worker, label)
            elif label.startswith("green"):
                eventlet.spawn_n(worker, label)
        worker("main-0")
        results = dict(reports.get(timeout=60) for _ in labels)
    finally:
        executor.shutdown(wait=False)
        _stop_bounded(main_coordinator)
    failures = {label: text for label, text in results.items() if text != "ok"}
    assert not failures, "\n".join(f"--- {label}\n{text}" for label, text in failures.items())
    assert sorted(entered) == sorted(labels + [f"{label} via main" for label in labels if label.startswith("executor")])
