"""The pytest plugin (eventlet_handler.testing.pytest_plugin), run through pytester.

Each inner session runs in a subprocess: the leak checks must see a process of their
own, and a leaked green thread must not outlive the inner test in this process.
"""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from eventlet_handler.testing.zookeeper import zookeeper_available

pytest_plugins = ("pytester",)
pytestmark = pytest.mark.timeout(120)

PLUGIN = "eventlet_handler.testing.pytest_plugin"
ROOT = Path(__file__).resolve().parents[1]
needs_zookeeper = pytest.mark.skipif(
    not zookeeper_available(), reason="ZooKeeper is not available here (needs java and the ZooKeeper 3.8 jars)"
)


def _plugin_is_installed() -> bool:
    return any(ep.value == PLUGIN for ep in importlib.metadata.entry_points(group="pytest11"))


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``source`` as a test file in a pytest subprocess with the plugin loaded."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    def run(source: str, *args: str) -> pytest.RunResult:
        pytester.makepyfile(test_inner=textwrap.dedent(source))
        plugin_args = () if _plugin_is_installed() else ("-p", PLUGIN)
        return pytester.runpytest_subprocess(
            *plugin_args, "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", *args, timeout=100
        )

    return run


def test_plugin_import_starts_nothing_and_registers_the_marker(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        def test_nothing(pytestconfig):
            markers = pytestconfig.getini("markers")
            assert any(line.startswith("eventlet_handler_options(") for line in markers)
        """,
        "--strict-markers",
    )
    result.assert_outcomes(passed=1)


@needs_zookeeper
def test_kazoo_client_fixture_is_connected_to_zookeeper_server(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import pytest
        from kazoo.protocol.states import KazooState

        @pytest.mark.eventlet_handler_options(mode="shared")
        def test_client(kazoo_client, zookeeper_server, eventlet_handler):
            assert kazoo_client.handler is eventlet_handler
            assert kazoo_client.state == KazooState.CONNECTED
            kazoo_client.create("/plugin-test", b"v", makepath=True)
            assert kazoo_client.get("/plugin-test")[0] == b"v"
            kazoo_client.delete("/plugin-test")
        """
    )
    result.assert_outcomes(passed=1)


def test_eventlet_handler_fixture_is_started_and_takes_marker_options(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import pytest

        def test_default(eventlet_handler):
            assert eventlet_handler.running

        @pytest.mark.eventlet_handler_options(mode="shared", slow_callback_threshold=None)
        def test_marked(eventlet_handler):
            assert eventlet_handler.options.mode == "shared"
            assert eventlet_handler.options.slow_callback_threshold is None

        @pytest.mark.eventlet_handler_options(workers=3)
        def test_unknown_option(eventlet_handler):
            pass
        """
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.re_match_lines([r".*unknown options \['workers'\].*"])


def test_eventlet_handler_fixture_fails_a_test_that_leaks_a_green_thread(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import eventlet

        def test_leaky(eventlet_handler):
            eventlet.spawn(eventlet.sleep, 60)
        """
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*left 1 green threads or fds behind*", "*green thread still alive: GreenThread*"])


def test_eventlet_handler_fixture_fails_a_test_that_leaks_an_fd(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import os

        KEEP = []

        def test_leaky(eventlet_handler):
            KEEP.append(os.pipe())
        """
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*file descriptor * still open: pipe:*"])


def test_leak_check_waits_for_green_threads_that_finish_soon(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import eventlet

        def test_settles(eventlet_handler):
            eventlet.spawn(eventlet.sleep, 0.3)
        """
    )
    result.assert_outcomes(passed=1)


def test_leak_check_can_be_turned_off(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import eventlet
        import pytest

        @pytest.mark.eventlet_handler_options(check_leaks=False)
        def test_leaky(eventlet_handler):
            eventlet.spawn(eventlet.sleep, 60)
        """
    )
    result.assert_outcomes(passed=1)


@needs_zookeeper
def test_deterministic_handler_fixture_steps_a_watch(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        from kazoo.client import KazooClient

        def test_watch(deterministic_handler, zookeeper_server):
            client = KazooClient(hosts=zookeeper_server.hosts, handler=deterministic_handler)
            client.start(timeout=15)
            try:
                events = []
                client.ensure_path("/plugin-watch")
                client.get("/plugin-watch", watch=events.append)
                client.set("/plugin-watch", b"x")
                assert events == []
                assert deterministic_handler.run_pending() == 1
                assert [e.type for e in events] == ["CHANGED"]
            finally:
                client.stop()
                client.close()
        """
    )
    result.assert_outcomes(passed=1)


def test_plugin_can_be_turned_off_with_p_no_eventlet_handler(run) -> None:  # type: ignore[no-untyped-def]
    """README: "turn it off with -p no:eventlet_handler"."""
    if not _plugin_is_installed():
        pytest.skip("the plugin is not installed (its entry point is what -p no: turns off)")
    result = run(
        """
        def test_needs_the_fixture(eventlet_handler):
            pass

        def test_markers(pytestconfig):
            assert not any(line.startswith("eventlet_handler_options(") for line in pytestconfig.getini("markers"))
        """,
        "-p", "no:eventlet_handler",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'eventlet_handler' not found*"])


@needs_zookeeper
def test_zookeeper_ensemble_fixture_is_a_serving_quorum_of_three(run) -> None:  # type: ignore[no-untyped-def]
    """README: "zookeeper_ensemble gives three"."""
    result = run(
        """
        from kazoo.client import KazooClient
        from eventlet_handler import EventletHandler

        def test_ensemble(zookeeper_ensemble):
            members = zookeeper_ensemble.members
            assert len(members) == 3 and len(zookeeper_ensemble.hosts.split(",")) == 3
            assert sorted(m.mode() for m in members) == ["follower", "follower", "leader"]
            # One client per member, each on its own handler (kazoo's stop() stops its handler).
            clients = [KazooClient(m.hosts, handler=EventletHandler()) for m in members]
            for client in clients:
                client.start(timeout=15)
            try:
                clients[0].create("/ensemble-test", b"quorum")
                for client in clients:
                    client.sync("/ensemble-test")
                    assert client.get("/ensemble-test")[0] == b"quorum"
                clients[0].delete("/ensemble-test")
            finally:
                for client in clients:
                    client.stop()
                    client.close()
        """
    )
    result.assert_outcomes(passed=1)
