"""The chaos tool's schedule replays, and each end check fails on the violation it exists for.

No ZooKeeper here: the checks are pure functions of a history and a server state.
"""

from __future__ import annotations

import threading

from chaos import _checks
from chaos._checks import ServerState
from chaos._history import ACK, History
from chaos._schedule import KINDS, make_schedule
from chaos._workload import Hold


def test_schedule_same_seed_replays_and_seeds_differ() -> None:
    assert make_schedule(7, 300) == make_schedule(7, 300)
    assert make_schedule(7, 300) != make_schedule(8, 300)
    kinds = {f.kind for seed in range(20) for group in make_schedule(seed, 300) for f in group}
    assert kinds | {"double"} == set(KINDS)
    assert any(len(group) == 2 for group in make_schedule(7, 300))


def _history() -> History:
    return History(threading.Lock())


def _write(history: History, op: str, outcome: str = ACK, **detail: object) -> None:
    call = history.begin(op, "green", "g0", **detail)
    history.finish(call, outcome)


def _state(seq: dict | None = None, keys: dict | None = None) -> ServerState:
    return ServerState(seq or {}, keys or {"/k": (b"b", 2, 0.0)}, {})


def test_acknowledged_writes_pass_on_a_consistent_history() -> None:
    history = _history()
    _write(history, "seq_create", path="/s/n-1", token=b"t1")
    _write(history, "cas_set", key="/k", token=b"a", version=1)
    _write(history, "cas_set", key="/k", token=b"b", version=2)
    check = _checks.acknowledged_writes(history.calls, _state({"n-1": (b"t1", 0.0)}), "/s")
    assert check.passed, check.detail


def test_acknowledged_writes_fail_on_a_lost_create() -> None:
    history = _history()
    _write(history, "seq_create", path="/s/n-1", token=b"t1")
    assert not _checks.acknowledged_writes(history.calls, _state(), "/s").passed


def test_acknowledged_writes_fail_on_two_writes_claiming_one_version() -> None:
    history = _history()
    _write(history, "cas_set", key="/k", token=b"a", version=2)
    _write(history, "cas_set", key="/k", token=b"b", version=2)
    assert not _checks.acknowledged_writes(history.calls, _state(), "/s").passed


def test_acknowledged_writes_fail_on_a_version_beyond_the_final_one_or_out_of_order() -> None:
    history = _history()
    _write(history, "cas_set", key="/k", token=b"x", version=3)
    assert not _checks.acknowledged_writes(history.calls, _state(), "/s").passed
    ordered = _history()
    _write(ordered, "cas_set", key="/k", token=b"b", version=2)
    _write(ordered, "cas_set", key="/k", token=b"a", version=1)  # began after version 2 was acknowledged
    assert not _checks.acknowledged_writes(ordered.calls, _state(), "/s").passed


def test_uncertain_writes_fail_when_applied_twice() -> None:
    history = _history()
    _write(history, "seq_create", "ConnectionLoss", token=b"t1")
    state = _state({"n-1": (b"t1", 0.0), "n-2": (b"t1", 0.0)})
    assert not _checks.uncertain_writes(history.calls, state).passed
    assert _checks.uncertain_writes(history.calls, _state({"n-1": (b"t1", 0.0)})).passed


def test_nothing_applied_after_stop_fails_on_a_write_created_after_the_stop_returned() -> None:
    history = _history()
    _write(history, "seq_create", "ConnectionClosedError", token=b"t1")
    history.event("stop_called", wall=100.0, paused=[])
    history.event("stop_returned", wall=100.5)
    late = _state({"n-1": (b"t1", 101.0)})
    assert not _checks.nothing_applied_after_stop(history.calls, history.events, late).passed
    early = _state({"n-1": (b"t1", 100.2)})
    assert _checks.nothing_applied_after_stop(history.calls, history.events, early).passed


def test_calls_bounded_fails_on_a_call_that_never_returned() -> None:
    history = _history()
    history.begin("get", "native", "n0")
    assert not _checks.calls_bounded(history)[0].passed


def test_calls_bounded_excuses_only_a_create_answered_with_a_null_path() -> None:
    # Seed 402: ZooKeeper answered a Create with success and a null path; kazoo's
    # create() never completes. Only that create, matched by its token, is excused.
    history = _history()
    history.begin("seq_create", "native", "n1", token=b"n1:874")
    history.begin("seq_create", "green", "g0", token=b"g0:5")
    history.event("null_create", token=b"n1:874", xid=1, zxid=5)
    bounded, upstream = _checks.calls_bounded(history)
    assert not bounded.passed and "g0" in bounded.detail and "n1" not in bounded.detail
    assert upstream.passed is None and "n1 (native)" in upstream.detail
    history.finish(history.calls[1], "ok")
    assert [c.passed for c in _checks.calls_bounded(history)] == [True, None]


