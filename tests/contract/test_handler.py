"""EventletHandler contract: dispatch, spawn, lifecycle; every hub x caller x mode."""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, List

import eventlet
import greenlet
import pytest
from kazoo.handlers.eventlet import TimeoutError as KazooEventletTimeoutError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from support import (
    Caller,
    HandlerInBody,
    callback,
    home_retired,
    home_thread,
    home_thread_ident,
    native_threading as _threading,
    native_time,
    run_python,
    runs_a_callback,
    until,
)
from eventlet_handler import EventletHandler
from eventlet_handler._hubs import current_hub


def test_EventletHandler_dispatch_callback_runs_in_order_on_home_hub(
    hub: str, caller: Caller, started: Any
) -> None:
    with started() as handler:
        seen: List[Any] = []
        last = handler.event_object()

        def record(i: int) -> None:
            seen.append((i, _threading.get_ident()))
            if i == 199:
                last.set()

        def dispatch_all() -> None:
            for i in range(200):
                handler.dispatch_callback(callback(record, i))

        caller.run(dispatch_all).join()
        assert last.wait(5)
        # The worker counts a callback once it returned, after the last one set `last`;
        # before home_thread_ident(), which runs one more.
        until(lambda: handler.stats()["queues"]["watch"]["run"] == 200, 5, "200 runs in stats()")
        home = home_thread_ident(handler)
        assert seen == [(i, home) for i in range(200)]


