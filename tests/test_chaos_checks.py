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
        hog_sleep=lambda s: None, make_handler=lambda: None,
    )
    picks = [eventlet.spawn(injector._pick, "leader") for _ in range(2)]
    chosen = [p.wait() for p in picks]
    assert chosen[0] is members[2] and chosen[1] is not members[2], [m.server_id for m in chosen]
