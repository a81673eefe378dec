"""``python -m chaos`` (``make chaos``): chaos runs, each mode in its own process.

Environment (all optional): ``CHAOS_SECONDS`` (per run, default 150: one run of each
mode makes about 8 minutes), ``CHAOS_SEED`` (first seed; default from the clock, printed),
``CHAOS_RUNS`` (consecutive seeds per mode, default 1), ``CHAOS_MEMBERS`` (3 or 5),
``CHAOS_MODES`` (default ``shared shared-asyncio isolated``: ``shared-asyncio`` is
shared mode on eventlet's asyncio hub, with coroutine callers), ``CHAOS_REPORT_DIR`` (default
``chaos/results``).  The same seed replays the same fault schedule.  Exit status 0
only if every run passed; each run is killed if it outlives its bound.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

_SLACK = 300.0  # seconds a run may take beyond CHAOS_SECONDS (ensemble start, settling, teardown)


def run_one(mode: str, seed: int, seconds: float, members: int, report_dir: str) -> int:
    argv = [
        sys.executable, "-W", "ignore", "-m", "chaos._run", "--mode", mode,
        "--seed", str(seed), "--seconds", str(seconds), "--members", str(members), "--report-dir", report_dir,
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    try:
        return subprocess.run(argv, env=env, timeout=seconds + _SLACK).returncode
    except subprocess.TimeoutExpired:
        print(f"chaos {mode} seed={seed}: FAILED, still running after {seconds + _SLACK:.0f}s (killed)", flush=True)
        return 124


def main() -> int:
    seconds = float(os.environ.get("CHAOS_SECONDS", "150"))
    seed = int(os.environ.get("CHAOS_SEED") or int(time.time()) % 100000)
    runs = int(os.environ.get("CHAOS_RUNS", "1"))
    members = int(os.environ.get("CHAOS_MEMBERS", "3"))
    modes = os.environ.get("CHAOS_MODES", "shared shared-asyncio isolated").split()
    report_dir = os.environ.get("CHAOS_REPORT_DIR", os.path.join("chaos", "results"))
    print(f"chaos: seeds {seed}..{seed + runs - 1}, modes {modes}, {seconds:.0f}s each, {members} members", flush=True)
    failed = []
    for current in range(seed, seed + runs):
        for mode in modes:
            if run_one(mode, current, seconds, members, report_dir) != 0:
                failed.append(f"{mode} seed={current}")
    print(f"chaos: {runs * len(modes) - len(failed)}/{runs * len(modes)} runs passed"
          + (f"; failed: {', '.join(failed)} (rerun with CHAOS_SEED=... CHAOS_RUNS=1)" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
