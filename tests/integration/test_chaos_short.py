"""One short chaos seed per mode (``make test``; ``make chaos`` is the long run).

Each mode runs as its own bounded subprocess (``python -m chaos._run``), so this test
runs only in the unpatched default-hub pytest process.  The seeds were picked for
their schedules: shared mode gets a member killed together with an expired session;
shared mode on eventlet's asyncio hub (with coroutine callers) a short pause, then a
hog of the hub together with an expired session; isolated mode a dropped socket, a
kill, then a kill together with a long pause.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from eventlet_handler.testing.zookeeper import zookeeper_available

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECONDS = 18
BOUND = 150  # seconds per mode: ensemble start, the run, settling, teardown, and a wide margin
SEEDS = {"shared": 15, "shared-asyncio": 51, "isolated": 9}

pytestmark = [
    pytest.mark.timeout(BOUND + 30),
    pytest.mark.skipif(
        os.environ.get("EVENTLET_HANDLER_TEST_MONKEY_PATCH") == "1" or bool(os.environ.get("EVENTLET_HUB")),
        reason="starts its own process per mode: runs only in the unpatched default-hub pytest process",
    ),
    pytest.mark.skipif(not zookeeper_available(), reason="needs java and the ZooKeeper 3.8 jars"),
]


@pytest.mark.parametrize("mode", sorted(SEEDS))
def test_chaos_short_seed(mode: str, tmp_path: os.PathLike[str]) -> None:
    seed = SEEDS[mode]
    argv = [
        sys.executable, "-W", "ignore", "-m", "chaos._run", "--mode", mode, "--seed", str(seed),
        "--seconds", str(SECONDS), "--report-dir", str(tmp_path),
    ]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("EVENTLET_HANDLER_MODE", None)
    result = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=BOUND)
    print(result.stdout)
    assert result.returncode == 0, f"chaos {mode} seed {seed} failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    with open(os.path.join(tmp_path, f"{mode}-seed{seed}-m3.json")) as report_file:
        report = json.load(report_file)
    assert report["passed"] and sum(sum(v.values()) for v in report["faults"].values()) >= 2, report["faults"]
    assert all(check["passed"] is not False for check in report["checks"])
