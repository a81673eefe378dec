"""An N-node ZooKeeper quorum on loopback: :class:`ZooKeeperEnsemble` and its members.

The rules of :mod:`._server` hold.  Besides: every ensemble start picks fresh
ports for all members (a port clash restarts the whole ensemble, through the
same :func:`._server.start_with_retry` as a standalone server); a member's own
``stop()``/``kill()`` and ``start()`` keep its ports, data dir and server id, so it
rejoins the quorum as itself; stopping the ensemble signals each member once,
all at once.  The ensemble drives its members; a member only reads the
ensemble's public ``members`` (for its ``server.N`` lines).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from . import _process
from ._java import DEFAULT_JAR_DIR, DEFAULT_JVM_FLAGS, QUORUM_MAIN, java_command
from ._process import LOOPBACK, STOP_GRACE
from ._server import START_ATTEMPTS, JvmSettings, ServerBase, StartedInWith, start_with_retry


@dataclasses.dataclass(frozen=True)
class PeerPorts:
    client: int
    quorum: int
    election: int


class EnsembleMember(ServerBase):
    """One quorum peer of a :class:`ZooKeeperEnsemble`; its data dir belongs to the ensemble.

    ``stop()`` and ``kill()`` keep the data dir and ports, so ``start()``
    rejoins the quorum as the same server id.
    """

    _main_class = QUORUM_MAIN

    def __init__(self, ensemble: ZooKeeperEnsemble, server_id: int) -> None:
        super().__init__(
            tick_time_ms=ensemble.tick_time_ms,
            jar_dir=ensemble.jar_dir,
            extra_config=ensemble.extra_config,
            jvm_flags=ensemble.jvm_flags,
        )
        self.ensemble = ensemble
        self.server_id = server_id
        self.peer_ports: PeerPorts | None = None

    def start(self, timeout: float = 30.0) -> None:
        """(Re)start this member on its ports and wait until it serves as leader or follower."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running: stop() it before start()")
        if self.peer_ports is None:
            raise RuntimeError(f"{self!r} has no ports: start the ensemble first")
        self.last_start_seconds = start_with_retry(
            timeout,
            attempts=1,  # its ports are fixed: the quorum knows them
            prepare=lambda fresh_ports: None,
            launch_and_wait=self._launch_and_wait,
            abort=self._kill_process,
        )

    def stop(self, timeout: float = STOP_GRACE) -> None:
        """Kill this member by PID (SIGTERM, bounded wait, SIGKILL); idempotent; data is kept."""
        self._kill_process(timeout)

    def _assign(self, root: Path, owned_temp_dir: Path, ports: PeerPorts) -> None:
        self._root = root
        self._owned_temp_dir = owned_temp_dir
        self._port = ports.client
        self.peer_ports = ports

    def _launch_and_wait(self, deadline: float, timeout: float) -> None:
        self._launch()
        self._wait_ready(deadline, timeout)

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


class ZooKeeperEnsemble(JvmSettings, StartedInWith):
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
        super().__init__(
            tick_time_ms=tick_time_ms, jar_dir=jar_dir, extra_config=extra_config, jvm_flags=jvm_flags
        )
        self._root: Path | None = None
        self.members: list[EnsembleMember] = [EnsembleMember(self, i + 1) for i in range(size)]
        self.last_start_seconds: float | None = None

    @property
    def hosts(self) -> str:
        """Comma-separated connect string of all members."""
        return ",".join(member.hosts for member in self.members)

    def member_by_port(self, port: int) -> EnsembleMember:
        """The member whose client port is ``port`` (e.g. a client's peer port)."""
        known = [member.peer_ports.client if member.peer_ports else None for member in self.members]
        if port in known:
            return self.members[known.index(port)]
        raise KeyError(f"no ensemble member has client port {port}; members' ports are {known}")

    def leader(self) -> EnsembleMember | None:
        """The member that currently reports ``Mode: leader`` (``srvr``), if any.  Any thread."""
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
        java_command(self.jar_dir, tls=False)
        self.last_start_seconds = start_with_retry(
            timeout,
            attempts=START_ATTEMPTS,
            prepare=lambda fresh_ports: self._assign_ports(),
            launch_and_wait=self._launch_and_wait,
            abort=self._stop_members,
        )

    def stop(self, timeout: float = STOP_GRACE) -> None:
        """Kill every member by PID (each SIGTERMed once, all at once) and remove the temp dir; idempotent."""
        self._stop_members(timeout)
        _process.remove_temp_dir(self._root)
        self._root = None

    def _assign_ports(self) -> None:
        if self._root is None:
            self._root = _process.make_temp_dir("zk-ensemble-")
        ports = _process.free_ports(3 * len(self.members))
        for index, member in enumerate(self.members):
            client, quorum, election = ports[3 * index : 3 * index + 3]
            root = self._root / f"member{member.server_id}"
            member._assign(root, self._root, PeerPorts(client, quorum, election))

    def _launch_and_wait(self, deadline: float, timeout: float) -> None:
        for member in self.members:
            member._launch()
        for member in self.members:
            member._wait_ready(deadline, timeout)

    def _stop_members(self, grace: float = STOP_GRACE) -> None:
        _process.stop_all(filter(None, [member._take_process() for member in self.members]), grace)

    def __repr__(self) -> str:
        return f"<ZooKeeperEnsemble size={len(self.members)} members={self.members!r}>"
