"""The real-ZooKeeper harness, checked with kazoo's *threading* handler (no eventlet here)."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

from kazoo.client import KazooClient  # noqa: E402
from kazoo.handlers.threading import KazooTimeoutError  # noqa: E402

from eventlet_handler.testing.zookeeper import (  # noqa: E402
    ZooKeeperEnsemble,
    ZooKeeperServer,
    ZooKeeperStartError,
    ZooKeeperUnavailable,
    generate_tls_material,
    zookeeper_available,
)
from support import kazoo_socket, until  # noqa: E402

requires_zookeeper = pytest.mark.skipif(
    not zookeeper_available(tls=True),
    reason="java or Debian's ZooKeeper jars are missing (`make test` installs them)",
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pid_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def client_factory():
    """Make started KazooClients (threading handler) and always stop and close them."""
    clients = []

    def make(hosts, start_timeout=10.0, **kwargs):
        client = KazooClient(hosts=hosts, **kwargs)
        clients.append(client)
        client.start(timeout=start_timeout)
        return client

    yield make
    for client in clients:
        client.stop()
        client.close()


@pytest.fixture
def server():
    with ZooKeeperServer() as zk:
        yield zk


@pytest.fixture(scope="module")
def tls_server():
    with ZooKeeperServer(tls=True) as zk:
        yield zk


def test_zookeeper_package_imports_neither_eventlet_nor_kazoo():
    """Benchmarks load the harness next to kazoo's own handlers: it must stay neutral.
    Nor cryptography (a test extra): only a TLS server needs it."""
    script = textwrap.dedent(
        """
        import sys
        import eventlet_handler.testing.zookeeper as zk
        zk.ZooKeeperServer, zk.ZooKeeperEnsemble, zk.zookeeper_available
        print(sorted(name for name in sys.modules
                     if name.split(".")[0] in ("eventlet", "kazoo", "cryptography")))
        """
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_zookeeper_package_has_no_import_cycle_and_small_modules():
    """Each module imports only modules before it (errors < java, probes, watchdog <
    process < server < standalone, ensemble; tls needs only errors), and none is huge."""
    package = os.path.join(REPO_ROOT, "eventlet_handler", "testing", "zookeeper")
    order = ["_errors", "_java", "_probes", "_watchdog", "_tls", "_process", "_server", "_standalone", "_ensemble"]
    for index, name in enumerate(order):
        with open(os.path.join(package, name + ".py")) as source:
            text = source.read()
        later = {other for other in order[index + 1 :] if f"from .{other} import" in text or f"{other}," in text
                 or f"import {other}" in text}
        assert not later, f"{name} imports {later}, which come after it"
        assert len(text.splitlines()) <= 400, f"{name} has {len(text.splitlines())} lines"


def test_zookeeper_available_false_without_jars(tmp_path):
    assert not zookeeper_available(str(tmp_path))


def test_ZooKeeperServer_start_without_jars_says_how_to_install(tmp_path):
    with pytest.raises(ZooKeeperUnavailable, match="apt-get install zookeeper"):
        ZooKeeperServer(jar_dir=str(tmp_path)).start()


@requires_zookeeper
def test_ZooKeeperServer_start_bad_config_raises_with_log_tail():
    zk = ZooKeeperServer(extra_config={"tickTime": "not-a-number"})
    with pytest.raises(ZooKeeperStartError, match="exited with code") as info:
        zk.start(timeout=20)
    assert "Log tail" in str(info.value)
    assert zk.pid is None
    zk.stop()


@requires_zookeeper
def test_ZooKeeperServer_crud_with_threading_handler(server, client_factory):
    client = client_factory(server.hosts)
    client.create("/harness/node", b"one", makepath=True)
    assert client.get("/harness/node")[0] == b"one"
    client.set("/harness/node", b"two")
    assert client.get("/harness/node")[0] == b"two"
    assert client.get_children("/harness") == ["node"]
    client.delete("/harness", recursive=True)
    assert client.exists("/harness") is None


@requires_zookeeper
def test_ZooKeeperServer_four_letter_words(server):
    assert server.four_letter("ruok") == "imok"
    assert "Mode: standalone" in server.four_letter("srvr")
    assert "zk_server_state\tstandalone" in server.four_letter("mntr")
    assert server.four_letter("stat").startswith("Zookeeper version")
    assert server.mode() == "standalone"


@requires_zookeeper
def test_ZooKeeperServer_session_timeout_floor_is_two_ticks(server, client_factory):
    client = client_factory(server.hosts, timeout=0.1)
    local_port = kazoo_socket(client).getsockname()[1]
    ours = [line for line in server.four_letter("cons").splitlines() if f":{local_port}[" in line]
    assert len(ours) == 1 and f"to={2 * server.tick_time_ms}," in ours[0], ours


@requires_zookeeper
def test_ZooKeeperServer_global_outstanding_limit_reaches_config():
    with ZooKeeperServer(global_outstanding_limit=5000) as zk:
        assert "globalOutstandingLimit=5000" in (zk.log_path.parent / "zoo.cfg").read_text()
        assert zk.four_letter("ruok") == "imok"


@requires_zookeeper
def test_ZooKeeperServer_tls_connects_with_ca(tls_server, client_factory):
    material = tls_server.tls_material
    client = client_factory(tls_server.secure_hosts, use_ssl=True, ca=material.ca_cert)
    client.create("/tls-ca", b"secret")
    assert client.get("/tls-ca")[0] == b"secret"
    client.delete("/tls-ca")


@requires_zookeeper
def test_ZooKeeperServer_tls_connects_with_client_certificate(tls_server, client_factory):
    material = tls_server.tls_material
    client = client_factory(
        tls_server.secure_hosts,
        use_ssl=True,
        ca=material.ca_cert,
        certfile=material.client_cert,
        keyfile=material.client_key,
    )
    assert client.exists("/") is not None


@requires_zookeeper
def test_ZooKeeperServer_tls_keeps_plain_port_open(tls_server, client_factory):
    client = client_factory(tls_server.hosts)
    assert client.exists("/") is not None


def assert_start_refused(client):
    """The server refuses ``client``'s TLS handshake: its start times out."""
    try:
        with pytest.raises(KazooTimeoutError):
            client.start(timeout=2)
    finally:
        client.stop()
        client.close()


