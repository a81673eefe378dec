"""Supervision of the JVMs the harness starts: registry, signals by PID, watchdog, ports.

Rules
1. No java outlives the Python process: each launched JVM is registered in a
   module-level set and killed by an :mod:`atexit` hook, and a watchdog
   process (:mod:`._watchdog`) kills it if the Python process dies where atexit
   cannot run (SIGKILL, SIGTERM, ``os._exit``).
2. Signals go by PID, and only to a child this module started and has not yet
   reaped (so the PID cannot have been reused by a stranger).
3. Ports are chosen by binding to ``127.0.0.1:0``; a port handed out once is
   never handed out again by this process.

Any thread: the registry is guarded by one lock; a :class:`JavaProcess` is
driven by one thread at a time (its owner server).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from . import _watchdog

LOOPBACK = "127.0.0.1"
STOP_GRACE = 5.0  # seconds to wait after SIGTERM, and again after SIGKILL
_SIGTERM = signal.SIGTERM  # a default argument inside JavaProcess, whose method `signal` hides the module

_registry_lock = threading.Lock()
_live_processes: set[subprocess.Popen[bytes]] = set()
_live_dirs: set[Path] = set()
_handed_out_ports: set[int] = set()


def make_temp_dir(prefix: str) -> Path:
    """A fresh temp dir, removed at interpreter exit unless :func:`remove_temp_dir` is called first."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    with _registry_lock:
        _live_dirs.add(path)
    return path


def remove_temp_dir(path: Path | None) -> None:
    if path is None:
        return
    shutil.rmtree(path, ignore_errors=True)
    with _registry_lock:
        _live_dirs.discard(path)


@atexit.register
def _kill_leftovers() -> None:
    """Kill every JVM still running and remove every temp dir (at interpreter exit)."""
    with _registry_lock:
        processes = list(_live_processes)
        dirs = list(_live_dirs)
        _live_processes.clear()
        _live_dirs.clear()
    for process in processes:
        _send_signal(process, signal.SIGKILL)
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


def _send_signal(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal ``process`` by PID unless it has already been reaped (Rule 2)."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:
        pass


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago (Rule 3).

    All sockets are held open until every port is picked, so one call never
    returns a port twice.
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
            with _registry_lock:
                if port in _handed_out_ports:
                    continue
                _handed_out_ports.add(port)
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


class JavaProcess:
    """A registered ``java`` child in its own session, signalled by PID only (Rules 1, 2).

    A watchdog interpreter holds the read end of a pipe whose write end only
    this process has; if this process dies without stopping the JVM, the
    watchdog kills it.
    """

    def __init__(self, argv: list[str], log_path: Path, cwd: Path, temp_dir: Path) -> None:
        with open(log_path, "ab") as log:
            self.popen: subprocess.Popen[bytes] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        with _registry_lock:
            _live_processes.add(self.popen)
        self._watchdog = self._start_watchdog(marker=argv[-1], temp_dir=temp_dir)

    def _start_watchdog(self, marker: str, temp_dir: Path) -> subprocess.Popen[bytes] | None:
        # Run by path, isolated (-I -S): importing it as part of this package
        # would import eventlet_handler's __init__ and start slowly.
        script = _watchdog.__file__
        argv = [sys.executable, "-I", "-S", script, str(self.popen.pid), marker, str(temp_dir)]
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError:  # no interpreter to spare: atexit remains the safety net
            return None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def signal(self, signum: int) -> None:
        _send_signal(self.popen, signum)

    def wait_stopped(self, timeout: float = 5.0) -> bool:
        """After SIGSTOP: wait (bounded) until the kernel shows the JVM stopped, since
        ``kill()`` returns before the signal has taken effect. True once it has."""
        deadline = time.monotonic() + timeout
        stat = Path(f"/proc/{self.popen.pid}/stat")
        while time.monotonic() < deadline:
            try:
                state = stat.read_text().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                return False  # gone, or no procfs: nothing more to wait for
            if state in ("T", "t"):
                return True
            time.sleep(0.005)
        return False

    def begin_stop(self, signum: int = _SIGTERM) -> None:
        """Send ``signum`` (SIGTERM: exit cleanly; SIGKILL: crash), waking the JVM first if paused."""
        self.signal(signum)
        self.signal(signal.SIGCONT)

    def finish_stop(self, grace: float = STOP_GRACE) -> None:
        """Wait up to ``grace`` seconds for exit, then SIGKILL and reap; release the watchdog."""
        try:
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(grace)
        finally:
            if self.popen.poll() is not None:
                with _registry_lock:
                    _live_processes.discard(self.popen)
                self._release_watchdog()

    def _release_watchdog(self) -> None:
        """Close the pipe (the watchdog finds the JVM gone and exits) and reap it."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        try:
            watchdog.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait(STOP_GRACE)


def stop_all(processes: Iterable[JavaProcess], grace: float = STOP_GRACE, *, signum: int = signal.SIGTERM) -> None:
    """Signal every process once (all at once, so they stop in parallel), then reap each."""
    processes = list(processes)
    for process in processes:
        process.begin_stop(signum)
    for process in processes:
        process.finish_stop(grace)
