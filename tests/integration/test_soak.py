"""Lifecycle soak: many handler start/stop and client connect/close cycles leave the
process with exactly the fds, native threads and live green threads it had before
(measured after one warm-up cycle, which creates what lives for the whole process, such
as the test hub's bridge). Counts are printed (run with ``-s``)."""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Callable

import eventlet
import greenlet
import pytest

from eventlet_handler import EventletHandler
from eventlet_handler.testing.zookeeper import ZooKeeperServer
from support import native_threading as _threading, HandlerInBody, connected_client


HANDLER_CYCLES = 1000
CLIENT_CYCLES = 200
SETTLE = 5.0


def census() -> dict[str, int]:
    gc.collect()
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "native threads": len(_threading.enumerate()),
        "threading.enumerate": len(threading.enumerate()),
        "os threads": len(os.listdir("/proc/self/task")),
        "live greenlets": sum(
            1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and not obj.dead
        ),
    }


def settled_census(baseline: dict[str, int]) -> dict[str, int]:
    """The census once it matches ``baseline``, or the last one after ``SETTLE`` seconds
    (hub threads and green threads that are exiting get the time to exit)."""
    deadline = time.monotonic() + SETTLE
    while True:
        now = census()
        if now == baseline or time.monotonic() >= deadline:
            return now
        eventlet.sleep(0.05)


def soak(label: str, cycles: int, cycle: Callable[[], None]) -> None:
    cycle()  # warm-up
    before = census()
    began = time.monotonic()
    for _ in range(cycles):
        cycle()
    elapsed = time.monotonic() - began
    after = settled_census(before)
    print(f"\n{label}: {cycles} cycles in {elapsed:.1f} s; before {before}; after {after}")
    assert after == before, f"{label}: the process changed: before {before}, after {after}"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("handler_mode", ["shared", "isolated"])
def test_soak_handler_start_stop_cycles_leave_nothing(handler_mode: str) -> None:
    def cycle() -> None:
        handler = EventletHandler(handler_mode)
        handler.start()
        done = handler.event_object()
        handler.spawn(done.set)  # the handler really runs work each cycle
        assert done.wait(10)
        handler.stop(timeout=10)

    soak(f"handler start/stop ({handler_mode})", HANDLER_CYCLES, cycle)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("handler_mode", ["shared", "isolated"])
def test_soak_client_connect_close_cycles_leave_nothing(
    zookeeper_server: ZooKeeperServer, handler_mode: str
) -> None:
    def cycle() -> None:
        with HandlerInBody(handler_mode) as handler, connected_client(zookeeper_server.hosts, handler) as client:
            assert client.exists("/") is not None

    soak(f"client connect/close ({handler_mode})", CLIENT_CYCLES, cycle)
