"""The end checks of a run: the history against the servers' final state.

Each check returns a :class:`Check`: ``passed`` True or False, or None when it
does not apply to this run (the detail says why, and how to enable it).
Pure functions of their inputs; the runner reads the servers.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from typing import Any

from ._history import Call, Event, History
from ._workload import CALL_BOUND, Hold

WRITE_OPS = ("seq_create", "cas_set", "counter_set", "tree_write", "tree_delete")
CREATE_OPS = ("seq_create", "tree_write")  # the ops whose kazoo call may be a Create
SET_OPS = ("cas_set", "counter_set")
_CTIME_SLACK = 0.05  # seconds: ZooKeeper's ctime is in ms


@dataclasses.dataclass
class Check:
    name: str
    passed: bool | None
    detail: str


@dataclasses.dataclass
class ServerState:
    """What the servers hold at the end (read by a fresh client after ``sync``)."""

    seq: dict[str, tuple[bytes, float]]  # child name -> (data, ctime in s)
    keys: dict[str, tuple[bytes, int, float]]  # hot keys and counter -> (data, version, mtime in s)
    tree: dict[str, bytes]  # path -> data, for every node under the tree root (root excluded)


def _fail_or_pass(name: str, problems: list[str], ok_detail: str) -> Check:
    if problems:
        return Check(name, False, f"{len(problems)} problems: " + "; ".join(problems[:8]))
    return Check(name, True, ok_detail)


def acknowledged_writes(calls: list[Call], state: ServerState, seq_root: str) -> Check:
    """Every acknowledged create is present with its value; the acknowledged versions of
    each key are distinct, none beyond the final one, the final one holds its value, and
    they follow real time (a write acknowledged before another began has the lower version)."""
    problems: list[str] = []
    creates = [c for c in calls if c.op == "seq_create" and c.acked]
    for call in creates:
        name = call.detail["path"].rsplit("/", 1)[1]
        held = state.seq.get(name)
        if held is None or held[0] != call.detail["token"]:
            problems.append(f"acknowledged {call.detail['path']} ({call.detail['token']!r}) holds {held!r}")
    sets = sorted((c for c in calls if c.op in SET_OPS and c.acked), key=lambda c: c.detail["key"])
    for key, group in itertools.groupby(sets, key=lambda c: c.detail["key"]):
        writes = sorted(group, key=lambda c: c.detail["version"])
        data, final_version, _mtime = state.keys[key]
        counts = collections.Counter(c.detail["version"] for c in writes)
        problems += [f"{key}: {n} acknowledged writes claim version {v}" for v, n in counts.items() if n > 1]
        problems += [
            f"{key}: acknowledged version {c.detail['version']} beyond the final {final_version}"
            for c in writes if c.detail["version"] > final_version
        ]
        last = [c for c in writes if c.detail["version"] == final_version]
        if last and last[0].detail["token"] != data:
            problems.append(f"{key}: final version {final_version} holds {data!r}, acknowledged {last[0].detail['token']!r}")
        for earlier, later in itertools.combinations(sorted(writes, key=lambda c: c.start), 2):
            assert earlier.end is not None
            if earlier.end < later.start and earlier.detail["version"] > later.detail["version"]:
                problems.append(f"{key}: version {earlier.detail['version']} acknowledged before {later.detail['version']} began")
    return _fail_or_pass(
        "acknowledged writes present, versions in one order", problems,
        f"{len(creates)} creates present; {len(sets)} conditional sets on {len(state.keys)} keys consistent",
    )


def uncertain_writes(calls: list[Call], state: ServerState) -> Check:
    """A create that failed (ConnectionLoss...) is present at most once, never twice."""
    tokens = collections.Counter(data for data, _ctime in state.seq.values())
    problems = [f"{token!r} applied {n} times" for token, n in tokens.items() if n > 1]
    failed = [c for c in calls if c.op == "seq_create" and not c.acked]
    present = sum(1 for c in failed if tokens[c.detail["token"]])
    outcomes = collections.Counter(c.outcome for c in failed)
    return _fail_or_pass(
        "failed writes applied at most once", problems,
        f"{len(failed)} failed creates ({dict(outcomes)}): {present} present, {len(failed) - present} absent",
    )


def nothing_applied_after_stop(calls: list[Call], events: list[Event], state: ServerState) -> Check:
    """No write that began before a ``client.stop()`` is applied after that stop returned.

    Stops while a member was paused are left out: the paused server may apply, on
    resume, what it had buffered of the old session, which is ZooKeeper's right.
    """
    stops = [e for e in events if e.what == "stop_called"]
    returns = [e for e in events if e.what == "stop_returned"]
    problems: list[str] = []
    checked = 0
    by_token = {data: ctime for data, ctime in state.seq.values()}
    finals = {data: (key, mtime) for key, (data, _v, mtime) in state.keys.items()}
    for stop, returned in zip(stops, returns):
        if stop.detail["paused"]:
            continue
        checked += 1
        limit = returned.detail["wall"] + _CTIME_SLACK
        for call in calls:
            if call.start >= stop.at or call.op not in WRITE_OPS or "token" not in call.detail:
                continue
            token = call.detail["token"]
            when = by_token.get(token, finals.get(token, (None, None))[1])
            if when is not None and when > limit:
                problems.append(f"{call.op} {token!r} begun before a stop, applied {when - limit + _CTIME_SLACK:.3f}s after it returned")
    return _fail_or_pass("nothing queued before stop() applied after it", problems, f"{checked} stops checked ({len(stops) - checked} with a member paused)")


def calls_bounded(history: History) -> list[Check]:
    """Every call returned (a value or an exception) within ``CALL_BOUND``.

    Except one upstream failure, told apart by what the servers sent: ZooKeeper may
    answer a Create with success and a null path (seen after a session takeover; the
    runner records each such reply as a ``null_create`` event), and kazoo's
    ``create()`` then never completes, whatever the handler (kazoo's threading handler
    too). The caller's bounded wait ends it; such calls are listed in a check of their
    own that reports, without failing the run. Any other overrun fails.
    """
    null_tokens = {e.detail.get("token") for e in history.events_of("null_create")}

    def upstream(call: Call) -> bool:
        return call.op in CREATE_OPS and call.detail.get("token") in null_tokens

    overran = [c for c in history.calls if c.end is None or (c.duration or 0.0) > CALL_BOUND]
    problems = [
        f"{c.op} by {c.worker} ({c.caller}) " + ("never returned" if c.end is None else f"took {c.duration:.1f}s")
        for c in overran if not upstream(c)
    ]
    longest = max((c.duration for c in history.calls if c.duration is not None), default=0.0)
    checks = [_fail_or_pass(
        f"every call returned within {CALL_BOUND:.0f}s", problems,
        f"{len(history.calls)} calls, longest {longest:.2f}s",
    )]
    known = [c for c in history.calls if upstream(c)]
    if known:
        checks.append(Check(
            "known upstream: ZooKeeper answered a Create with a null path", None,
            f"{len(known)} creates ended by their {CALL_BOUND:.0f}s bound, not by kazoo "
            f"({', '.join(f'{c.worker} ({c.caller})' for c in known[:8])}); "
            "tests/integration/test_chaos_regressions.py (strict xfail, upstream)",
        ))
    return checks


def session_ends(events: list[Event]) -> dict[int, float]:
    """When each session was seen to end: its first LOST, or the next session's CONNECTED."""
    ends: dict[int, float] = {}
    current: int | None = None
    for event in events:
        if event.what == "connected":
            session = event.detail.get("session")
            if current is not None and session != current:
                ends.setdefault(current, event.at)
            current = session
        elif event.what == "lost" and current is not None:
            ends.setdefault(current, event.at)
    return ends