def test_EventletHandler_callback_exception_is_logged_and_worker_goes_on(
    hub: str, caller: Caller, started: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="eventlet_handler"), started() as handler:
        after = handler.event_object()

        def fail() -> None:
            raise ValueError("callback broke")

        def dispatch() -> None:
            handler.dispatch_callback(callback(fail))
            handler.dispatch_callback(callback(after.set))

        caller.run(dispatch).join()
        assert after.wait(5)
        assert handler.stats()["queues"]["watch"]["failed"] == 1
    failures = [r for r in caplog.records if "raised; the worker goes on" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and "callback broke" in str(failures[0].exc_info[1])


def test_EventletHandler_stop_from_caller_runs_queued_callbacks_first(
    hub: str, caller: Caller, mode: str
) -> None:
    handler = EventletHandler(mode)
    handler.start()
    ran: List[int] = []
    for i in range(50):
        handler.dispatch_callback(callback(lambda i=i: (eventlet.sleep(0), ran.append(i))))
    caller.run(handler.stop).join(15)
    assert ran == list(range(50))
    assert not handler.running and handler.stats()["state"] == "stopped"


def test_EventletHandler_stop_from_inside_a_callback_returns(hub: str, started: Any, mode: str) -> None:
    handler = EventletHandler(mode)
    handler.start()
    returned = handler.event_object()
    later: List[str] = []

    def stopper() -> None:
        handler.stop()
        returned.set()

    handler.dispatch_callback(callback(stopper))
    handler.dispatch_callback(callback(later.append, "queued before stop"))
    assert returned.wait(5), "stop() inside a callback deadlocked"
    handler.stop(timeout=5)  # waits for the stop the callback requested
    assert later == ["queued before stop"]
    assert handler.stats()["state"] == "stopped"


def test_EventletHandler_concurrent_stops_all_return(hub: str, mode: str) -> None:
    handler = EventletHandler(mode)
    handler.start()
    handler.dispatch_callback(callback(eventlet.sleep, 0.05))
    callers = [Caller(kind) for kind in ("other_green", "native", "native", "other_green")]
    dones = [c.run(handler.stop) for c in callers]
    handler.stop(timeout=10)
    for done in dones:
        done.join(10)
    assert handler.stats()["state"] == "stopped"


def test_EventletHandler_start_stop_idempotent_and_restartable(hub: str, caller: Caller, mode: str) -> None:
    handler = EventletHandler(mode)
    if caller.kind == "native" and mode == "shared":
        # Its green threads would live in a hub nobody runs: refused, clearly.
        with pytest.raises(RuntimeError, match="native thread with no eventlet hub"):
            caller.run(handler.start).join()
        assert not handler.running
        return
    for _ in range(3):
        caller.run(handler.start).join()
        caller.run(handler.start).join()
        assert handler.running
        assert runs_a_callback(handler)
        caller.run(handler.stop).join(10)
        caller.run(handler.stop).join(10)
        assert not handler.running


def test_EventletHandler_spawn_runs_on_home_hub_and_joins_from_caller(
    hub: str, caller: Caller, started: Any
) -> None:
    with started() as handler:
        where: List[int] = []
        tasks: List[Any] = []
        caller.run(lambda: tasks.append(handler.spawn(lambda: (eventlet.sleep(0.01), where.append(_threading.get_ident()))))).join()
        joined: List[bool] = []
        caller.run(lambda: joined.append(tasks[0].join(5))).join()
        assert joined == [True] and not tasks[0].is_alive()
        assert where == [home_thread_ident(handler)]


def test_EventletHandler_spawned_exception_is_kept_and_logged(
    hub: str, started: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="eventlet_handler"), started() as handler:
        task = handler.spawn(lambda: 1 / 0)
        assert task.join(5)
        assert isinstance(task.exception, ZeroDivisionError)
    assert any("spawned" in r.getMessage() and r.exc_info for r in caplog.records)


def test_EventletHandler_kazoo_attributes() -> None:
    handler = EventletHandler("shared")
    # kazoo accepts dict retry options only if sleep_func == KazooRetry's default sleep
    # (this process is unpatched: the stdlib time.sleep).
    assert handler.sleep_func == KazooRetry().sleep_func
    assert not handler.sleep_func != KazooRetry().sleep_func
    assert issubclass(handler.timeout_exception, Exception)
    # code written against kazoo's threading or eventlet handler catches ours too
    assert issubclass(handler.timeout_exception, KazooTimeoutError)
    assert issubclass(handler.timeout_exception, KazooEventletTimeoutError)
    with pytest.raises(KazooTimeoutError):
        handler.async_result().get(timeout=0.01)
    assert not issubclass(handler.timeout_exception, OSError)
    q = handler.queue_impl()
    with pytest.raises(handler.queue_empty):
        q.get_nowait()
    assert "shared" in repr(handler) and "stopped" in repr(handler)


def test_EventletHandler_leaves_nothing_running_after_stop(hub: str, mode: str) -> None:
    handler = EventletHandler(mode)
    handler.start()
    handler.stop()  # warm-up: creates this hub's bridge
    gc.collect()
    threads_before = len(_threading.enumerate())
    greenlets_before = _live_greenlets()
    for _ in range(20):
        handler.start()
        home = home_thread(handler)  # a callback runs there
        handler.stop()
    eventlet.sleep(0)
    gc.collect()
    assert len(_threading.enumerate()) == threads_before
    assert _live_greenlets() <= greenlets_before
    assert home_retired(handler, home), "stopped with no spawned work left, yet the home was kept"


def test_EventletHandler_start_of_a_running_handler_starts_no_second_pair_of_workers(hub: str) -> None:
    """``start()`` of a running handler returns at once: fresh workers beside the
    running ones would leave those without a ``stop()`` to end them, for good in shared
    mode, whose hub is the application's (in isolated mode the retiring hub thread's
    exit would end them)."""
    handler = EventletHandler("shared")
    handler.start()
    handler.stop(timeout=10)  # warm-up: creates this hub's bridge
    gc.collect()
    greenlets_before = _live_greenlets()
    handler.start()
    handler.start()
    handler.stop(timeout=10)
    eventlet.sleep(0)
    gc.collect()
    assert _live_greenlets() <= greenlets_before, "a worker is left running after stop()"


def _live_greenlets() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and not o.dead)


def test_EventletHandler_completion_order_follows_causality_across_threads(hub: str, mode: str) -> None:
    """A callback a native thread dispatched stays ahead of one the home hub dispatches
    because of something that native thread did afterwards (kazoo: a rawlink on a ready
    result, then a rawlink on a pending one that the connection loop then sets)."""
    with HandlerInBody(mode) as handler:
        for _ in range(100):
            order: List[str] = []
            done = handler.event_object()
            ready, pending = handler.async_result(), handler.async_result()
            ready.set(0)
            go = [False]

            def home_setter() -> None:  # spins in the home hub, outside the bridge
                while not go[0]:
                    eventlet.sleep(0)
                pending.set(1)

            handler.spawn(home_setter)

            def native() -> None:
                ready.rawlink(lambda r: order.append("A"))  # bridged: not the home hub
                pending.rawlink(lambda r: (order.append("B"), done.set()))
                go[0] = True

            Caller("native").run(native).join()
            assert done.wait(5)
            assert order == ["A", "B"]


