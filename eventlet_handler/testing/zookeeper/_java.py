"""Finding java and Debian's ZooKeeper jars, and the command line that runs a server.

Pure functions of the environment (``PATH``, ``JAVA_HOME``, the jar directory); any thread.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterable, Sequence

from ._errors import ZooKeeperUnavailable

DEFAULT_JAR_DIR = "/usr/share/java"

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
STANDALONE_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
_INSTALL_HINT = (
    "`make test` installs Debian's zookeeper package; or run "
    "`apt-get install zookeeper` (it brings Java and the jars in /usr/share/java)"
)


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
    if tls and importlib.util.find_spec("cryptography") is None:
        return False
    return _find_java() is not None and not _missing_jars(jar_dir, jars)


def java_command(jar_dir: str, *, tls: bool) -> tuple[str, str]:
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


def server_argv(
    jar_dir: str, *, tls: bool, jvm_flags: Sequence[str], main_class: str, config: str
) -> list[str]:
    """The JVM command line; its last argument (the config path) is unique to one server."""
    java, classpath = java_command(jar_dir, tls=tls)
    return [java, *jvm_flags, *_FIXED_JVM_FLAGS, "-cp", classpath, main_class, config]