def lock_ledger(ledger: list[Hold], events: list[Event], end_of_run: float, calls: list[Call]) -> Check:
    """No two holders of the Lock whose sessions were both live at the same time."""
    ends = session_ends(events)
    spans = []
    for hold in ledger:
        until = hold.released if hold.released is not None else end_of_run
        if hold.session in ends:
            until = min(until, ends[hold.session])
        spans.append((hold.acquired, until, hold))
    spans.sort(key=lambda span: span[0])
    problems = []
    for (a_start, a_end, a), (b_start, b_end, b) in itertools.combinations(spans, 2):
        if b_start < a_end and a_start < b_end:
            problems.append(f"{a.worker} and {b.worker} held the lock together for {min(a_end, b_end) - b_start:.3f}s")
    lost_updates = sum(1 for c in calls if c.op == "counter_set" and c.outcome == "BadVersionError")
    if lost_updates:
        problems.append(f"{lost_updates} counter writes under the lock found another writer's version")
    return _fail_or_pass("one live holder of the Lock at a time", problems, f"{len(ledger)} holds, none overlapping")


def watches_final(workload: Any, state: ServerState, *, tree_cache_checked: bool, why_not: str) -> list[Check]:
    """DataWatch, ChildrenWatch and the TreeCache end on the servers' final state."""
    hot0 = workload.paths.hot[0]
    data, version, _mtime = state.keys[hot0]
    seen = workload.data_seen[-1] if workload.data_seen else None
    checks = [
        Check("DataWatch ends on the final value", seen == (data, version), f"saw {seen!r}, server has {(data, version)!r}"),
    ]
    children = sorted(state.seq)
    last = workload.children_seen[-1] if workload.children_seen else None
    checks.append(Check(
        "ChildrenWatch ends on the final children", last == children,
        f"{len(last or [])} seen, {len(children)} on the server",
    ))
    if not tree_cache_checked:
        checks.append(Check("TreeCache ends on the final tree", None, why_not))
    else:
        cached = tree_cache_contents(workload.tree_cache, workload.paths.tree)
        diff = sorted(set(cached.items()) ^ set(state.tree.items()))
        checks.append(Check(
            "TreeCache ends on the final tree", not diff,
            f"{len(state.tree)} nodes" + (f"; differs at {diff[:4]!r}" if diff else ""),
        ))
    return checks


