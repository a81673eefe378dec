"""The README's asyncio example is the file the suite runs, on a plain loop and on
eventlet's asyncio hub, against a real ZooKeeper."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eventlet_handler.testing.zookeeper import ZooKeeperServer
from test_readme import ROOT, _readme_example

EXAMPLE = "examples/asyncio_example.py"


def test_readme_asyncio_example_is_the_file_in_examples() -> None:
    assert _readme_example(EXAMPLE) == (ROOT / EXAMPLE).read_text()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("hub", ["plain", "asyncio"])
def test_readme_asyncio_example_runs(zookeeper_server: ZooKeeperServer, hub: str) -> None:
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    env.pop("EVENTLET_HUB", None)
    env.pop("EVENTLET_HANDLER_TEST_MONKEY_PATCH", None)
    if hub == "asyncio":
        env["EVENTLET_HUB"] = "asyncio"
    proc = subprocess.run(
        [sys.executable, str(ROOT / EXAMPLE), zookeeper_server.hosts],
        cwd=ROOT, capture_output=True, text=True, timeout=100, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("read b'v1' version ")
    assert lines[1:3] == ["gathered 100 replies", "holding the lock"]
    assert lines[-1] == "config is b'v2'"
