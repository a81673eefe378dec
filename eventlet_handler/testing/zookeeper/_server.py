"""One ZooKeeper JVM: what a standalone server and an ensemble member share.

Rules
1. Every wait is bounded: start, readiness, four-letter words and stop all
   take a timeout, and a timeout error says what was waited for and shows the
   tail of the server log.
2. A server is "ready" only when it is *ours* (:func:`._probes.is_our_server`).
3. Starting goes through one path, :func:`start_with_retry`: a port clash is
   retried on fresh ports where the caller may pick them, any other failure
   kills what was launched and raises.
4. Ports and the data dir are kept across ``stop()``/``kill()`` and
   ``start()``, so clients reconnect to a restarted server and it resumes its
   tree and sessions.

One thread drives a server at a time; probes (``mode``, ``four_letter``) may
be sent from any thread.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from . import _process, _probes
from ._errors import PortClash, ZooKeeperStartError
from ._java import STANDALONE_MAIN, server_argv
from ._process import LOOPBACK, STOP_GRACE, JavaProcess

POLL_INTERVAL = 0.05  # seconds between readiness probes
PROBE_TIMEOUT = 1.0  # seconds for one readiness four-letter word
START_ATTEMPTS = 3  # tries when a port is already in use


def start_with_retry(
    timeout: float,
    *,
    attempts: int,
    prepare: Callable[[bool], None],
    launch_and_wait: Callable[[float, float], None],
    abort: Callable[[], None],
) -> float:
    """Rule 3: ``prepare(fresh_ports)``, then ``launch_and_wait(deadline, timeout)``;
    on :class:`PortClash` ``abort()`` and try again (up to ``attempts``), on any
    other error ``abort()`` and raise.  Returns the seconds the start took."""
    began = time.monotonic()
    deadline = began + timeout
    for attempt in range(1, attempts + 1):
        prepare(attempt > 1)
        try:
            launch_and_wait(deadline, timeout)
        except PortClash:
            abort()
            if attempt == attempts or time.monotonic() >= deadline:
                raise
        except BaseException:
            abort()
            raise
        else:
            break
    return time.monotonic() - began


_Started = TypeVar("_Started", bound="StartedInWith")


class StartedInWith:
    """``with server:`` starts it and always stops it, also when the start fails."""

    def start(self, timeout: float = 30.0) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Started) -> _Started:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def poll_until(ready: Callable[[], bool], deadline: float, timed_out: Callable[[], Exception]) -> None:
    """Call ``ready()`` every ``POLL_INTERVAL`` until it is true; at ``deadline``, raise
    ``timed_out()``. An exception from ``ready()`` ends the wait too."""
    while not ready():
        if time.monotonic() >= deadline:
            raise timed_out()
        time.sleep(POLL_INTERVAL)


def assigned_port(owner: object, port: int | None, what: str) -> int:
    """``port``, once ``start()`` assigned it; before, a ``RuntimeError`` naming ``owner``."""
    if port is None:
        raise RuntimeError(f"{owner!r} has no {what} yet: call start() (or use `with`) first")
    return port


class JvmSettings:
    """What a server and an ensemble both take: tick time, jars, extra config, JVM flags."""

    def __init__(
        self,
        *,
        tick_time_ms: int,
        jar_dir: str,
        extra_config: Mapping[str, str] | None,
        jvm_flags: Sequence[str],
    ) -> None:
        if tick_time_ms <= 0:
            raise ValueError(f"tick_time_ms must be positive, got {tick_time_ms}")
        self.tick_time_ms = tick_time_ms
        self.jar_dir = jar_dir
        self.jvm_flags: tuple[str, ...] = tuple(jvm_flags)
        self.extra_config: dict[str, str] = dict(extra_config or {})


class ServerBase(JvmSettings):
    """One JVM, its config, its probes, and the faults a test may inject (by PID)."""

    _main_class: str = STANDALONE_MAIN
    # Per-instance state, its value before the first start (assigned on the instance).
    _process: JavaProcess | None = None
    _port: int | None = None
    _root: Path | None = None
    _owned_temp_dir: Path | None = None  # what the watchdog removes if we die
    _paused = False
    _log_offset = 0  # where the current run's part of the log starts
    last_start_seconds: float | None = None

    # -- public properties ---------------------------------------------------

    @property
    def port(self) -> int:
        """The plain client port on 127.0.0.1 (assigned at the first ``start()``)."""
        return assigned_port(self, self._port, "port")

    @property
    def hosts(self) -> str:
        """Connect string for the plain client port, ``"127.0.0.1:PORT"``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running java process, or None when stopped. Any thread: read once,
        as another thread's stop() or kill() may take the process meanwhile."""
        process = self._process
        if process is None or process.exit_code() is not None:
            return None
        return process.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    @property
    def log_path(self) -> Path | None:
        """The server log (slf4j-simple output and JVM messages), while the temp dir exists."""
        return None if self._root is None else self._root / "zookeeper.log"

    @property
    def data_dir(self) -> Path | None:
        return None if self._root is None else self._root / "data"

    def log_tail(self, lines: int = _probes.LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server log, for error messages."""
        return _probes.log_tail(self.log_path, lines)

    # -- probes (any thread) ---------------------------------------------------

    def four_letter(self, word: str, timeout: float = 5.0) -> str:
        """Send a four-letter word (``ruok``, ``srvr``, ``mntr``, ``stat``, ``cons``...); return the reply."""
        return _probes.four_letter_word(LOOPBACK, self.port, word, timeout)

    def mntr(self, timeout: float = 2.0) -> dict[str, str]:
        """``mntr`` as a dict (``zk_server_state``, ``zk_znode_count``...); raises OSError if unreachable."""
        return _probes.parse_mntr(self.four_letter("mntr", timeout))

    def mode(self, timeout: float = 2.0) -> str:
        """``leader``/``follower``/``standalone``/``observer`` from ``srvr``.

        Otherwise ``"stopped"`` (no process), ``"paused"``, ``"unreachable"``
        (no answer) or ``"not serving"`` (answers but is out of quorum).
        """
        if not self.running:
            return "stopped"
        if self._paused:
            return "paused"
        try:
            return _probes.parse_mode(self.four_letter("srvr", timeout))
        except OSError:
            return "unreachable"

    # -- faults (by PID, only our own JVM) -------------------------------------

    def pause(self) -> None:
        """Freeze the JVM (SIGSTOP): connections stay open but nothing is answered."""
        process = self._running_process("pause")
        process.signal(signal.SIGSTOP)
        self._paused = True
        process.wait_stopped()

    def resume(self) -> None:
        """Unfreeze the JVM after :meth:`pause` (SIGCONT)."""
        self._running_process("resume").signal(signal.SIGCONT)
        self._paused = False

    def kill(self, timeout: float = STOP_GRACE) -> None:
        """Crash the JVM (SIGKILL, no clean shutdown) and reap it; ports and data are kept,
        so :meth:`start` brings the same server back (Rule 4).  No-op if not running."""
        process, self._process = self._process, None
        self._paused = False
        if process is not None:
            _process.stop_all([process], timeout, signum=signal.SIGKILL)

    def _running_process(self, action: str) -> JavaProcess:
        process = self._process  # once: see pid
        if process is None or process.exit_code() is not None:
            raise RuntimeError(f"cannot {action} {self!r}: it is not running (call start() first)")
        return process

    # -- lifecycle (for the topology classes) ----------------------------------

    def _launch(self) -> None:
        """Write the config and spawn the JVM (no waiting)."""
        assert self._root is not None and self.data_dir is not None and self._owned_temp_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._root / "zoo.cfg"
        config.write_text("".join(f"{key}={value}\n" for key, value in self._settings().items()))
        argv = server_argv(
            self.jar_dir, tls=self._needs_tls_jars(), jvm_flags=self.jvm_flags,
            main_class=self._main_class, config=str(config),
        )
        assert self.log_path is not None
        with open(self.log_path, "a") as log:
            self._log_offset = log.tell()
            log.write(f"==== {time.strftime('%H:%M:%S')} starting: {' '.join(argv)}\n")
        self._process = JavaProcess(argv, self.log_path, self._root, self._owned_temp_dir)
        self._paused = False

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        """Poll until ready (Rule 2); raise with the log tail on exit or at ``deadline``."""
        process = self._process
        assert process is not None

        def ready() -> bool:
            code = process.exit_code()
            if code is not None:
                process.finish_stop()
                tail = _probes.log_tail(self.log_path, since=self._log_offset)
                error = PortClash if _probes.PORT_CLASH.search(tail) else ZooKeeperStartError
                raise error(f"{self!r}: java exited with code {code} while starting. Log tail:\n{tail}")
            return _probes.is_our_server(self.port, str(self.data_dir), self._ready_modes(), PROBE_TIMEOUT)

        poll_until(ready, deadline, lambda: ZooKeeperStartError(
            f"{self!r} was not ready within {timeout:.1f}s (waited for ruok=imok, a serving "
            f"mode in srvr, and our dataDir in conf). Log tail:\n{self.log_tail()}"
        ))

    def _take_process(self) -> JavaProcess | None:
        """Detach the JVM (to stop it); the server counts as stopped from here on."""
        process, self._process = self._process, None
        self._paused = False
        return process

    def _kill_process(self, grace: float = STOP_GRACE) -> None:
        """Stop the JVM by PID (SIGTERM, bounded wait, SIGKILL); no-op if none."""
        _process.stop_all(filter(None, [self._take_process()]), grace)

    def _settings(self) -> dict[str, str]:
        assert self.data_dir is not None
        return {
            "tickTime": str(self.tick_time_ms),
            "dataDir": str(self.data_dir),
            "clientPort": str(self.port),
            "clientPortAddress": LOOPBACK,
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            "forceSync": "no",
            "maxClientCnxns": "0",
            "maxSessionTimeout": "60000",
        }

    def _ready_modes(self) -> frozenset[str]:
        return _probes.SERVING_MODES

    def _needs_tls_jars(self) -> bool:
        return False

    def __repr__(self) -> str:
        port = self._port if self._port is not None else "unassigned"
        return f"<{type(self).__name__} port={port} pid={self.pid} log={self.log_path}>"