def tree_cache_contents(cache: Any, root: str) -> dict[str, bytes]:
    """Every node the TreeCache holds under ``root`` (root excluded), path -> data."""
    found: dict[str, bytes] = {}
    stack = [root]
    while stack:
        path = stack.pop()
        for child in cache.get_children(path) or ():
            child_path = f"{path}/{child}"
            node = cache.get_data(child_path)
            if node is not None:
                found[child_path] = node.data
            stack.append(child_path)
    return found


CHILDREN_WATCH_UPSTREAM = "known upstream: ChildrenWatch silent after a fetch that outlived its connection"


def children_watch_upstream(check: Check, watch_state: dict[str, Any], last_fired: float | None, dropped_at: list[float]) -> Check:
    """A failed "ChildrenWatch ends on the final children" that is kazoo's own bug, told
    apart mechanically (tests/integration/test_chaos_regressions.py, strict xfail): the
    recipe's last fetch ran within a second after its connection was lost (SUSPENDED
    or LOST: kazoo then clears its watch table, and the recipe its ``_watch_established``,
    but a fetch answered just before sets it again, so the recipe never fetches on the
    next CONNECTED), the recipe says established and is not stopped, and the client's
    table holds no watcher for the path. Such a check reports (passed None) instead of
    failing; any other ChildrenWatch failure still fails. (The servers cannot be asked:
    ZooKeeper 3.8's ``wchp`` lists data watches only.)"""
    if check.passed is not False:
        return check
    recipe = watch_state.get("children_watch", {})
    silent = (
        recipe.get("established") is True and recipe.get("stopped") is False
        and watch_state.get("client_child_watchers") == 0
    )
    near = last_fired is not None and any(0.0 <= last_fired - at <= 1.0 for at in dropped_at)
    if not (silent and near):
        return check
    return Check(
        CHILDREN_WATCH_UPSTREAM, None,
        f"{check.detail}; its last fetch ran within 1 s after the connection was lost and the client holds "
        "no watch for the path, while the recipe says 'established' (kazoo, upstream; "
        "test_ChildrenWatch_whose_fetch_outlives_the_session_follows_the_next_one, strict xfail)",
    )
