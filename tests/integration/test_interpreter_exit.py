"""Interpreter exit with a started handler (and a client nobody stopped) is quick and quiet."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

SCRIPT = r"""
import os, sys, warnings
warnings.simplefilter("ignore")
if os.environ.get("PATCH") == "1":
    import eventlet; eventlet.monkey_patch()
from kazoo.client import KazooClient
from kazoo.protocol.states import Callback
import eventlet
from eventlet_handler import EventletHandler
handler = EventletHandler(sys.argv[1])
client = KazooClient(sys.argv[2], handler=handler)
client.start(timeout=15)
client.create("/exit-" + sys.argv[1] + os.environ.get("PATCH", "0"), ephemeral=True)
handler.dispatch_callback(Callback("watch", print, ("callback ran",)))
eventlet.sleep(0.05)
print("exiting without stopping the client", flush=True)
"""


@pytest.mark.parametrize("patched", ["0", "1"])
@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_exit_with_started_handler_and_client_is_quiet(mode: str, patched: str, zookeeper_server) -> None:
    env = dict(os.environ, PATCH=patched)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, zookeeper_server.hosts],
        capture_output=True, text=True, timeout=60, env=env,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "callback ran" in proc.stdout and "exiting" in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert elapsed < 15, f"exit took {elapsed:.1f} s"