@requires_zookeeper
def test_ZooKeeperServer_tls_refuses_client_trusting_other_ca(tls_server):
    material = tls_server.tls_material
    client = KazooClient(hosts=tls_server.secure_hosts, use_ssl=True, ca=material.other_ca_cert)
    assert_start_refused(client)


@requires_zookeeper
def test_ZooKeeperServer_tls_refuses_client_certificate_of_other_ca(tls_server, tmp_path):
    stranger = generate_tls_material(tmp_path)
    client = KazooClient(
        hosts=tls_server.secure_hosts,
        use_ssl=True,
        ca=tls_server.tls_material.ca_cert,
        certfile=stranger.client_cert,
        keyfile=stranger.client_key,
    )
    assert_start_refused(client)


def test_ZooKeeperServer_secure_hosts_without_tls_raises():
    with pytest.raises(RuntimeError, match="tls=False"):
        ZooKeeperServer().secure_hosts


@requires_zookeeper
def test_ZooKeeperServer_pause_and_resume(server, client_factory):
    client = client_factory(server.hosts, timeout=10.0)
    client.create("/paused", b"x")
    server.pause()
    try:
        assert server.mode() == "paused"
        with pytest.raises(OSError):
            server.four_letter("ruok", timeout=0.5)
        pending = client.get_async("/paused")
        assert not pending.wait(0.5), "a paused server must not answer"
    finally:
        server.resume()
    assert pending.get(timeout=10)[0] == b"x"
    assert server.four_letter("ruok") == "imok"


