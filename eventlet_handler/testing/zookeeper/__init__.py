"""Real ZooKeeper 3.8 servers for tests and benchmarks, run from Debian's jars.

This package starts ``java`` processes: a standalone server
(:class:`ZooKeeperServer`, optionally with a TLS port) or an N-node quorum on
loopback (:class:`ZooKeeperEnsemble`).  It is pure standard library plus
``cryptography`` (only for TLS) and deliberately imports neither eventlet nor
kazoo: the benchmarks use it for kazoo's own handlers, in processes whose hubs
differ.

Layout: :mod:`._java` finds java and the jars; :mod:`._process` supervises the
JVMs (registry, signals by PID, :mod:`._watchdog`, ports); :mod:`._probes`
sends four-letter words; :mod:`._server` is one JVM and the single start path;
:mod:`._standalone` and :mod:`._ensemble` are the topologies; :mod:`._tls`
makes certificates.  Each module states its rules.

Faults for tests (all by PID, only on JVMs this process started):
``kill()`` (SIGKILL; ports and data kept, ``start()`` brings the server back),
``pause()``/``resume()`` (SIGSTOP/SIGCONT), ``stop()``; probes:
``mode()``, ``mntr()``, ``four_letter()``, :meth:`ZooKeeperEnsemble.leader`.

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

from typing import TYPE_CHECKING, Any

from ._ensemble import EnsembleMember, ZooKeeperEnsemble
from ._errors import ZooKeeperStartError, ZooKeeperUnavailable
from ._java import DEFAULT_JAR_DIR, DEFAULT_JVM_FLAGS, zookeeper_available
from ._probes import four_letter_word
from ._standalone import ZooKeeperServer

if TYPE_CHECKING:  # cryptography is imported only when TLS is asked for
    from ._tls import TLSMaterial, generate_tls_material

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


def __getattr__(name: str) -> Any:
    # TLSMaterial and generate_tls_material need cryptography: imported on
    # first use, so a plain server works without it.
    if name in ("TLSMaterial", "generate_tls_material"):
        from . import _tls

        return getattr(_tls, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
