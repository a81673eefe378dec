"""Kills a server's JVM when the Python process that started it dies (no java outlives
the Python process: see :mod:`._process`).

Run by :mod:`._process` as a script, ``python -I -S _watchdog.py PID MARKER TEMP_DIR``,
with a pipe on stdin whose write end only the test process holds: it blocks until that
pipe reaches EOF, which the kernel delivers however the test process ends (SIGKILL,
SIGTERM, ``os._exit``: cases :mod:`atexit` never sees).  If PID still runs *our*
command line (MARKER, the server's unique config path, is in ``/proc/PID/cmdline``) it
kills the JVM, waits for it to vanish, and removes TEMP_DIR.

Rules: standard library only and no import of this package (it runs isolated, ``-I
-S``, and must start fast); it never signals a PID whose command line is not ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

_VANISH_SECONDS = 5.0


def is_ours(pid: int, marker: bytes) -> bool:
    """True if ``pid`` runs a command line containing ``marker`` (True if unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return marker in cmdline.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True


def wait_for_eof(fd: int) -> None:
    """Block until ``fd`` reaches EOF (or fails)."""
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


def reap(pid: int, marker: bytes, temp_dir: str) -> None:
    """SIGKILL ``pid`` if it is still ours, wait for it to vanish, remove ``temp_dir``."""
    if not is_ours(pid, marker):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    deadline = time.monotonic() + _VANISH_SECONDS
    while is_ours(pid, marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(temp_dir, ignore_errors=True)


def main(argv: list[str]) -> None:
    pid, marker, temp_dir = int(argv[1]), argv[2].encode(), argv[3]
    wait_for_eof(0)
    reap(pid, marker, temp_dir)


if __name__ == "__main__":
    main(sys.argv)