def test_EventletHandler_spawned_task_outlives_stop_and_joins_after_restart(hub: str, mode: str) -> None:
    """kazoo's TreeCache spawns a loop that must survive client.stop()/start() (issue
    9.1): the task keeps running while stopped, in the same home thread after the
    restart, and joins; once it ended and the handler stopped, the home retires."""

    handler = EventletHandler(mode)
    handler.start()
    go = handler.event_object()
    where: List[int] = []

    def loop() -> None:
        where.append(_threading.get_ident())
        assert go.wait(10)
        where.append(_threading.get_ident())

    task = handler.spawn(loop)
    home_object = home_thread(handler)
    home = home_object.ident
    handler.stop(timeout=10)
    assert task.is_alive() and not task.join(0.05), "spawned work died with stop()"
    assert handler.stats()["tasks_running"] == 1
    handler.start()
    assert home_thread_ident(handler) == home, "the restart did not reuse the home"
    assert runs_a_callback(handler)
    go.set()
    assert task.join(5) and task.exception is None
    assert where == [home, home]
    handler.stop(timeout=10)
    assert home_retired(handler, home_object), "stopped with nothing running, yet the home was kept"


def test_EventletHandler_sleep_func_is_green_in_a_hub_and_native_without_one(hub: str) -> None:
    """What KazooRetry sleeps with between tries: a green thread's sleep lets its hub
    run; a native thread's sleeps natively and gets no hub."""
    from eventlet_handler._hubs import current_hub

    handler = EventletHandler("shared")
    ran: List[str] = []
    eventlet.spawn(ran.append, "other green thread")
    handler.sleep_func(0.01)
    assert ran == ["other green thread"], "sleep_func did not let the hub run"
    seen: List[Any] = []

    def native() -> None:
        handler.sleep_func(0.01)
        seen.append(current_hub())

    Caller("native").run(native).join(10)
    assert seen == [None], "sleep_func gave a native thread a hub"


def test_EventletHandler_restarts_in_a_new_home_once_the_old_one_retired_after_stop(
    hub: str, mode: str
) -> None:
    """Spawned work kept the home open past ``stop()``; it ended later, so the home
    retired with the handler stopped. ``start()`` then opens a new home (it cannot
    reattach a retired one), and callbacks and spawns run there."""

    handler = EventletHandler(mode)
    handler.start()
    go = handler.event_object()
    task = handler.spawn(lambda: go.wait(10))
    handler.stop(timeout=10)
    old_home = handler._home
    assert old_home is not None and not old_home.retired, "the running task should keep the home open"
    go.set()
    assert task.join(5)
    assert old_home.retired, "the home should retire once its last task ended"
    handler.start()
    try:
        assert handler._home is not old_home, "start() reattached a retired home"
        assert runs_a_callback(handler), "a callback did not run after the restart"
        assert handler.spawn(int).join(5), "a spawn did not run after the restart"
    finally:
        handler.stop(timeout=10)


