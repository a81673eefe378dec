"""The ``zookeeper+eventlet`` tooz backend: tooz's ZooKeeper driver on :class:`EventletHandler`.

Installed with the ``tooz`` extra (``pip install eventlet-handler[tooz]``), which
registers this driver in tooz's ``tooz.backends`` entry-point group, so::

    coordinator = tooz.coordination.get_coordinator(
        "zookeeper+eventlet://127.0.0.1:2181?mode=isolated", member_id)

runs tooz's own :class:`tooz.drivers.zookeeper.KazooDriver` unchanged, except that its
kazoo client gets one of our handlers. tooz is not patched: the driver picks its handler
through its own ``HANDLERS`` mapping, and ours never hands it the name ``"eventlet"``,
so tooz's deprecation warning about kazoo's eventlet handler is not raised.

URL query options, besides every option of tooz's ``zookeeper://`` driver:

=============================  ===========================================================
``handler``                    ``eventlet`` (default), ``eventlet-shared``,
                               ``eventlet-isolated``, or another name that
                               :func:`eventlet_handler.config.handler_names` lists
                               (``threading``, entry points); not ``module:Class`` paths
``mode``                       ``auto``, ``shared`` or ``isolated`` (``handler=eventlet``)
``slow_callback_threshold``    seconds, or ``0``/``off``/``none`` (eventlet handlers only)
=============================  ===========================================================

Options left out fall back to ``EVENTLET_HANDLER_*`` environment variables, then to the
defaults (see :mod:`eventlet_handler.config`). The driver is used as any tooz driver:
from any green or native thread, with callbacks running on the handler's workers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from kazoo.client import KazooClient
from tooz.drivers.zookeeper import KazooDriver

from eventlet_handler.config import (
    HANDLER_NAMES,
    UNSET,
    _Unset,
    handler_names,
    load_handler,
    parse_mode,
    parse_slow_callback_threshold,
)

__all__ = ["DEFAULT_HANDLER", "HANDLER_OPTIONS", "EventletKazooDriver"]

DEFAULT_HANDLER: Final = "eventlet"
#: URL query options this driver consumes; the rest go to tooz's driver unchanged.
HANDLER_OPTIONS: Final = ("handler", "mode", "slow_callback_threshold")
#: The key under which our handler factory is handed to tooz. Never ``"eventlet"``:
#: tooz warns that *kazoo's* eventlet handler is deprecated when it sees that name.
_TOOZ_HANDLER_KEY: Final = "eventlet_handler"
_EVENTLET_KINDS: Final = frozenset(name for name in HANDLER_NAMES if name.startswith("eventlet"))

HandlerFactory = Callable[[], Any]


class EventletKazooDriver(KazooDriver):
    """tooz's ZooKeeper driver whose kazoo client runs on an eventlet_handler handler.

    Everything but handler selection is tooz's: see :class:`KazooDriver` for the
    coordinator API and the ``zookeeper://`` options.
    """

    #: tooz calls ``HANDLERS[kind]()``; each driver instance sets the one factory its
    #: URL asked for (in ``_make_client``), so the class offers none.
    HANDLERS: Mapping[str, HandlerFactory] = MappingProxyType({})  # type: ignore[assignment]

    def _make_client(self, parsed_url: Any, options: Any) -> KazooClient:
        """Build tooz's kazoo client with the handler the URL options ask for."""
        factory = handler_factory(options)
        client_options = {key: value for key, value in options.items() if key not in HANDLER_OPTIONS}
        client_options["handler"] = _TOOZ_HANDLER_KEY
        self.HANDLERS = MappingProxyType({_TOOZ_HANDLER_KEY: factory})
        return super()._make_client(parsed_url, client_options)


def handler_factory(options: Mapping[str, Any]) -> HandlerFactory:
    """A no-argument factory for the handler that tooz-style ``options`` describe.

    ``options`` maps option names to single string values (tooz collapses the query
    string before its driver sees it). Raises ``ValueError`` naming the option, the bad
    value and the valid values; handler classes are imported here, so an unavailable
    handler fails at ``get_coordinator()`` rather than at ``start()``.
    """
    kind = _option(options, "handler") or DEFAULT_HANDLER
    if ":" in kind:
        raise ValueError(
            f"tooz URL option handler={kind!r}: module paths are not accepted in URLs; "
            f"use one of {', '.join(handler_names())}"
        )
    handler_class = load_handler(kind)
    mode = _mode_option(options)
    threshold = _threshold_option(options)
    if kind not in _EVENTLET_KINDS:
        _refuse_eventlet_options(kind, options)
        return handler_class
    if kind != "eventlet" and mode is not None:
        raise ValueError(
            f"tooz URL options handler={kind!r} and mode={mode!r} conflict: {kind} pins "
            "the mode; use handler=eventlet with mode=..., or drop mode"
        )
    kwargs: dict[str, Any] = {"slow_callback_threshold": threshold}
    if mode is not None:  # left out, the handler resolves it (environment, then "auto")
        kwargs["mode"] = mode
    return functools.partial(handler_class, **kwargs)


def _option(options: Mapping[str, Any], name: str) -> str | None:
    value = options.get(name)
    if isinstance(value, (list, tuple)):  # tooz leaves a list when not collapsed
        value = value[-1] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _mode_option(options: Mapping[str, Any]) -> str | None:
    mode = _option(options, "mode")
    return None if mode is None else parse_mode(mode, name="tooz URL option mode")


def _threshold_option(options: Mapping[str, Any]) -> float | None | _Unset:
    text = _option(options, "slow_callback_threshold")
    if text is None:
        return UNSET
    return parse_slow_callback_threshold(text, source="tooz URL option slow_callback_threshold")


def _refuse_eventlet_options(kind: str, options: Mapping[str, Any]) -> None:
    # By presence, not parsed value: slow_callback_threshold=off parses to None.
    given = [name for name in ("mode", "slow_callback_threshold") if _option(options, name) is not None]
    if given:
        raise ValueError(
            f"tooz URL option(s) {', '.join(given)} apply to the eventlet handlers only, "
            f"not to handler={kind!r}"
        )
