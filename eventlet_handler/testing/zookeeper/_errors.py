"""The harness's exceptions (imported by every other module of the package, importing none)."""

from __future__ import annotations


class ZooKeeperUnavailable(RuntimeError):
    """Java or the ZooKeeper jars are missing, so no server can be started."""


class ZooKeeperStartError(RuntimeError):
    """A ZooKeeper server did not become ready; the message holds its log tail."""


class PortClash(ZooKeeperStartError):
    """The server could not bind one of its ports; starting again on fresh ports may work."""