@requires_zookeeper
def test_ZooKeeperServer_stop_is_idempotent_and_reaps_pid():
    zk = ZooKeeperServer()
    zk.start()
    pid, root = zk.pid, zk.log_path.parent
    assert pid is not None and pid_exists(pid)
    zk.stop()
    zk.stop()
    assert zk.pid is None
    assert not pid_exists(pid)
    assert not root.exists()


@requires_zookeeper
def test_ZooKeeperServer_stop_of_paused_server():
    zk = ZooKeeperServer()
    zk.start()
    pid = zk.pid
    zk.pause()
    zk.stop()
    assert not pid_exists(pid)


@requires_zookeeper
def test_ZooKeeperServer_restart_keeps_port_and_data(server, client_factory):
    hosts = server.hosts
    client_factory(server.hosts).create("/kept", b"data")
    server.stop(keep_data=True)
    assert server.mode() == "stopped"
    server.start()
    assert server.hosts == hosts
    assert client_factory(server.hosts).get("/kept")[0] == b"data"


def _server_left_running_by_a_child(ending):
    """A child process starts a ZooKeeperServer, prints its pid and data root, then ends
    with the lines ``ending`` and no stop(); its completed process, the pid, the root."""
    script = textwrap.dedent(
        """
        import os, signal
        from eventlet_handler.testing.zookeeper import ZooKeeperServer
        zk = ZooKeeperServer()
        zk.start()
        print(zk.pid, zk.log_path.parent, flush=True)
        """
    ) + textwrap.dedent(ending)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert len(result.stdout.split()) == 2, result.stderr
    return (result, *result.stdout.split())


@requires_zookeeper
def test_ZooKeeperServer_killed_at_interpreter_exit():
    result, pid, root = _server_left_running_by_a_child("raise SystemExit(3)  # a crashed test: no stop()\n")
    assert result.returncode == 3, result.stderr
    assert not pid_exists(int(pid))
    assert not os.path.exists(root)


@requires_zookeeper
def test_ZooKeeperEnsemble_client_fails_over_when_its_member_stops(client_factory):
    with ZooKeeperEnsemble(3) as ensemble:
        assert sorted(member.mode() for member in ensemble.members) == ["follower", "follower", "leader"]
        client = client_factory(ensemble.hosts, timeout=10.0)
        client.create("/ensemble/value", b"survives", makepath=True)

        connected = ensemble.member_by_port(kazoo_socket(client).getpeername()[1])
        connected.stop()
        assert connected.pid is None

        assert client.get("/ensemble/value")[0] == b"survives"  # kazoo retries until reconnected
        until(lambda: client.connected, 20, "the client to reconnect")
        new_port = kazoo_socket(client).getpeername()[1]
        assert ensemble.member_by_port(new_port) is not connected

        connected.start(timeout=30)
        assert connected.mode() in ("leader", "follower")
        assert connected.four_letter("ruok") == "imok"
        assert sorted(member.mode() for member in ensemble.members) == ["follower", "follower", "leader"]
        direct = client_factory(connected.hosts)
        direct.sync("/ensemble/value")
        assert direct.get("/ensemble/value")[0] == b"survives"
        pids = [member.pid for member in ensemble.members]
    assert all(not pid_exists(pid) for pid in pids)


def test_ZooKeeperEnsemble_member_by_port_unknown_raises():
    with pytest.raises(KeyError, match="no ensemble member"):
        ZooKeeperEnsemble(3).member_by_port(1)


@requires_zookeeper
def test_ZooKeeperServer_start_retries_on_port_clash(monkeypatch):
    from eventlet_handler.testing.zookeeper import _process

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real_free_ports = _process.free_ports
    calls = []

    def free_ports(count):
        calls.append(count)
        return [taken] if len(calls) == 1 else real_free_ports(count)

    monkeypatch.setattr(_process, "free_ports", free_ports)
    try:
        with ZooKeeperServer() as zk:
            assert zk.port != taken
            assert len(calls) == 2
            assert zk.four_letter("ruok") == "imok"
            assert "Address already in use" in zk.log_path.read_text()
    finally:
        squatter.close()


