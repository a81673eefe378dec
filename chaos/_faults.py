"""Injecting the schedule's faults, and repairing them.

Rules
1. Faults touch only what this run started: members of its own ensemble (by
   PID, through the harness), its own client's socket and session.
2. Every fault is repaired before its group is over (a killed member started
   again, a paused one resumed, a stopped client started); a group ends before
   the next one starts, so groups never overlap and a replay sees the same order.
3. A member fault picks only a member that is running and not paused; if none
   is left (another fault of the group took it), the fault is recorded as skipped.
4. Blocking work (process control, a native-thread caller's stop/start) goes
   through ``run_blocking`` so it never stalls the app's hub; only the hog
   blocks the hub, on purpose.
5. A member back from a kill or a pause is repaired once it has the leader's zxid
   and a second more: a follower that has just synced still logs what it got
   asynchronously, and ZooKeeper 3.8.0 loses acknowledged writes if the leader dies
   in that window (upstream ZOOKEEPER-4646/4785: seen as isolated seed 503 and shared
   seed 506 of 2026-12-04b, where a leader kill came as the next fault, at once).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from ._history import History
from ._schedule import SESSION_TIMEOUT, Fault

_START_TIMEOUT = 60.0
_CATCH_UP_BOUND = 20.0  # seconds a member back from a fault may take to reach the leader's zxid (Rule 5)
_SYNC_SETTLE = 1.0  # seconds more, for its asynchronous logging of what the sync brought (Rule 5)
_EXPIRE_BOUND = 30.0  # seconds an expire fault may hold the client off before it reports an error


class Injector:
    """Runs fault groups on green threads of the app's hub."""

    def __init__(
        self,
        ensemble: Any,
        client: Any,
        history: History,
        *,
        run_blocking: Callable[..., Any],
        spawn_green: Callable[..., Any],
        green_sleep: Callable[[float], None],
        hog_sleep: Callable[[float], None],
        wait_for_resume_before_stop: bool = False,
    ) -> None:
        self.ensemble, self.client, self.history = ensemble, client, history
        self._blocking, self._spawn, self._sleep = run_blocking, spawn_green, green_sleep
        self._hog_sleep = hog_sleep
        self.wait_for_resume_before_stop = wait_for_resume_before_stop
        self._busy: set[Any] = set()  # members a fault of the running group holds
        self._injectors: dict[str, Callable[[Fault], dict[str, Any]]] = {
            "kill": self._kill,
            "pause_short": self._pause,
            "pause_long": self._pause,
            "drop": self._drop,
            "expire": self._expire,
            "restart_client": self._restart,
            "hog": self._hog,
        }

    def run_group(self, group: list[Fault]) -> None:
        """Inject every fault of ``group`` at once; return when all are repaired."""
        threads = [self._spawn(self._run_one, fault) for fault in group]
        for thread in threads:
            thread.wait()

    def _run_one(self, fault: Fault) -> None:
        started = self.history.event("fault", kind=fault.kind, target=fault.target, duration=fault.duration)
        try:
            detail = self._injectors[fault.kind](fault)
        except Exception as exc:  # a fault that cannot be injected is reported, not fatal
            detail = {"error": f"{type(exc).__name__}: {exc}"}
        started.detail.update(detail or {})
        self.history.event("repaired", kind=fault.kind, of=id(started))
        started.detail["repaired_at"] = time.monotonic()

    # -- member faults -----------------------------------------------------------

    def _pick(self, target: str) -> Any:
        # Rule 3. Asking a member its mode or the client its peer is network I/O, which
        # yields to the group's other faults: ask first, then choose and claim with no
        # yield in between, so two faults of one group never take the same member.
        wanted: Any = None
        if target in ("leader", "follower"):
            modes = {m: m.mode() for m in self._free_members()}
            wanted = lambda m: modes.get(m) == target  # noqa: E731
        elif target == "connected":
            port = self._peer_port()
            wanted = lambda m: m.port == port  # noqa: E731
        candidates = self._free_members()
        if not candidates:
            return None
        chosen = next((m for m in candidates if wanted(m)), None) if wanted else None
        chosen = chosen or candidates[0]
        self._busy.add(chosen)
        return chosen

    def _free_members(self) -> list[Any]:
        return [m for m in self.ensemble.members if m.running and not m.paused and m not in self._busy]

    def _peer_port(self) -> int | None:
        sock = getattr(self.client._connection, "_socket", None)
        return _peer_port_of(sock) if sock is not None else None

    def _on_member(self, fault: Fault, act: Callable[[Any], None]) -> dict[str, Any]:
        """Pick the fault's member, hold it for the group while ``act(member)`` runs."""
        member = self._pick(fault.target)
        if member is None:
            return {"skipped": f"no running member left for {fault.kind}"}
        try:
            was = member.mode()
            act(member)
        finally:
            self._busy.discard(member)
        return {"member": member.server_id, "was": was}

    def _kill(self, fault: Fault) -> dict[str, Any]:
        caught_up: list[float | None] = []

        def act(member: Any) -> None:
            self._blocking(member.kill)
            self._sleep(fault.duration)
            self._blocking(member.start, _START_TIMEOUT)
            caught_up.append(self._blocking(self._caught_up, member))

        return {**self._on_member(fault, act), **({"caught_up_s": caught_up[0]} if caught_up else {})}

    def _pause(self, fault: Fault) -> dict[str, Any]:
        caught_up: list[float | None] = []

        def act(member: Any) -> None:
            member.pause()
            try:
                self._sleep(fault.duration)
            finally:
                member.resume()
            caught_up.append(self._blocking(self._caught_up, member))

        return {**self._on_member(fault, act), **({"caught_up_s": caught_up[0]} if caught_up else {})}

    def _caught_up(self, member: Any) -> float | None:
        """Rule 5: wait (bounded) until ``member``, back from a kill or a pause, has the
        leader's zxid (as read once it serves), then ``_SYNC_SETTLE``; the seconds it
        took, or None if it did not within ``_CATCH_UP_BOUND`` (not an error: a member
        another fault holds may keep the quorum from serving)."""
        began = time.monotonic()
        target: int | None = None
        result: float | None = None
        while time.monotonic() - began < _CATCH_UP_BOUND:
            try:
                if target is None:
                    target = self._leader_zxid(member)
                if target is not None and _zxid(member) >= target:
                    result = round(time.monotonic() - began, 3)
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)  # a blocking helper (Rule 4): green when patched, in tpool when not
        time.sleep(_SYNC_SETTLE)
        return result

    def _leader_zxid(self, member: Any) -> int | None:
        for other in self.ensemble.members:
            if other.running and not other.paused and other.mode() == "leader":
                return _zxid(other)
        return None

    # -- client faults -----------------------------------------------------------

    def _drop(self, fault: Fault) -> dict[str, Any]:
        sock = getattr(self.client._connection, "_socket", None)
        if sock is None:
            return {"skipped": "client not connected"}
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            return {"skipped": f"socket already gone ({exc})"}
        return {}

    def _expire(self, fault: Fault) -> dict[str, Any]:
        """Cut the client off from the ensemble until the servers expire its session on their own.

        No second client takes the session over: a takeover races the client's in-flight
        requests, and kazoo (upstream) does not survive what the servers then answer
        (tests/integration/test_chaos_regressions.py, bugs of isolated seeds 419 and 421).
        Instead (Rule 1: only this run's client and a socket of its own): the client's
        hosts become a port of ours that refuses connections, its socket is shut down, and
        every connection it still makes to a member (the rest of kazoo's current round of
        hosts) is shut down too. Once no member lists the session any more, the hosts are
        restored; the client's next connect is told its session expired, and it starts a
        new one. ``duration`` is what the schedule budgets; the hold lasts until expiry.
        """
        client_id = self.client.client_id
        if client_id is None or not self.client.connected:
            return {"skipped": "client has no live session"}
        session = client_id[0]
        refuser = socket.socket()  # bound, never listening: a connect to it is refused at once
        refuser.bind(("127.0.0.1", 0))
        member_ports = {m.port for m in self.ensemble.members}
        began = last_contact = time.monotonic()
        drops, expired, next_probe = 0, False, 0.0
        last: Any = None
        try:
            self.client.set_hosts(f"127.0.0.1:{refuser.getsockname()[1]}")
            while time.monotonic() - began < _EXPIRE_BOUND:
                sock = getattr(self.client._connection, "_socket", None)
                if sock is not None and sock is not last and _peer_port_of(sock) in member_ports:
                    last = sock
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    drops += 1
                    last_contact = time.monotonic()
                now = time.monotonic()
                if now - last_contact >= SESSION_TIMEOUT and now >= next_probe:
                    if self._blocking(self._session_gone, session):
                        expired = True
                        break
                    next_probe = time.monotonic() + 0.5
                self._sleep(0.02)
        finally:
            self.client.set_hosts(self.ensemble.hosts)
            refuser.close()
        held = time.monotonic() - began
        detail: dict[str, Any] = {"session": session, "held_s": round(held, 3), "drops": drops}
        if not expired:
            detail["error"] = (
                f"session {session:#x} still listed by a member after {held:.0f}s cut off "
                "(is a member stuck? see the members' zookeeper.log)"
            )
            return detail
        # Repaired once the client runs on a new session (bounded: a stop() of the same group may hold it).
        deadline = time.monotonic() + _START_TIMEOUT / 2
        while time.monotonic() < deadline and not (
            self.client.connected and self.client.client_id and self.client.client_id[0] != session
        ):
            self._sleep(0.05)
        now_id = self.client.client_id
        detail["new_session"] = now_id[0] if self.client.connected and now_id and now_id[0] != session else None
        detail["back_after_s"] = round(time.monotonic() - began - held, 3)
        return detail

    def _session_gone(self, session: int) -> bool:
        """True when at least one member answers and none lists ``session`` (four-letter ``dump``)."""
        wanted, answered = f"{session:#x}", 0
        for member in self.ensemble.members:
            if not member.running or member.paused:
                continue
            try:
                dump = member.four_letter("dump", 2.0)
            except OSError:
                continue
            answered += 1
            if wanted in dump.split():
                return False
        return answered > 0

    def _restart(self, fault: Fault) -> dict[str, Any]:
        waited = 0.0
        if self.wait_for_resume_before_stop:
            # Workaround for two fixed bugs (tests/integration/test_chaos_regressions.py:
            # stop() while a member was paused abandoned kazoo's connection loop in
            # isolated mode and deadlocked it in shared mode). CHAOS_STOP_WHILE_PAUSED=0
            # brings it back: runs then stop the client only once no member is paused.
            began = time.monotonic()
            while any(m.paused for m in self.ensemble.members):
                self._sleep(0.05)
            waited = time.monotonic() - began
        paused = [m.server_id for m in self.ensemble.members if m.paused]
        self.history.event("stop_called", wall=time.time(), paused=paused)
        self._blocking(self.client.stop)
        self.history.event("stop_returned", wall=time.time())
        self._sleep(fault.duration)
        self.history.event("start_called", wall=time.time())
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                self._blocking(self.client.start, 20)
                break
            except Exception:
                if time.monotonic() >= deadline:
                    raise
                self._blocking(self.client.stop)
        self.history.event("start_returned", wall=time.time())
        return {"paused_at_stop": paused, "waited_for_resume_s": round(waited, 3)}

    def _hog(self, fault: Fault) -> dict[str, Any]:
        hog = self._spawn(self._hog_sleep, fault.duration)  # blocks the whole hub, on purpose
        hog.wait()
        return {}


def _peer_port_of(sock: Any) -> int | None:
    """The port ``sock`` is connected to; None when it is not (closed, or not yet connected)."""
    try:
        return sock.getpeername()[1]
    except OSError:
        return None


def _zxid(member: Any) -> int:
    """The member's last zxid, from ``srvr`` (``Zxid: 0x...``); OSError if it does not serve."""
    for line in member.four_letter("srvr", 2.0).splitlines():
        if line.startswith("Zxid:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise OSError(f"{member!r} does not serve (no Zxid in srvr)")
