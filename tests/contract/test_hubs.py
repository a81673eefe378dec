"""eventlet hubs as the package sees them (``_hubs``): a hub is retired by its own thread,
closing what it holds open, and is then gone from that thread."""

from __future__ import annotations

from typing import Any, Dict

import eventlet
import pytest
from eventlet import hubs

from support import HUBS, in_native_thread, run_python
from eventlet_handler._hubs import current_hub, retire_current_hub


def _holds_open(hub: Any) -> bool:
    """Whether ``hub`` still holds its poller fd or asyncio loop open."""
    loop = getattr(hub, "loop", None)
    if loop is not None:
        return not loop.is_closed()
    epoll = getattr(hub, "poll", None)
    if epoll is not None and hasattr(epoll, "closed"):
        return not epoll.closed
    return False  # poll() and select() objects hold no fd


@pytest.mark.parametrize("name", HUBS)
def test_retire_current_hub_closes_what_the_hub_holds_and_forgets_it(name: str) -> None:
    def main() -> Dict[str, Any]:
        hubs.use_hub(name)
        hub = hubs.get_hub()
        eventlet.sleep(0)  # the hub's loop starts, and stays in its run loop
        outcome = {"open before": _holds_open(hub), "running before": hub.running}
        retire_current_hub()
        outcome.update({"open after": _holds_open(hub), "running after": hub.running, "hub after": current_hub()})
        retire_current_hub()  # nothing left to retire: a no-op
        return outcome

    outcome = in_native_thread(main, name=f"retire-{name}")
    assert outcome["hub after"] is None, "the thread still has its hub after retiring it"
    assert outcome["running before"] and not outcome["running after"], "the retired hub never left its run loop"
    if name in ("epolls", "asyncio"):
        assert outcome["open before"], f"the {name} hub held nothing open to start with"
    assert not outcome["open after"], f"the retired {name} hub still holds its poller or loop open"


def test_current_hub_never_creates_one() -> None:
    outcome = in_native_thread(lambda: {"hub": current_hub(), "still none": getattr(hubs._threadlocal, "hub", None)})
    assert outcome == {"hub": None, "still none": None}


@pytest.mark.parametrize("name", HUBS)
def test_thread_that_ends_without_retiring_its_hub_leaves_nothing_open(name: str) -> None:
    """Rule 2: a native thread that gained a hub and a bridge (as kazoo's retry sleeps
    make one) and ends without retiring them: once it is gone, its bridge's pipe and its
    hub's poller or asyncio loop are closed, even a loop left "running" in its hub
    greenlet."""
    import gc

    from eventlet_handler._bridge import bridge_of

    def main() -> Dict[str, Any]:
        hubs.use_hub(name)
        hub = hubs.get_hub()
        bridge = bridge_of(hub, create=True)
        eventlet.sleep(0)  # the hub loop runs, and stays "running" in its greenlet
        return {"bridge": bridge, "hub": hub}

    made = in_native_thread(main, name=f"abandons-{name}")
    gc.collect()
    assert made["bridge"].read_fd == -1, "the ended thread's bridge still holds its pipe"
    assert not _holds_open(made["hub"]), f"the ended thread's {name} hub still holds its poller or loop"


def test_interpreter_exit_leaves_the_main_threads_hub_to_later_exit_hooks() -> None:
    """The thread-exit clean-up is not run at interpreter exit: eventlet.tpool's atexit
    hook (killall) still switches into the main thread's hub after ours would have run,
    and meets a closed poller if the hub was retired first."""
    done = run_python(
        "import eventlet, eventlet.tpool\n"
        "from eventlet import hubs\n"
        "from eventlet_handler._bridge import bridge_of\n"
        "bridge_of(hubs.get_hub(), create=True)\n"
        "assert eventlet.tpool.execute(lambda: 41) == 41\n"
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
