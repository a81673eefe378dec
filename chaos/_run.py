"""One chaos run in one mode: ``python -m chaos._run --mode shared|isolated --seed N ...``.

Rules
1. ``shared`` monkey-patches before anything else is imported (so this module
   imports only the standard library at top level); ``shared-asyncio`` does the same
   on eventlet's asyncio hub (``EVENTLET_HUB=asyncio``, set before eventlet is
   imported), where coroutine callers join; ``isolated`` never patches.
2. The app's hub is the main thread's: the schedule, the green callers and the
   monitor are green threads there; native callers are real threads
   (``eventlet.patcher.original``); blocking fault work never runs on the hub
   in isolated mode (``tpool``).
3. The run always tears down (client, verifier, ensemble) and then checks for
   leaked green threads, native threads and fds against a baseline taken before
   the ensemble started.  Exit status 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos._run")
    parser.add_argument("--mode", choices=("shared", "shared-asyncio", "isolated"), required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--report-dir", default=os.environ.get("CHAOS_REPORT_DIR", "chaos/results"))
    return parser.parse_args(argv)


HANG_SLACK = float(os.environ.get("CHAOS_HANG_SLACK", "200"))  # s beyond --seconds: hung (the launcher allows 300)


def _dump_if_hung(after: float) -> None:
    """From a native thread: if the run is still going after ``after`` s, print the stack of
    every native thread and every green thread to stderr and exit 3 (a hang is a finding)."""
    import faulthandler
    import gc
    import traceback

    from eventlet import patcher

    def watch() -> None:
        patcher.original("time").sleep(after)
        print(f"chaos: run still going after {after:.0f}s: stacks follow", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(all_threads=True)
        import greenlet

        for glet in gc.get_objects():
            if isinstance(glet, greenlet.greenlet) and glet.gr_frame is not None:
                print(f"--- {glet!r}", file=sys.stderr)
                traceback.print_stack(glet.gr_frame, file=sys.stderr)
        sys.stderr.flush()
        os._exit(3)

    patcher.original("threading").Thread(target=watch, daemon=True, name="chaos-hang-dump").start()


def main(argv: list[str]) -> int:
    args = _parse(argv)
    if args.mode == "shared-asyncio":
        os.environ["EVENTLET_HUB"] = "asyncio"
    else:
        os.environ.pop("EVENTLET_HUB", None)  # each mode's hub is its own, whatever the caller's environment
    if args.mode.startswith("shared"):
        import eventlet

        eventlet.monkey_patch()
    _dump_if_hung(args.seconds + HANG_SLACK)
    from . import _runner

    os.makedirs(args.report_dir, exist_ok=True)
    stem = os.path.join(args.report_dir, f"{args.mode}-seed{args.seed}-m{args.members}")
    report = _runner.run(args.mode, args.seed, args.seconds, args.members, stem + ".log")
    path = stem + ".json"
    with open(path, "w") as out:
        json.dump(report, out, indent=1, default=str)
    from ._report import text

    print(text(report), flush=True)
    print(f"  report: {path}", flush=True)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
