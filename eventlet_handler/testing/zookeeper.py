"""Real ZooKeeper 3.8 servers for tests and benchmarks, run from Debian's jars.

This module starts ``java`` processes: a standalone server
(:class:`ZooKeeperServer`, optionally with a TLS port) or an N-node quorum on
loopback (:class:`ZooKeeperEnsemble`).  It is pure standard library plus
``cryptography`` and deliberately imports neither eventlet nor kazoo: the
benchmarks use it for kazoo's own handlers, in processes whose hubs differ.

Rules:

1. Every wait is bounded: start, readiness, four-letter words and stop all
   take a timeout, and a timeout error says what was waited for and shows the
   tail of the server log.
2. No java outlives the Python process: each launched server is registered
   in a module-level set and killed by an :mod:`atexit` hook, and a tiny
   watchdog process kills it if the Python process dies where atexit cannot
   run (SIGKILL, SIGTERM, ``os._exit``).  ``stop()`` kills by PID (SIGTERM,
   bounded wait, SIGKILL) and is idempotent.
3. A server is "ready" only when it is *ours*: it answers ``ruok`` with
   ``imok``, ``srvr`` reports a serving mode, and ``conf`` shows our own data
   directory (so a foreign server that grabbed our port is never mistaken for
   ours).  A port clash at start is retried on fresh ports.
4. Ports are chosen by binding to ``127.0.0.1:0``, and kept across
   ``stop()``/``start()`` so that clients can reconnect to a restarted server.

Server settings (design notes, kazoo-eventlet-gaps.md section 7): ``clientPortAddress=127.0.0.1``,
``admin.enableServer=false``, all four-letter words enabled, ``forceSync=no``,
``maxClientCnxns=0``, a small ``tickTime`` (200 ms: the minimum session
timeout is ``2 * tickTime`` so expiry tests are fast) and
``maxSessionTimeout=60000`` so a client gets the session timeout it asks for.
The JVM runs with ``-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1`` and
slf4j-simple writes the server log to ``zookeeper.log`` next to the data
directory (:attr:`ZooKeeperServer.log_path`).
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.util
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # cryptography is imported only when TLS is asked for
    from eventlet_handler.testing._tls_material import TLSMaterial, generate_tls_material


__all__ = [
    "DEFAULT_JAR_DIR",
    "DEFAULT_JVM_FLAGS",
    "EnsembleMember",
    "TLSMaterial",
    "ZooKeeperEnsemble",
    "ZooKeeperServer",
    "ZooKeeperStartError",
    "ZooKeeperUnavailable",
    "four_letter_word",
    "generate_tls_material",
    "zookeeper_available",
]

DEFAULT_JAR_DIR = "/usr/share/java"
LOOPBACK = "127.0.0.1"

_BASE_JARS = ("zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar")
_TLS_JARS = (
    "netty-handler.jar",
    "netty-transport.jar",
    "netty-codec.jar",
    "netty-buffer.jar",
    "netty-common.jar",
    "netty-resolver.jar",
    "netty-transport-native-unix-common.jar",
    "netty-transport-native-epoll.jar",
    "metrics-core.jar",
    "commons-cli.jar",
    "snappy-java.jar",
)
#: Fast start, small footprint.  C1 only (TieredStopAtLevel=1): pass
#: ``jvm_flags`` without it when a benchmark needs the server's peak speed.
DEFAULT_JVM_FLAGS: tuple[str, ...] = (
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
)
_FIXED_JVM_FLAGS = (
    "-Djava.net.preferIPv4Stack=true",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
)
_STANDALONE_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
_QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
_INSTALL_HINT = (
    "`make test` installs Debian's zookeeper package; or run "
    "`apt-get install zookeeper` (it brings Java and the jars in /usr/share/java)"
)

_POLL_INTERVAL = 0.05  # seconds between readiness probes
_PROBE_TIMEOUT = 1.0  # seconds for one readiness four-letter word
_STOP_GRACE = 5.0  # seconds to wait after SIGTERM, and again after SIGKILL
_START_ATTEMPTS = 3  # tries when a port is already in use
_LOG_TAIL_LINES = 40
_PORT_CLASH = re.compile(r"Address already in use|BindException|UNABLE_TO_BIND|Unable to bind")
_SERVING_MODES = frozenset({"standalone", "leader", "follower", "observer"})


class ZooKeeperUnavailable(RuntimeError):
    """Java or the ZooKeeper jars are missing, so no server can be started."""


class ZooKeeperStartError(RuntimeError):
    """A ZooKeeper server did not become ready; the message holds its log tail."""


class _PortClash(ZooKeeperStartError):
    """The server could not bind one of its ports; starting again on fresh ports may work."""


# --------------------------------------------------------------------------
# Process and temp-dir registry (Rule 2)

_registry_lock = threading.Lock()
_live_processes: set[subprocess.Popen[bytes]] = set()
_live_dirs: set[Path] = set()
_handed_out_ports: set[int] = set()


def _track_process(process: subprocess.Popen[bytes]) -> None:
    with _registry_lock:
        _live_processes.add(process)


def _untrack_process(process: subprocess.Popen[bytes]) -> None:
    with _registry_lock:
        _live_processes.discard(process)


def _make_temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    with _registry_lock:
        _live_dirs.add(path)
    return path


def _remove_temp_dir(path: Path | None) -> None:
    if path is None:
        return
    shutil.rmtree(path, ignore_errors=True)
    with _registry_lock:
        _live_dirs.discard(path)


@atexit.register
def _kill_leftovers() -> None:
    """Kill every server still running and remove every temp dir (at interpreter exit)."""
    with _registry_lock:
        processes = list(_live_processes)
        dirs = list(_live_dirs)
        _live_processes.clear()
        _live_dirs.clear()
    for process in processes:
        if process.poll() is None:
            _send_signal(process, signal.SIGKILL)
            try:
                process.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


def _send_signal(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal ``process`` by PID unless it has already been reaped (so the PID is still ours)."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------
# Environment checks


def _find_java() -> str | None:
    java = shutil.which("java")
    if java:
        return java
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return os.path.join(java_home, "bin", "java")
    return None


def _missing_jars(jar_dir: str, names: Iterable[str]) -> list[str]:
    return [name for name in names if not os.path.isfile(os.path.join(jar_dir, name))]


def zookeeper_available(jar_dir: str = DEFAULT_JAR_DIR, *, tls: bool = False) -> bool:
    """Return True if java and the jars needed to run ZooKeeper exist; with ``tls``,
    also the netty jars and ``cryptography`` (to make the certificates)."""
    jars = _BASE_JARS + (_TLS_JARS if tls else ())
    if tls and not _cryptography_importable():
        return False
    return _find_java() is not None and not _missing_jars(jar_dir, jars)


def _cryptography_importable() -> bool:
    return importlib.util.find_spec("cryptography") is not None


def __getattr__(name: str) -> Any:
    # TLSMaterial and generate_tls_material live in _tls_material, which needs
    # cryptography: imported on first use, so a plain server works without it.
    if name in ("TLSMaterial", "generate_tls_material"):
        from eventlet_handler.testing import _tls_material

        return getattr(_tls_material, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _java_command(jar_dir: str, *, tls: bool) -> tuple[str, str]:
    """Return ``(java, classpath)`` or raise :class:`ZooKeeperUnavailable` saying what is missing."""
    java = _find_java()
    if java is None:
        raise ZooKeeperUnavailable(f"no `java` on PATH or in $JAVA_HOME/bin: {_INSTALL_HINT}")
    jars = _BASE_JARS + (_TLS_JARS if tls else ())
    missing = _missing_jars(jar_dir, jars)
    if missing:
        raise ZooKeeperUnavailable(
            f"ZooKeeper jars missing from {jar_dir}: {', '.join(missing)}. {_INSTALL_HINT}"
        )
    return java, os.pathsep.join(os.path.join(jar_dir, name) for name in jars)


# --------------------------------------------------------------------------
# Ports and four-letter words


def _free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago.

    All sockets are held open until every port is picked, and ports already
    handed out by this process are skipped, so concurrent servers of one
    process never get the same port.
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


def four_letter_word(host: str, port: int, word: str, timeout: float = 5.0) -> str:
    """Send a four-letter word (``ruok``, ``srvr``, ``mntr``...) and return the whole reply.

    Raises :class:`OSError` (``ConnectionRefusedError``, ``TimeoutError``...)
    if the server cannot be reached or does not answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode("ascii"))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{word!r} to {host}:{port}: no complete reply in {timeout:.1f}s")
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks).decode("utf-8", "replace")
            chunks.append(chunk)