def test_EventletHandler_at_interpreter_exit_releases_joiners_of_spawned_work_still_running(
    mode: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: at interpreter exit spawned work still running is released, not waited
    for: its joiners get ``HandlerStoppedError`` on the task, and one debug line per
    process names it. ``_stop_at_exit`` is the atexit hook itself."""
    from eventlet_handler import HandlerStoppedError, _home

    monkeypatch.setattr(_home, "_exit_noted", False)  # once per process: this test's turn
    handler = EventletHandler(mode)
    handler.start()
    never = handler.event_object()
    tasks = [handler.spawn(never.wait, 30) for _ in range(4)]
    with caplog.at_level(logging.DEBUG, logger="eventlet_handler"):
        handler._stop_at_exit()
    for task in tasks:
        assert task.join(5), "a joiner of work still running at exit was not released"
        assert isinstance(task.exception, HandlerStoppedError), task.exception
    noted = [r.getMessage() for r in caplog.records if "interpreter exit: releasing spawned work" in r.getMessage()]
    assert len(noted) == 1, caplog.records
    named = noted[0].count(tasks[0].name)  # the four share one name (the function's)
    assert named == 3 and noted[0].endswith(", ...)"), f"the line names at most three tasks: {noted[0]}"
    stopped = [r.getMessage() for r in caplog.records if r.getMessage().endswith(" stopped")]
    assert stopped == [], f"at exit that one line says it all, not a 'stopped' line per handler: {stopped}"
    never.set()


def test_EventletHandler_callback_dispatched_after_stop_runs_while_spawned_work_keeps_the_home(
    hub: str, caller: Caller, mode: str
) -> None:
    """Stopped, with spawned work still keeping the home open (kazoo's connection loop
    outlives ``stop()``): a callback dispatched from anywhere, the home hub included,
    still runs (handler rule 4: no callback is lost), not into the exited workers' queue:
    at once in the dispatching green thread, except in the home hub, where it runs on a
    green thread of its own (inline, one that waits on the client would wait on the
    very loop that dispatched it)."""

    handler = EventletHandler(mode)
    handler.start()
    go = handler.event_object()
    task = handler.spawn(lambda: go.wait(10))
    handler.stop(timeout=10)
    home = handler._home
    assert home is not None, "the running task should keep the home"
    ran = handler.event_object()
    ran_on: List[Any] = []

    def dispatch_here() -> None:  # in shared mode the test's own hub is the home hub
        me = greenlet.getcurrent()
        handler.dispatch_callback(callback(lambda: (ran_on.append(greenlet.getcurrent()), ran.set())))
        if current_hub() is home.hub:
            assert ran_on[:1] != [me], "a callback dispatched in the home hub ran inline there"
        else:
            assert ran_on == [me], "a callback dispatched outside the home hub did not run at once there"

    def dispatch_in_home_hub() -> None:
        handler.spawn(dispatch_here).join(5)

    caller.run(dispatch_in_home_hub if caller.kind == "other_green" else dispatch_here).join()
    assert ran.wait(5), "a callback dispatched after stop() never ran"
    go.set()
    assert task.join(5)
    handler.stop(timeout=10)


def test_EventletHandler_callback_dispatched_in_the_home_hub_after_its_last_task_retired_it_runs(
    hub: str,
) -> None:
    """Stopped with spawned work left, the handler keeps its home until a later
    ``stop()``; once that work ends the home retires and refuses new tasks. A callback
    dispatched in that hub meanwhile (shared mode: the application's hub stays) still
    runs, inline: the refusal is not the caller's error (handler rule 4)."""

    handler = EventletHandler("shared")  # the test's own hub is the home hub
    handler.start()
    go = handler.event_object()
    task = handler.spawn(lambda: go.wait(10))
    handler.stop(timeout=10)
    go.set()
    assert task.join(5)
    home = handler._home
    assert home is not None and home.retired and home.hub is current_hub(), home
    ran: List[str] = []
    handler.dispatch_callback(callback(ran.append, "ran"))
    assert ran == ["ran"]
    handler.stop(timeout=10)
    assert handler._home is None


def test_EventletHandler_stop_that_runs_out_of_time_warns_and_stays_stopping(
    hub: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = EventletHandler(mode)
    handler.start()
    gate, busy = handler.event_object(), handler.event_object()
    handler.dispatch_callback(callback(lambda: (busy.set(), gate.wait(10))))
    assert busy.wait(5)
    with caplog.at_level(logging.WARNING, logger="eventlet_handler"):
        handler.stop(timeout=0.1)
    assert handler.stats()["state"] == "stopping", "stop() gave up but the handler says otherwise"
    assert any("gives up waiting" in r.getMessage() for r in caplog.records), caplog.records
    gate.set()
    handler.stop(timeout=10)
    assert handler.stats()["state"] == "stopped"


def test_EventletHandler_home_repr_says_where_it_lives_and_its_state(hub: str, mode: str) -> None:
    handler = EventletHandler(mode)
    handler.start()
    home = handler._home
    assert home is not None
    where = home.hubthread.name if mode == "isolated" else "the starting thread's hub"
    assert f"<Home {mode} in {where}, attached, 0 tasks>" == repr(home)
    handler.stop(timeout=10)
    assert "retired" in repr(home)


_LOGGING_DEBUG = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format='%(message)s')\n"
    "from eventlet_handler import EventletHandler\n"
)


def test_EventletHandler_interpreter_exit_with_work_still_running_logs_one_debug_line_per_process() -> None:
    """README: exiting with live clients is normal; one debug line per process names the
    spawned work released, however many handlers had some."""
    done = run_python(
        _LOGGING_DEBUG
        + "for mode in ('isolated', 'isolated'):\n"
        "    handler = EventletHandler(mode)\n"
        "    handler.start()\n"
        "    handler.spawn(handler.event_object().wait, 30)\n"
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "interpreter exit: releasing spawned work" in line]
    assert len(lines) == 1, done.stderr


_time_monotonic = native_time.monotonic


def test_EventletHandler_stop_timeout_is_one_deadline_for_both_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """``stop(timeout)`` waits for the watch worker, then the completion worker, with what
    is left of one deadline; what is left is never negative, even when the first wait
    used it all up (here: the clock jumps 1000 s between the two)."""
    import types

    from eventlet_handler import handler as handler_module

    readings: List[float] = []

    def monotonic() -> float:  # the deadline and the first remainder, then far past both
        readings.append(0)
        return _time_monotonic() + (1000.0 if len(readings) > 2 else 0.0)

    handler = EventletHandler("isolated")
    handler.start()
    monkeypatch.setattr(handler_module, "time", types.SimpleNamespace(monotonic=monotonic))
    handler.stop(timeout=5)  # the workers are idle: both have exited by the second wait
    monkeypatch.undo()
    assert len(readings) >= 3, "the stop did not wait for both workers"
    assert handler.stats()["state"] == "stopped"


def test_EventletHandler_stop_at_interpreter_exit_that_fails_is_logged_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    handler = EventletHandler("isolated")
    handler.start()

    def broken_stop(timeout: Any = None) -> None:
        raise RuntimeError("greenlet refused to switch")

    monkeypatch.setattr(handler, "stop", broken_stop)
    with caplog.at_level(logging.DEBUG, logger="eventlet_handler"):
        handler._stop_at_exit()  # never raises at interpreter exit
    monkeypatch.undo()
    failed = [r for r in caplog.records if "at interpreter exit failed" in r.getMessage()]
    assert failed and failed[0].exc_info and failed[0].exc_info[0] is RuntimeError, caplog.records
    handler.stop(timeout=10)


def test_EventletHandler_home_join_is_bounded_by_its_timeout(hub: str) -> None:
    """``Home.join(timeout)`` waits at most ``timeout`` for a hub thread that is not
    exiting (the 10 s default is only for no timeout)."""
    with HandlerInBody("isolated") as handler:
        home = handler._home
        assert home is not None
        started = time.monotonic()
        assert home.join(0.1) is False, "join() said a running hub thread had exited"
        seconds = time.monotonic() - started
    assert seconds < 5.0, f"Home.join(0.1) took {seconds:.2f} s"


def test_EventletHandler_start_while_a_stop_requested_by_a_callback_drains_waits_and_restarts(
    hub: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A callback asked for the stop (it returns at once, the handler is "stopping"
    while the queue drains); ``start()`` from elsewhere waits for the drain, then
    starts again: it is not the callback's own worker, which must exit first. So every
    callback queued before the stop has run before one dispatched after the restart.

    The drain is held until ``start()`` waits for it (its ``_await_workers`` releases
    it): a start that did not wait would restart beside the held callback."""

    with HandlerInBody(mode) as handler:
        asked, gate = handler.event_object(), handler.event_object()
        order: List[str] = []
        handler.dispatch_callback(callback(lambda: (handler.stop(), asked.set())))
        handler.dispatch_callback(callback(lambda: (gate.wait(10), order.append("queued before the stop"))))
        assert asked.wait(5)
        assert handler.stats()["state"] == "stopping"
        await_workers = handler._await_workers

        def release_then_wait(timeout: Any) -> bool:
            gate.set()
            return await_workers(timeout)

        monkeypatch.setattr(handler, "_await_workers", release_then_wait)
        handler.start()
        monkeypatch.undo()
        assert handler.running
        ran = handler.event_object()
        handler.dispatch_callback(callback(lambda: (order.append("after the restart"), ran.set())))
        assert ran.wait(5), "a callback did not run after the restart"
        assert order == ["queued before the stop", "after the restart"], "start() did not wait for the drain"


def test_EventletHandler_dispatch_from_the_home_hub_takes_no_bridge_call(hub: str) -> None:
    """Handler rule 3's fast path: a callback dispatched from the home hub itself, with
    nothing pending in the bridge, goes straight into its worker's queue."""
    with HandlerInBody("shared") as handler:  # the test's hub is the home hub
        home = handler._home
        assert home is not None and home.hub is current_hub()
        done = handler.event_object()
        until(lambda: not home.bridge.pending, what="the start's calls to run")
        before = home.bridge.calls_run
        for _ in range(10):
            handler.dispatch_callback(callback(int))
        handler.dispatch_callback(callback(done.set))
        assert done.wait(5)
        assert home.bridge.calls_run == before, "callbacks from the home hub went through its bridge"


def test_EventletHandler_stop_says_so_in_the_log_and_counts_its_spawns(caplog: pytest.LogCaptureFixture) -> None:
    handler = EventletHandler("isolated")
    assert handler.stats()["tasks_spawned"] == 0
    handler.start()
    for _ in range(3):
        assert handler.spawn(int).join(5)
    assert handler.stats()["tasks_spawned"] == 3
    with caplog.at_level(logging.INFO, logger="eventlet_handler"):
        handler.stop(timeout=10)
        # The last worker to exit and stop() itself both try to finish the stop: one does.
        stopped = [r for r in caplog.records if "EventletHandler" in r.getMessage()
                   and r.getMessage().endswith(" stopped")]
        assert len(stopped) == 1, caplog.records
        handler.stop(timeout=10)  # already stopped: nothing to finish, nothing to say
    assert [r for r in caplog.records if r.getMessage().endswith(" stopped")] == stopped, caplog.records


def test_EventletHandler_stopped_with_spawned_work_left_still_releases_it_at_interpreter_exit() -> None:
    """``stop()`` with spawned work still running keeps the atexit hook: at exit that
    work is released (its one debug line), not left to the interpreter's teardown."""
    done = run_python(
        _LOGGING_DEBUG
        + "handler = EventletHandler('isolated')\n"
        "handler.start()\n"
        "handler.spawn(handler.event_object().wait, 30)\n"
        "handler.stop(timeout=5)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "interpreter exit: releasing spawned work" in done.stderr, done.stderr


def test_EventletHandler_takes_mode_by_name_or_position_and_options_by_name_only() -> None:
    assert EventletHandler(mode="isolated").mode == "isolated"
    assert EventletHandler("isolated", slow_callback_threshold=0.5).mode == "isolated"
    with pytest.raises(TypeError):
        EventletHandler("isolated", 0.5)  # type: ignore[misc]


@pytest.mark.parametrize("timeout, busy_for", [(0.9, 0.2), (3.0, 1.5)])
def test_EventletHandler_stop_waits_up_to_its_timeout_for_a_runningcallback(timeout: float, busy_for: float) -> None:
    """``stop(timeout)`` waits for a callback that ends within the timeout, whether the
    timeout is under a second or over one, and then the handler is stopped."""
    handler = EventletHandler("isolated")
    handler.start()
    busy = handler.event_object()
    handler.dispatch_callback(callback(lambda: (busy.set(), native_time.sleep(busy_for))))
    assert busy.wait(5)
    handler.stop(timeout=timeout)
    assert handler.stats()["state"] == "stopped", f"stop(timeout={timeout}) gave up on a {busy_for} s callback"
