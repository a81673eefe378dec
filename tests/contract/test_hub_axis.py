"""The hub axis itself: a test that takes ``hub`` runs, whole, in a thread of that hub."""

from __future__ import annotations

from eventlet_handler._hubs import current_hub
from support import native_threading as _threading


def test_a_hub_axis_test_runs_in_a_fresh_thread_of_its_hub(hub: str) -> None:
    here = current_hub()
    assert here is not None and type(here).__module__ == f"eventlet.hubs.{hub}"
    assert _threading.current_thread() is not _threading.main_thread()