def test_lock_ledger_fails_on_two_live_holders_and_passes_after_session_loss() -> None:
    history = _history()
    history.event("connected", session=1)
    overlapping = [Hold("g0", 1, 10.0, 12.0), Hold("g1", 1, 11.0, 13.0)]
    assert not _checks.lock_ledger(overlapping, history.events, 20.0, []).passed
    history.events[-1].at = 0.0
    lost = history.event("lost")
    lost.at = 10.5  # session 1 ended before g1 (session 2) acquired
    history.event("connected", session=2).at = 10.8
    after_loss = [Hold("g0", 1, 10.0, 12.0), Hold("g1", 2, 11.0, 13.0)]
    assert _checks.lock_ledger(after_loss, history.events, 20.0, []).passed


class _Member:
    """A member as the injector sees it; ``mode()`` yields, as its network round trip does."""

    def __init__(self, server_id: int, mode: str) -> None:
        self.server_id, self._mode, self.port = server_id, mode, 1000 + server_id
        self.running, self.paused = True, False

    def mode(self) -> str:
        import eventlet

        eventlet.sleep(0)
        return self._mode


def test_two_faults_of_one_group_never_pick_the_same_member() -> None:
    # Seed 408: 'kill leader' and 'pause_short leader' in one group both chose member 3,
    # because asking the modes yielded between the busy check and the claim.
    import eventlet

    from chaos._faults import Injector

    members = [_Member(1, "follower"), _Member(2, "follower"), _Member(3, "leader")]
    injector = Injector(
        type("Ensemble", (), {"members": members})(), None, _history(),
        run_blocking=lambda f, *a: f(*a), spawn_green=eventlet.spawn, green_sleep=eventlet.sleep,
        hog_sleep=lambda s: None,
    )
    picks = [eventlet.spawn(injector._pick, "leader") for _ in range(2)]
    chosen = [p.wait() for p in picks]
    assert chosen[0] is members[2] and chosen[1] is not members[2], [m.server_id for m in chosen]


class _Socket:
    def __init__(self, port: int) -> None:
        self.port, self.shut = port, False

    def getpeername(self) -> tuple[str, int]:
        if self.shut:
            raise OSError("not connected")
        return ("127.0.0.1", self.port)

    def shutdown(self, how: int) -> None:
        self.shut = True


class _DumpMember(_Member):
    """A member whose four-letter ``dump`` lists the session until it is told it expired."""

    def __init__(self, server_id: int, sessions: set[str]) -> None:
        super().__init__(server_id, "follower")
        self.sessions = sessions

    def four_letter(self, word: str, timeout: float = 5.0) -> str:
        assert word == "dump"
        return "SessionTracker dump:\nGlobal Sessions(1):\n" + "".join(f"{s}\t4000ms\n" for s in self.sessions)


def test_expire_cuts_the_client_off_until_the_servers_dropped_its_session(monkeypatch) -> None:
    # The expire fault used to take the session over from a second client while the
    # client's requests were in flight: kazoo's loop then died on a reply out of order
    # (isolated seeds 419, 421). Now it refuses the client's connects and shuts every
    # connection it makes to a member, until no member lists the session, then restores
    # the hosts; it never opens a session of its own.
    import eventlet

    from chaos import _faults

    monkeypatch.setattr(_faults, "SESSION_TIMEOUT", 0.2)
    session = 0x1000007CCE90000
    sessions = {hex(session)}
    members = [_DumpMember(i, sessions) for i in (1, 2, 3)]
    connection = type("Connection", (), {"_socket": _Socket(members[0].port)})()
    hosts_set: list[str] = []

    class Client:
        _connection = connection
        client_id: tuple[int, bytes] | None = (session, b"pw")
        connected = True

        def set_hosts(self, hosts: str) -> None:
            hosts_set.append(hosts if not sessions else f"{hosts} (session still listed)")

    client = Client()
    injector = _faults.Injector(
        type("Ensemble", (), {"members": members, "hosts": "127.0.0.1:1001,127.0.0.1:1002"})(), client, _history(),
        run_blocking=lambda f, *a: f(*a), spawn_green=eventlet.spawn, green_sleep=eventlet.sleep,
        hog_sleep=lambda s: None,
    )
    first = connection._socket

    def until(done: object, bound: float = 2.0) -> None:  # bounded: a broken fault fails, never hangs
        for _ in range(int(bound / 0.01)):
            if done():  # type: ignore[operator]
                return
            eventlet.sleep(0.01)

    def kazoo_reconnects_then_the_servers_expire() -> None:
        until(lambda: first.shut)
        connection._socket = second = _Socket(members[1].port)  # the rest of kazoo's round of hosts
        until(lambda: second.shut)
        eventlet.sleep(0.3)  # past the (patched) session timeout
        sessions.clear()  # the servers expired it
        until(lambda: len(hosts_set) >= 2)  # refused until the fault restores the hosts
        client.client_id, connection._socket = (session + 1, b"pw2"), _Socket(members[2].port)

    servers = eventlet.spawn(kazoo_reconnects_then_the_servers_expire)
    detail = injector._expire(_faults.Fault(0.0, "expire", "", 6.0))
    servers.wait()
    assert "error" not in detail and detail["drops"] == 2 and detail["new_session"] == session + 1, detail
    assert hosts_set[0].startswith("127.0.0.1:") and hosts_set[0].endswith("(session still listed)"), hosts_set
    assert hosts_set[1:] == [injector.ensemble.hosts], hosts_set  # restored only once no member lists the session
    assert not connection._socket.shut  # the new session's connection is left alone


