"""Interpreter exit with started handlers (and clients nobody stopped) is quick and quiet:
tooz services often never stop their clients, and that is normal (issue 9.7)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

CLIENTS = 3

SCRIPT = r"""
import logging, os, sys, warnings
warnings.simplefilter("ignore")
logging.basicConfig(format="%(name)s %(levelname)s %(message)s")
if os.environ.get("PATCH") == "1":
    import eventlet; eventlet.monkey_patch()
else:
    # Not when patched: logging's locks are green there, and records from the hub
    # threads (kazoo's own debug lines included) and the main thread at once meet on them.
    logging.getLogger("eventlet_handler").setLevel(logging.DEBUG)
from kazoo.client import KazooClient
from kazoo.protocol.states import Callback
import eventlet
from eventlet_handler import EventletHandler
for index in range(int(sys.argv[3])):
    handler = EventletHandler(sys.argv[1])
    client = KazooClient(sys.argv[2], handler=handler)
    client.start(timeout=15)
    client.create("/exit-%s%s-%d" % (sys.argv[1], os.environ.get("PATCH", "0"), index), ephemeral=True)
    handler.dispatch_callback(Callback("watch", print, ("callback ran",)))
# The last client is stopped, but work it spawned runs on (as on kazoo's handlers):
# its home stays open, and exit must not wait for that work either.
forever = handler.spawn(eventlet.sleep, 3600)
client.stop()
print("spawned work outlived stop:", forever.is_alive(), flush=True)
eventlet.sleep(0.05)
print("exiting without stopping the clients", flush=True)
print("EXITING", file=sys.stderr, flush=True)
"""


@pytest.mark.parametrize("patched", ["0", "1"])
@pytest.mark.parametrize("mode", ["shared", "isolated"])
def test_exit_with_started_handler_and_client_is_quiet(mode: str, patched: str, zookeeper_server) -> None:
    env = dict(os.environ, PATCH=patched)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, zookeeper_server.hosts, str(CLIENTS)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("callback ran") == CLIENTS and "exiting" in proc.stdout
    assert "spawned work outlived stop: True" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    at_exit = proc.stderr.partition("EXITING")[2].splitlines()
    ours = [line for line in at_exit if line.startswith("eventlet_handler")]
    assert len(ours) <= 1 and all(line.startswith("eventlet_handler DEBUG") for line in ours), (
        f"exit with live clients is normal: one debug line at most, yet it logged {ours}"
    )
    assert elapsed < 15 + CLIENTS * 2, f"exit took {elapsed:.1f} s"