def _parse_mode(srvr_reply: str) -> str:
    match = re.search(r"^Mode: (\S+)", srvr_reply, re.MULTILINE)
    return match.group(1) if match else "not serving"


def _tls_handshake_error(port: int, ca_cert: str, timeout: float) -> str | None:
    """Handshake with the TLS port trusting ``ca_cert``; None on success, else why it failed."""
    context = ssl.create_default_context(cafile=ca_cert)
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=LOOPBACK):
                return None
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------
# One java process running ZooKeeper


# Run by a separate interpreter: blocks until the pipe from the test process
# reaches EOF, which the kernel delivers however that process ends (SIGKILL,
# SIGTERM, os._exit: cases atexit never sees).  If the PID still runs *our*
# command line (argv[2] is the server's unique config path) it kills the JVM,
# waits for it to vanish, and removes the server's temp dir (argv[3]).
_WATCHDOG_SOURCE = """
import os, signal, sys, time
pid, marker, temp_dir = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]

def ours():
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
            return marker in cmdline.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True

try:
    while os.read(0, 4096):
        pass
except OSError:
    pass
if ours():
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    deadline = time.monotonic() + 5
    while ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    import shutil
    shutil.rmtree(temp_dir, ignore_errors=True)
"""


class _JavaProcess:
    """A registered ``java`` child in its own session, stopped by PID (Rule 2).

    A small watchdog interpreter holds the read end of a pipe whose write end
    only this process has; if this process dies without stopping the JVM,
    the watchdog kills it.
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
        _track_process(self.popen)
        self._watchdog = self._start_watchdog(marker=argv[-1], temp_dir=temp_dir)

    def _start_watchdog(self, marker: str, temp_dir: Path) -> subprocess.Popen[bytes] | None:
        argv = [sys.executable, "-I", "-S", "-c", _WATCHDOG_SOURCE, str(self.popen.pid), marker]
        argv.append(str(temp_dir))
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

    def begin_stop(self) -> None:
        """Ask the JVM to exit (SIGTERM), waking it first in case it is paused."""
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)

    def finish_stop(self, grace: float = _STOP_GRACE) -> None:
        """Wait up to ``grace`` seconds for exit, then SIGKILL and reap; release the watchdog."""
        try:
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(grace)
        finally:
            if self.popen.poll() is not None:
                _untrack_process(self.popen)
                self._release_watchdog()

    def _release_watchdog(self) -> None:
        """Close the pipe (the watchdog finds the JVM gone and exits) and reap it."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        try:
            watchdog.wait(_STOP_GRACE)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait(_STOP_GRACE)


