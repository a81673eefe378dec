"""Test support for eventlet_handler: real ZooKeeper servers, fixtures and the pytest plugin.

``DeterministicHandler`` is a kazoo handler whose watch callbacks, completion callbacks
and spawned work wait in a queue until the test runs them (see
:mod:`eventlet_handler.testing._deterministic` for the rules). The pytest fixtures live in
:mod:`eventlet_handler.testing.pytest_plugin`; the ZooKeeper harness in
:mod:`eventlet_handler.testing.zookeeper`.

Importing this package is cheap: eventlet is imported when ``DeterministicHandler`` is
first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DeterministicHandler", "Step"]

if TYPE_CHECKING:  # pragma: no cover
    from ._deterministic import DeterministicHandler, Step


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _deterministic

        return getattr(_deterministic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
