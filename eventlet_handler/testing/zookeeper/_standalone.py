"""The standalone :class:`ZooKeeperServer`, optionally with a TLS port.

The rules of :mod:`._server` hold; ports, data dir and TLS files are kept
across ``stop(keep_data=True)``/``kill()`` and ``start()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import _probes, _process
from ._errors import ZooKeeperStartError
from ._java import DEFAULT_JAR_DIR, DEFAULT_JVM_FLAGS, java_command
from ._process import LOOPBACK, STOP_GRACE
from ._server import (
    PROBE_TIMEOUT,
    START_ATTEMPTS,
    ServerBase,
    StartedInWith,
    assigned_port,
    poll_until,
    start_with_retry,
)

if TYPE_CHECKING:  # cryptography is imported only when TLS is asked for
    from ._tls import TLSMaterial


class ZooKeeperServer(ServerBase, StartedInWith):
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
        return assigned_port(self, self._secure_port, "TLS port")

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
        java_command(self.jar_dir, tls=self.tls)  # fail fast with the install hint
        self.last_start_seconds = start_with_retry(
            timeout,
            attempts=START_ATTEMPTS,
            prepare=self._prepare,
            launch_and_wait=self._launch_and_wait,
            abort=self._kill_process,
        )

    def stop(self, *, keep_data: bool = False, timeout: float = STOP_GRACE) -> None:
        """Kill the server by PID (SIGTERM, up to ``timeout`` s, SIGKILL) and remove its temp dir.

        Idempotent.  With ``keep_data=True`` the data dir (and TLS files) stay,
        so the next :meth:`start` resumes the same tree and sessions.
        """
        self._kill_process(timeout)
        if not keep_data:
            _process.remove_temp_dir(self._root)
            self._root = self._owned_temp_dir = None
            self.tls_material = None

    def restart(self, timeout: float = 30.0) -> None:
        """Stop keeping the data, then start again on the same ports."""
        self.stop(keep_data=True)
        self.start(timeout)

    def _prepare(self, fresh_ports: bool) -> None:
        if self._root is None:
            self._root = self._owned_temp_dir = _process.make_temp_dir("zk-standalone-")
        if self.tls and self.tls_material is None:
            from ._tls import generate_tls_material

            self.tls_material = generate_tls_material(self._root / "tls")
        if fresh_ports or self._port is None:
            ports = _process.free_ports(2 if self.tls else 1)
            self._port = ports[0]
            self._secure_port = ports[1] if self.tls else None

    def _launch_and_wait(self, deadline: float, timeout: float) -> None:
        self._launch()
        self._wait_ready(deadline, timeout)
        self._wait_secure_port(deadline, timeout)

    def _wait_secure_port(self, deadline: float, timeout: float) -> None:
        """The TLS factory binds after the plain one: wait until a TLS handshake succeeds."""
        if not self.tls:
            return
        material = self.tls_material
        assert material is not None
        errors: list[str | None] = [None]

        def handshakes() -> bool:
            errors[0] = _probes.tls_handshake_error(self.secure_port, material.ca_cert, PROBE_TIMEOUT)
            return errors[0] is None

        poll_until(handshakes, deadline, lambda: ZooKeeperStartError(
            f"{self!r}: no TLS handshake on port {self.secure_port} within {timeout:.1f}s "
            f"(last error: {errors[0]}). Log tail:\n{self.log_tail()}"
        ))

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