@requires_zookeeper
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "_exit"])
def test_ZooKeeperServer_killed_when_test_process_dies_without_atexit(how):
    ending = "os._exit(4)\n" if how == "_exit" else f"os.kill(os.getpid(), signal.{how})\n"
    result, pid, root = _server_left_running_by_a_child(ending)
    assert result.returncode != 0
    until(lambda: not pid_exists(int(pid)), 10, f"the watchdog to kill java pid {pid}")
    until(lambda: not os.path.exists(root), 10, f"the watchdog to remove {root}")


@requires_zookeeper
def test_ZooKeeperEnsemble_reelects_after_leader_stops(client_factory):
    with ZooKeeperEnsemble(3) as ensemble:
        leader = ensemble.leader()
        assert leader is not None
        leader.stop()
        assert leader.mode() == "stopped"
        others = [member for member in ensemble.members if member is not leader]
        until(
            lambda: sorted(member.mode() for member in others) == ["follower", "leader"],
            20,
            "the two remaining members to elect a leader",
        )
        client = client_factory(",".join(member.hosts for member in others))
        client.create("/after-election", b"ok")
        leader.start()
        assert ensemble.leader() is not None
        assert client.get("/after-election")[0] == b"ok"


@requires_zookeeper
def test_ZooKeeperServer_kill_keeps_port_and_data_and_start_brings_it_back(server, client_factory, monkeypatch):
    from eventlet_handler.testing.zookeeper import _process

    sent = []  # white-box: which signal went out is seen only at the harness's one signal call
    real = _process._send_signal
    monkeypatch.setattr(_process, "_send_signal", lambda process, signum: (sent.append(signum), real(process, signum)))
    hosts = server.hosts
    client_factory(server.hosts).create("/killed", b"kept")
    pid = server.pid
    server.kill()
    assert signal.SIGKILL in sent and signal.SIGTERM not in sent, sent  # a crash, not a clean exit
    assert server.mode() == "stopped" and not pid_exists(pid)
    server.start()
    assert server.hosts == hosts
    assert client_factory(server.hosts).get("/killed")[0] == b"kept"


@requires_zookeeper
def test_ZooKeeperEnsemble_leader_kill_restart_and_mntr():
    """kill -9 of the leader, by PID: the others elect a new one; the old one restarts on
    its ports with its data and rejoins; mntr agrees with srvr."""
    with ZooKeeperEnsemble(3) as ensemble:
        leader = ensemble.leader()
        assert leader is not None
        assert leader.mntr()["zk_server_state"] == "leader"
        ports, pid = leader.peer_ports, leader.pid
        leader.kill()
        assert not pid_exists(pid)
        until(lambda: ensemble.leader() not in (None, leader), 20, "a new leader")
        leader.start(timeout=30)
        assert leader.peer_ports == ports and leader.mode() in ("leader", "follower")
        assert sorted(m.mntr()["zk_server_state"] for m in ensemble.members) == ["follower", "follower", "leader"]


@requires_zookeeper
def test_ZooKeeperEnsemble_stop_signals_each_member_once(monkeypatch):
    from eventlet_handler.testing.zookeeper import _process

    sent = []
    real = _process._send_signal

    def record(process, signum):
        sent.append((process.pid, signum))
        real(process, signum)

    with ZooKeeperEnsemble(3) as ensemble:
        pids = [member.pid for member in ensemble.members]
        monkeypatch.setattr(_process, "_send_signal", record)
    terms = [pid for pid, signum in sent if signum == signal.SIGTERM]
    assert sorted(terms) == sorted(pids), sent