def _log_tail(path: Path | None, lines: int = _LOG_TAIL_LINES, *, since: int = 0) -> str:
    """The last ``lines`` lines of the log at ``path``, reading from byte offset ``since``."""
    if path is None or not path.exists():
        return "(no server log)"
    with open(path, "rb") as log:
        log.seek(since)
        text = log.read().decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:]) or "(server log is empty)"


def _config_text(settings: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in settings.items())


_Started = TypeVar("_Started", bound="_StartedInWith")


class _StartedInWith:
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


class _ServerBase:
    """What a standalone server and an ensemble member share: one JVM, its config, probes."""

    _main_class: str = _STANDALONE_MAIN

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
        self._process: _JavaProcess | None = None
        self._port: int | None = None
        self._root: Path | None = None
        self._paused = False
        self._log_offset = 0  # where the current run's part of the log starts
        self.last_start_seconds: float | None = None

    # -- public properties ---------------------------------------------------

    @property
    def port(self) -> int:
        """The plain client port on 127.0.0.1 (assigned at the first ``start()``)."""
        if self._port is None:
            raise RuntimeError(f"{self!r} has no port yet: call start() (or use `with`) first")
        return self._port

    @property
    def hosts(self) -> str:
        """Connect string for the plain client port, ``"127.0.0.1:PORT"``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running java process, or None when stopped."""
        if self._process is None or self._process.exit_code() is not None:
            return None
        return self._process.pid

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

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server log, for error messages."""
        return _log_tail(self.log_path, lines)

    # -- probes ----------------------------------------------------------------

    def four_letter(self, word: str, timeout: float = 5.0) -> str:
        """Send a four-letter word (``ruok``, ``srvr``, ``mntr``, ``stat``, ``cons``...); return the reply."""
        return four_letter_word(LOOPBACK, self.port, word, timeout)

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
            return _parse_mode(self.four_letter("srvr", timeout))
        except OSError:
            return "unreachable"

    # -- lifecycle -------------------------------------------------------------

    def pause(self) -> None:
        """Freeze the JVM (SIGSTOP): connections stay open but nothing is answered."""
        self._require_running("pause")
        assert self._process is not None
        self._process.signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Unfreeze the JVM after :meth:`pause` (SIGCONT)."""
        self._require_running("resume")
        assert self._process is not None
        self._process.signal(signal.SIGCONT)
        self._paused = False

    def _require_running(self, action: str) -> None:
        if not self.running:
            raise RuntimeError(f"cannot {action} {self!r}: it is not running (call start() first)")

    def _launch(self) -> None:
        """Write the config and spawn the JVM (no waiting)."""
        assert self._root is not None and self.data_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._root / "zoo.cfg"
        config.write_text(_config_text(self._settings()))
        java, classpath = _java_command(self.jar_dir, tls=self._needs_tls_jars())
        argv = [java, *self.jvm_flags, *_FIXED_JVM_FLAGS, "-cp", classpath, self._main_class, str(config)]
        assert self.log_path is not None
        with open(self.log_path, "a") as log:
            self._log_offset = log.tell()
            log.write(f"==== {time.strftime('%H:%M:%S')} starting: {' '.join(argv)}\n")
        self._process = _JavaProcess(argv, self.log_path, self._root, self._owned_temp_dir())
        self._paused = False

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        """Poll until :meth:`_is_ready`; raise with the log tail on exit or at ``deadline``."""
        assert self._process is not None
        while True:
            code = self._process.exit_code()
            if code is not None:
                self._process.finish_stop()
                tail = _log_tail(self.log_path, since=self._log_offset)
                error = _PortClash if _PORT_CLASH.search(tail) else ZooKeeperStartError
                raise error(f"{self!r}: java exited with code {code} while starting. Log tail:\n{tail}")
            if self._is_ready():
                return
            if time.monotonic() >= deadline:
                raise ZooKeeperStartError(
                    f"{self!r} was not ready within {timeout:.1f}s (waited for ruok=imok, a serving "
                    f"mode in srvr, and our dataDir in conf). Log tail:\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def _is_ready(self) -> bool:
        """Rule 3: answers imok, serves in an expected mode, and is this very server."""
        try:
            if self.four_letter("ruok", _PROBE_TIMEOUT) != "imok":
                return False
            if _parse_mode(self.four_letter("srvr", _PROBE_TIMEOUT)) not in self._ready_modes():
                return False
            return str(self.data_dir) in self.four_letter("conf", _PROBE_TIMEOUT)
        except OSError:
            return False

    def _kill_process(self, grace: float = _STOP_GRACE) -> None:
        """Stop the JVM by PID (SIGTERM, bounded wait, SIGKILL); no-op if none."""
        process, self._process = self._process, None
        self._paused = False
        if process is not None:
            process.begin_stop()
            process.finish_stop(grace)

    # -- hooks -----------------------------------------------------------------

    def _settings(self) -> dict[str, str]:
        assert self.data_dir is not None
        settings = {
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
        return settings

    def _ready_modes(self) -> frozenset[str]:
        return _SERVING_MODES

    def _owned_temp_dir(self) -> Path:
        """The temp dir to remove if this process dies with the server running."""
        assert self._root is not None
        return self._root

    def _needs_tls_jars(self) -> bool:
        return False

    def __repr__(self) -> str:
        port = self._port if self._port is not None else "unassigned"
        return f"<{type(self).__name__} port={port} pid={self.pid} log={self.log_path}>"


class ZooKeeperServer(_ServerBase, _StartedInWith):
    """One standalone ZooKeeper server on 127.0.0.1, in its own temp dir.

    Ports are picked at the first :meth:`start` and kept afterwards, so
    ``stop(); start()`` brings the server back on the same ``hosts``.
    ``tls=True`` adds a Netty TLS port (:attr:`secure_hosts`) with
    ``ssl.clientAuth=want``: a client that only trusts :attr:`tls_material`'s
    CA connects, and so does one presenting a client certificate signed by it.
    """

    def __init__(
        self,
        *,
        tick_time_ms: int = 200,
        tls: bool = False,
        global_outstanding_limit: int | None = None,
        extra_config: dict[str, str] | None = None,
        jar_dir: str = DEFAULT_JAR_DIR,
        jvm_flags: Sequence[str] = DEFAULT_JVM_FLAGS,
    ) -> None:
        super().__init__(
            tick_time_ms=tick_time_ms, jar_dir=jar_dir, extra_config=extra_config, jvm_flags=jvm_flags
        )
        self.tls = tls
        self.global_outstanding_limit = global_outstanding_limit
        self._secure_port: int | None = None
        self.tls_material: TLSMaterial | None = None

    @property
    def secure_port(self) -> int:
        """The TLS client port; raises unless created with ``tls=True`` and started."""
        if not self.tls:
            raise RuntimeError(f"{self!r} was created with tls=False: pass tls=True for a TLS port")
        if self._secure_port is None:
            raise RuntimeError(f"{self!r} has no TLS port yet: call start() (or use `with`) first")
        return self._secure_port

    @property
    def secure_hosts(self) -> str:
        """Connect string for the TLS port, ``"127.0.0.1:SECUREPORT"`` (only with ``tls=True``)."""
        return f"{LOOPBACK}:{self.secure_port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the JVM and wait until it serves; retry on fresh ports if a port is taken.

        Raises :class:`ZooKeeperUnavailable` if java or jars are missing and
        :class:`ZooKeeperStartError` (with the server log tail) on failure.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is already running: stop() it before start()")
        _java_command(self.jar_dir, tls=self.tls)  # fail fast with the install hint
        began = time.monotonic()
        deadline = began + timeout
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._prepare(fresh_ports=attempt > 1)
            self._launch()
            try:
                self._wait_ready(deadline, timeout)
                self._wait_secure_port(deadline, timeout)
            except _PortClash:
                self._kill_process()
                if attempt == _START_ATTEMPTS or time.monotonic() >= deadline:
                    raise
            except BaseException:
                self._kill_process()
                raise
            else:
                self.last_start_seconds = time.monotonic() - began
                return

    def stop(self, *, keep_data: bool = False, timeout: float = _STOP_GRACE) -> None:
        """Kill the server by PID (SIGTERM, up to ``timeout`` s, SIGKILL) and remove its temp dir.

        Idempotent.  With ``keep_data=True`` the data dir (and TLS files) stay,
        so the next :meth:`start` resumes the same tree and sessions.
        """
        self._kill_process(timeout)
        if not keep_data:
            _remove_temp_dir(self._root)
            self._root = None
            self.tls_material = None

    def restart(self, timeout: float = 30.0) -> None:
        """Stop keeping the data, then start again on the same ports."""
        self.stop(keep_data=True)
        self.start(timeout)

    def _prepare(self, *, fresh_ports: bool) -> None:
        if self._root is None:
            self._root = _make_temp_dir("zk-standalone-")
        if self.tls and self.tls_material is None:
            from eventlet_handler.testing._tls_material import generate_tls_material

            self.tls_material = generate_tls_material(self._root / "tls")
        if fresh_ports or self._port is None:
            ports = _free_ports(2 if self.tls else 1)
            self._port = ports[0]
            self._secure_port = ports[1] if self.tls else None

    def _wait_secure_port(self, deadline: float, timeout: float) -> None:
        """The TLS factory binds after the plain one: wait until a TLS handshake succeeds."""
        if not self.tls:
            return
        assert self.tls_material is not None
        while True:
            error = _tls_handshake_error(self.secure_port, self.tls_material.ca_cert, _PROBE_TIMEOUT)
            if error is None:
                return
            if time.monotonic() >= deadline:
                raise ZooKeeperStartError(
                    f"{self!r}: no TLS handshake on port {self.secure_port} within {timeout:.1f}s "
                    f"(last error: {error}). Log tail:\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def _settings(self) -> dict[str, str]:
        settings = super()._settings()
        if self.tls:
            settings.update(self._tls_settings())
        if self.global_outstanding_limit is not None:
            settings["globalOutstandingLimit"] = str(self.global_outstanding_limit)
        settings.update(self.extra_config)
        return settings

    def _tls_settings(self) -> dict[str, str]:
        material = self.tls_material
        assert material is not None
        return {
            "secureClientPort": str(self.secure_port),
            "secureClientPortAddress": LOOPBACK,
            "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
            "ssl.keyStore.location": material.keystore,
            "ssl.keyStore.password": material.password,
            "ssl.keyStore.type": "PKCS12",
            "ssl.trustStore.location": material.truststore,
            "ssl.trustStore.password": material.password,
            "ssl.trustStore.type": "PKCS12",
            # ZooKeeper defaults to "need"; "want" accepts CA-only clients too
            # while still verifying any client certificate that is presented.
            "ssl.clientAuth": "want",
        }

    def _ready_modes(self) -> frozenset[str]:
        return frozenset({"standalone"})

    def _needs_tls_jars(self) -> bool:
        return self.tls


# --------------------------------------------------------------------------
# Ensembles


@dataclasses.dataclass(frozen=True)
class _PeerPorts:
    client: int
    quorum: int
    election: int


class EnsembleMember(_ServerBase):
    """One quorum peer of a :class:`ZooKeeperEnsemble`; its data dir belongs to the ensemble.

    ``stop()`` keeps the data dir and ports, so ``start()`` rejoins the quorum
    as the same server id.
    """

    _main_class = _QUORUM_MAIN

    def __init__(self, ensemble: ZooKeeperEnsemble, server_id: int) -> None:
        super().__init__(
            tick_time_ms=ensemble.tick_time_ms,
            jar_dir=ensemble.jar_dir,
            extra_config=ensemble.extra_config,
            jvm_flags=ensemble.jvm_flags,
        )
        self.ensemble = ensemble
        self.server_id = server_id
        self.peer_ports: _PeerPorts | None = None

    def start(self, timeout: float = 30.0) -> None:
        """(Re)start this member on its ports and wait until it serves as leader or follower."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running: stop() it before start()")
        if self.peer_ports is None:
            raise RuntimeError(f"{self!r} has no ports: start the ensemble first")
        began = time.monotonic()
        self._launch()
        try:
            self._wait_ready(began + timeout, timeout)
        except BaseException:
            self._kill_process()
            raise
        self.last_start_seconds = time.monotonic() - began

    def stop(self, timeout: float = _STOP_GRACE) -> None:
        """Kill this member by PID (SIGTERM, bounded wait, SIGKILL); idempotent; data is kept."""
        self._kill_process(timeout)

    def _assign(self, root: Path, ports: _PeerPorts) -> None:
        self._root = root
        self._port = ports.client
        self.peer_ports = ports

    def _owned_temp_dir(self) -> Path:
        assert self.ensemble._root is not None
        return self.ensemble._root

    def _launch(self) -> None:
        assert self.data_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "myid").write_text(f"{self.server_id}\n")
        super()._launch()

    def _settings(self) -> dict[str, str]:
        settings = super()._settings()
        settings.update(
            {
                "initLimit": "50",  # ticks: slow JVM starts on small machines must still sync
                "syncLimit": "10",
                "cnxTimeout": "1000",  # ms to reach a dead peer during election (default 5000)
            }
        )
        for member in self.ensemble.members:
            assert member.peer_ports is not None
            settings[f"server.{member.server_id}"] = (
                f"{LOOPBACK}:{member.peer_ports.quorum}:{member.peer_ports.election}"
            )
        settings.update(self.extra_config)
        return settings

    def __repr__(self) -> str:
        port = self._port if self._port is not None else "unassigned"
        return f"<EnsembleMember id={self.server_id} port={port} pid={self.pid} log={self.log_path}>"


class ZooKeeperEnsemble(_StartedInWith):
    """An N-node ZooKeeper quorum on loopback (``server.N`` lines, one ``myid`` per member)."""

    def __init__(
        self,
        size: int = 3,
        *,
        tick_time_ms: int = 200,
        jar_dir: str = DEFAULT_JAR_DIR,
        extra_config: dict[str, str] | None = None,
        jvm_flags: Sequence[str] = DEFAULT_JVM_FLAGS,
    ) -> None:
        if size < 1:
            raise ValueError(f"an ensemble needs at least one member, got size={size}")
        self.tick_time_ms = tick_time_ms
        self.jar_dir = jar_dir
        self.jvm_flags: tuple[str, ...] = tuple(jvm_flags)
        self.extra_config: dict[str, str] = dict(extra_config or {})
        self._root: Path | None = None
        self.members: list[EnsembleMember] = [EnsembleMember(self, i + 1) for i in range(size)]
        self.last_start_seconds: float | None = None

    @property
    def hosts(self) -> str:
        """Comma-separated connect string of all members."""
        return ",".join(member.hosts for member in self.members)

    def member_by_port(self, port: int) -> EnsembleMember:
        """The member whose client port is ``port`` (e.g. a client's peer port)."""
        for member in self.members:
            if member._port == port:
                return member
        known = [member._port for member in self.members]
        raise KeyError(f"no ensemble member has client port {port}; members' ports are {known}")

    def leader(self) -> EnsembleMember | None:
        """The member that currently reports ``Mode: leader``, if any."""
        for member in self.members:
            if member.mode() == "leader":
                return member
        return None

    def start(self, timeout: float = 60.0) -> None:
        """Start every member at once and wait until each serves as leader or follower.

        Every ensemble start picks fresh ports (a member's own ``stop()`` and
        ``start()`` keep them); a port clash restarts the whole ensemble on
        fresh ports (bounded attempts).  Raises :class:`ZooKeeperStartError`
        with the log tail of the member that failed.
        """
        if any(member.running for member in self.members):
            raise RuntimeError(f"{self!r} is already running: stop() it before start()")
        _java_command(self.jar_dir, tls=False)
        began = time.monotonic()
        deadline = began + timeout
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._assign_ports()
            try:
                for member in self.members:
                    member._launch()
                for member in self.members:
                    member._wait_ready(deadline, timeout)
            except _PortClash:
                self._kill_all()
                if attempt == _START_ATTEMPTS or time.monotonic() >= deadline:
                    raise
            except BaseException:
                self._kill_all()
                raise
            else:
                self.last_start_seconds = time.monotonic() - began
                return

    def stop(self, timeout: float = _STOP_GRACE) -> None:
        """Kill every member by PID (all SIGTERMed at once) and remove the temp dir; idempotent."""
        self._kill_all(timeout)
        _remove_temp_dir(self._root)
        self._root = None

    def _assign_ports(self) -> None:
        if self._root is None:
            self._root = _make_temp_dir("zk-ensemble-")
        ports = _free_ports(3 * len(self.members))
        for index, member in enumerate(self.members):
            client, quorum, election = ports[3 * index : 3 * index + 3]
            member._assign(self._root / f"member{member.server_id}", _PeerPorts(client, quorum, election))

    def _kill_all(self, grace: float = _STOP_GRACE) -> None:
        processes = [member._process for member in self.members if member._process is not None]
        for process in processes:
            process.begin_stop()
        for member in self.members:
            member._kill_process(grace)

    def __repr__(self) -> str:
        return f"<ZooKeeperEnsemble size={len(self.members)} members={self.members!r}>"