def test_summary_row_and_expire_row_of_a_report() -> None:
    from chaos._summary import expire_rows, row

    report = {
        "mode": "shared", "seed": 7, "passed": False,
        "faults": {"kill": {"injected": 1, "skipped": 1}, "expire": {"injected": 1}},
        "calls": {"green": {"ok": 5, "ConnectionLoss": 1}, "native": {"ok": 2}},
        "callers": {"green": 6, "native": 3, "asyncio": 0},
        "longest_stall_s": {"kill": 1.5, "expire": 4.25}, "recovery_s": {"kill": {"n": 1, "median": 1.0, "max": 2.5}},
        "checks": [{"name": "a", "passed": True}, {"name": "b", "passed": False}, {"name": "c", "passed": None}],
        "timeline": [[3.0, "fault", {"kind": "expire", "held_s": 4.6, "drops": 3, "new_session": 9, "back_after_s": 0.5}]],
    }
    assert row(report) == "| shared | 7 | FAIL | expire 1, kill 2 | 8 (7 ok) | 6/3/0 | 4.25 | 2.50 | b; c |"
    assert expire_rows(report) == ["| shared | 7 | 3.0 | 4.60 | 3 | 0.5 |"]


def test_a_silent_ChildrenWatch_is_upstream_only_with_the_bug_s_signature() -> None:
    # Shared-asyncio seed 501: the recipe's last fetch ran as stop() lost the session;
    # isolated 602: as a leader's death dropped the connection (SUSPENDED). The watch went
    # silent for good (kazoo's bug, strict xfail); any other silence still fails.
    from chaos._checks import CHILDREN_WATCH_UPSTREAM, Check, children_watch_upstream

    failed = Check("ChildrenWatch ends on the final children", False, "703 seen, 957 on the server")
    state = {"children_watch": {"established": True, "stopped": False}, "client_child_watchers": 0}
    known = children_watch_upstream(failed, state, 39.255, [19.077, 39.252])
    assert known.passed is None and known.name == CHILDREN_WATCH_UPSTREAM
    assert children_watch_upstream(failed, state, 30.0, [19.077, 39.252]) is failed  # not at a lost connection
    assert children_watch_upstream(failed, state, 39.0, [39.252]) is failed  # before it, not after
    # Shared-asyncio 602: the client still holds a watcher: not this bug.
    assert children_watch_upstream(failed, {**state, "client_child_watchers": 1}, 56.481, [56.213]) is failed
    assert children_watch_upstream(failed, {**state, "children_watch": {"established": False, "stopped": False}}, 39.255, [39.252]) is failed
    passed = Check("ChildrenWatch ends on the final children", True, "")
    assert children_watch_upstream(passed, state, 39.255, [39.252]) is passed


class _ZxidMember(_Member):
    """A member whose ``srvr`` reports a zxid: the leader's fixed, a follower's growing per ask."""

    def __init__(self, server_id: int, mode: str, zxid: int, step: int = 0) -> None:
        super().__init__(server_id, mode)
        self.zxid, self.step, self.asked = zxid, step, 0

    def four_letter(self, word: str, timeout: float = 5.0) -> str:
        assert word == "srvr"
        self.asked += 1
        self.zxid += self.step
        return f"Zookeeper version: 3.8.0\nZxid: {self.zxid:#x}\nMode: {self._mode}\n"


def test_a_member_back_from_a_fault_is_repaired_only_once_it_has_the_leader_s_zxid(monkeypatch) -> None:
    # 2026-12-04b isolated 503, shared 506: a member restarted, synced, and the next fault
    # killed the leader at once; ZooKeeper 3.8.0 then lost acknowledged creates (upstream).
    import eventlet

    from chaos import _faults

    monkeypatch.setattr(_faults, "_SYNC_SETTLE", 0.0)
    leader, back = _ZxidMember(3, "leader", 0x200000010), _ZxidMember(1, "follower", 0x200000000, step=4)
    injector = _faults.Injector(
        type("Ensemble", (), {"members": [back, _Member(2, "follower"), leader]})(), None, _history(),
        run_blocking=lambda f, *a: f(*a), spawn_green=eventlet.spawn, green_sleep=eventlet.sleep,
        hog_sleep=lambda s: None,
    )
    monkeypatch.setattr(_faults.time, "sleep", lambda s: None)
    assert injector._caught_up(back) is not None
    assert back.zxid >= leader.zxid and back.asked == 4, (hex(back.zxid), back.asked)
