"""The fault schedule of a run: a pure function of ``(seed, seconds, members)``.

Rules
1. The same arguments give the same schedule (same kinds, times, targets,
   durations), so a seed replays; what a target resolves to at run time (which
   member leads) may differ.
2. Every fault is repaired by the injector (a killed member restarts, a paused
   one resumes, a stopped client starts) within ``duration`` of its start.
3. No fault is scheduled in the last ``QUIET_TAIL`` seconds: the run ends on a
   healed system, so the end checks see a settled state.
"""

from __future__ import annotations

import dataclasses
import random

#: Session timeout the chaos client asks for; pauses and hogs are drawn around it.
SESSION_TIMEOUT = 4.0
FIRST_FAULT_AT = 3.0
QUIET_TAIL = 6.0
GAP = (2.5, 6.0)  # seconds between fault starts
#: What the schedule budgets for an expire fault: the session timeout, the servers'
#: expiry tick and kazoo's reconnect (the fault itself holds until the session expired).
EXPIRE_BUDGET = round(1.5 * SESSION_TIMEOUT, 2)

SINGLE_KINDS = (
    "kill",  # SIGKILL a member, restart it after `duration` with its data and ports
    "pause_short",  # SIGSTOP a member for less than the session timeout
    "pause_long",  # SIGSTOP a member for longer than the session timeout
    "drop",  # shut down the client's socket
    "expire",  # cut the client off (its hosts refused, its connections shut) until the servers expire its session
    "restart_client",  # client.stop(), then client.start() after `duration`
    "hog",  # a green thread of the app's hub blocks it for longer than the session timeout
)
KINDS = SINGLE_KINDS + ("double",)
_WEIGHTS = {
    "kill": 3,
    "pause_short": 2,
    "pause_long": 2,
    "drop": 2,
    "expire": 2,
    "restart_client": 2,
    "hog": 2,
    "double": 2,
}
TARGETS = ("leader", "follower", "connected")  # which member a member fault picks


@dataclasses.dataclass(frozen=True)
class Fault:
    at: float  # seconds after the workload starts
    kind: str
    target: str  # member faults: one of TARGETS; else ""
    duration: float  # seconds until repair (0 for instant faults)

    def describe(self) -> str:
        target = f" {self.target}" if self.target else ""
        return f"t={self.at:5.1f}s {self.kind}{target} for {self.duration:.1f}s"


def _single(rng: random.Random, at: float, kind: str) -> Fault:
    if kind == "kill":
        return Fault(at, kind, rng.choice(TARGETS), round(rng.uniform(0.5, 5.0), 2))
    if kind == "pause_short":
        return Fault(at, kind, rng.choice(TARGETS), round(rng.uniform(0.2, 0.7) * SESSION_TIMEOUT, 2))
    if kind == "pause_long":
        return Fault(at, kind, rng.choice(TARGETS), round(rng.uniform(1.2, 1.8) * SESSION_TIMEOUT, 2))
    if kind == "restart_client":
        return Fault(at, kind, "", round(rng.uniform(0.1, 2.0), 2))
    if kind == "hog":
        return Fault(at, kind, "", round(rng.uniform(1.2, 1.6) * SESSION_TIMEOUT, 2))
    if kind == "expire":  # no draw: the hold lasts until the servers expired the session
        return Fault(at, kind, "", EXPIRE_BUDGET)
    return Fault(at, kind, "", 0.0)  # drop


def make_schedule(seed: int, seconds: float) -> list[list[Fault]]:
    """A list of fault groups; a group's faults start together ("double": two at once)."""
    rng = random.Random(seed)
    kinds, weights = zip(*_WEIGHTS.items())
    groups: list[list[Fault]] = []
    at = FIRST_FAULT_AT
    while at < seconds - QUIET_TAIL:
        kind = rng.choices(kinds, weights)[0]
        if kind == "double":
            first, second = rng.sample(SINGLE_KINDS, 2)
            group = [_single(rng, at, first), _single(rng, at, second)]
        else:
            group = [_single(rng, at, kind)]
        groups.append(group)
        longest = max(fault.duration for fault in group)
        at = round(at + longest + rng.uniform(*GAP), 2)
    return groups
