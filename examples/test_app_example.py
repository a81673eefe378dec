"""Tests of an eventlet app's own kazoo code, with eventlet_handler's pytest plugin.

Installing eventlet-handler registers the plugin: the fixtures ``zookeeper_server``,
``kazoo_client`` and ``deterministic_handler`` need no import and no conftest.
"""

import uuid

from kazoo.client import KazooClient


class ConfigWatcher:
    """The code under test: follows a config node and keeps every version it saw."""

    def __init__(self, client: KazooClient, path: str) -> None:
        self.values: list = []
        self.changed = client.handler.event_object()
        client.DataWatch(path)(self._on_change)

    def _on_change(self, data, stat) -> None:
        if data is not None:
            self.values.append(data.decode())
            self.changed.set()


def test_watcher_follows_updates_on_the_real_handler(kazoo_client):
    path = f"/config-{uuid.uuid4().hex}"
    kazoo_client.create(path, b"v1")
    watcher = ConfigWatcher(kazoo_client, path)
    watcher.changed.clear()
    kazoo_client.set(path, b"v2")
    assert watcher.changed.wait(10)  # the watch ran on the handler's watch worker
    assert watcher.values == ["v1", "v2"]
    kazoo_client.delete(path)


def test_watcher_runs_only_when_the_test_steps_it(deterministic_handler, zookeeper_server):
    client = KazooClient(zookeeper_server.hosts, handler=deterministic_handler)
    client.start(timeout=15)
    try:
        path = f"/config-{uuid.uuid4().hex}"
        client.create(path, b"v1")
        watcher = ConfigWatcher(client, path)  # DataWatch reads v1 at once
        client.set(path, b"v2")
        deterministic_handler.wait_for_pending(1, timeout=10)
        assert watcher.values == ["v1"]  # the watch event waits for the test
        deterministic_handler.run_pending()
        assert watcher.values == ["v1", "v2"]
        assert "DataWatch._watcher" in str(deterministic_handler.ran[-1])
        client.delete(path)
    finally:
        client.stop()
        client.close()
