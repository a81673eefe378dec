"""Choosing and configuring a kazoo handler by name, environment or keyword.

Services rarely construct handlers by hand: they read a name from a tooz URL, an
option file or the environment. This module turns such a name into a handler class
(:func:`load_handler`) and turns keyword arguments plus ``EVENTLET_HANDLER_*``
environment variables into validated :class:`HandlerOptions` (:func:`resolve_options`).

Importing this module starts nothing and does not import eventlet; eventlet is imported
only when ``mode="auto"`` has to look at monkey-patching, or when a handler is loaded.

Precedence, highest first: keyword arguments, environment variables, defaults.

============================================  ==========================================
environment variable                          values
============================================  ==========================================
``EVENTLET_HANDLER_MODE``                     ``auto`` (default), ``shared``, ``isolated``
``EVENTLET_HANDLER_SLOW_CALLBACK_THRESHOLD``  seconds (default ``1.0``); ``0``, ``off``
                                              or ``none`` turn the warning off
============================================  ==========================================

All functions here are plain functions: call them from any thread.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import inspect
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "HANDLER_ENTRY_POINT_GROUP",
    "HANDLER_NAMES",
    "MODES",
    "MODE_ENV",
    "REQUIRED_HANDLER_ATTRIBUTES",
    "SLOW_CALLBACK_THRESHOLD_ENV",
    "UNSET",
    "HandlerOptions",
    "Unset",
    "handler_names",
    "load_handler",
    "parse_mode",
    "parse_slow_callback_threshold",
    "resolve_options",
    "resolve_start_mode",
]

MODES: Final = ("auto", "shared", "isolated")
MODE_ENV: Final = "EVENTLET_HANDLER_MODE"
SLOW_CALLBACK_THRESHOLD_ENV: Final = "EVENTLET_HANDLER_SLOW_CALLBACK_THRESHOLD"
DEFAULT_SLOW_CALLBACK_THRESHOLD: Final = 1.0
_THRESHOLD_OFF_WORDS: Final = ("0", "off", "none")

HANDLER_ENTRY_POINT_GROUP: Final = "kazoo.handlers"

#: Built-in handler names and the ``"module:Class"`` each one loads.
HANDLER_NAMES: Final[dict[str, str]] = {
    "eventlet": "eventlet_handler.handler:EventletHandler",
    "eventlet-shared": "eventlet_handler.pinned:EventletSharedHandler",
    "eventlet-isolated": "eventlet_handler.pinned:EventletIsolatedHandler",
    "threading": "kazoo.handlers.threading:SequentialThreadingHandler",
    "gevent": "kazoo.handlers.gevent:SequentialGeventHandler",
    "kazoo-eventlet": "kazoo.handlers.eventlet:SequentialEventletHandler",
}

#: What kazoo uses of a handler class, checked by :func:`load_handler`. Attributes
#: that kazoo's own handlers set per instance (``running``) are not listed.
REQUIRED_HANDLER_ATTRIBUTES: Final = (
    "name",
    "timeout_exception",
    "sleep_func",
    "start",
    "stop",
    "select",
    "socket",
    "create_connection",
    "create_socket_pair",
    "event_object",
    "lock_object",
    "rlock_object",
    "async_result",
    "spawn",
    "dispatch_callback",
)


class Unset(enum.Enum):
    """Type of :data:`UNSET`: "no keyword argument given", distinct from ``None``."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: Default of keyword arguments where ``None`` already means something ("off").
UNSET: Final = Unset.UNSET
_Unset = Unset  # the name this type had before it was public


@dataclass(frozen=True)
class HandlerOptions:
    """The resolved options of one handler.

    ``mode`` is what the handler does (``"shared"`` or ``"isolated"``) when started
    from the main thread or a green thread; ``requested_mode`` is what was asked for
    (``"auto"`` too), which :func:`resolve_start_mode` resolves again at each start;
    ``mode_reason`` says, for humans and logs, where the mode came from.
    ``slow_callback_threshold`` is how many seconds a callback may hold its worker
    before the handler warns; ``None`` means never.
    """

    mode: str
    requested_mode: str
    mode_reason: str
    slow_callback_threshold: float | None


def resolve_options(
    *,
    mode: str | None = None,
    slow_callback_threshold: float | None | Unset = UNSET,
    environ: Mapping[str, str] | None = None,
) -> HandlerOptions:
    """Resolve handler options from keyword arguments, then environment, then defaults.

    ``mode=None`` and ``slow_callback_threshold=UNSET`` mean "not given here": the
    environment variable is used, else the default. ``slow_callback_threshold=None``
    (or ``0``) turns slow-callback warnings off. ``environ`` defaults to ``os.environ``.

    Raises ``TypeError`` for an argument of the wrong type and ``ValueError`` naming the
    argument or variable, the bad value and the valid values. Safe from any thread.
    """
    env = os.environ if environ is None else environ
    requested, source = _requested_mode(mode, env)
    resolved, reason = _resolve_mode(requested, source)
    threshold = _resolve_threshold(slow_callback_threshold, env)
    return HandlerOptions(
        mode=resolved,
        requested_mode=requested,
        mode_reason=reason,
        slow_callback_threshold=threshold,
    )


def _requested_mode(mode: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """Return the requested mode and a description of where it came from."""
    if mode is not None:
        if not isinstance(mode, str):
            raise TypeError(
                f"mode must be a str, one of {', '.join(MODES)}; got {type(mode).__name__} {mode!r}"
            )
        return parse_mode(mode, name="mode", where="argument"), f"mode={mode!r} argument"
    raw = env.get(MODE_ENV, "").strip()
    if raw:
        return parse_mode(raw, name=MODE_ENV, where="environment variable"), f"{MODE_ENV}={raw}"
    return "auto", "auto"


def parse_mode(text: str, *, name: str, where: str | None = None) -> str:
    """Parse a handler mode written as text (argument, environment, URL query, option
    file): ``auto``, ``shared`` or ``isolated``, any case. Any thread.

    :raises ValueError: showing ``name=text`` (and ``where`` it came from) and the
        valid modes.
    """
    normalized = text.strip().lower()
    if normalized not in MODES:
        origin = f" ({where})" if where else ""
        raise ValueError(f"{name}={text.strip()!r}{origin} is invalid; valid modes are {', '.join(MODES)}")
    return normalized


def _resolve_mode(requested: str, source: str) -> tuple[str, str]:
    """Turn ``"auto"`` into ``"shared"`` or ``"isolated"``, with the reason why."""
    if requested != "auto":
        return requested, source
    patched = _monkey_patched_modules()
    if patched:
        return "shared", f"{source}: the process is monkey-patched ({', '.join(patched)})"
    return "isolated", f"{source}: the process is not monkey-patched"


def resolve_start_mode(options: HandlerOptions, *, native_thread_without_hub: bool) -> tuple[str, str]:
    """The mode and its reason for one ``start()``: ``"auto"`` is chosen by the starting
    thread. A monkey-patched process gets shared mode, except in a native thread that
    has no eventlet hub (a ``concurrent.futures`` or ``asyncio.to_thread`` worker under
    the asyncio hub), where shared mode cannot run: isolated mode there. Any thread.
    """
    if options.requested_mode != "auto":
        return options.mode, options.mode_reason
    source = options.mode_reason.partition(":")[0]
    mode, reason = _resolve_mode("auto", source)
    if mode == "shared" and native_thread_without_hub:
        return "isolated", f"{reason}, but started in a native thread with no eventlet hub"
    return mode, reason


def _monkey_patched_modules() -> list[str]:
    """Names among ``thread`` and ``socket`` that eventlet has monkey-patched."""
    from eventlet import patcher  # imported late: importing eventlet warns and costs

    return [name for name in ("thread", "socket") if patcher.is_monkey_patched(name)]


def _resolve_threshold(value: float | None | Unset, env: Mapping[str, str]) -> float | None:
    if value is not UNSET:
        return _check_threshold_argument(value)
    raw = env.get(SLOW_CALLBACK_THRESHOLD_ENV, "").strip()
    if raw:
        return _parse_threshold_env(raw)
    return DEFAULT_SLOW_CALLBACK_THRESHOLD


def _check_threshold_argument(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            "slow_callback_threshold must be a number of seconds or None (off); "
            f"got {type(value).__name__} {value!r}"
        )
    return _check_threshold_value(float(value), f"slow_callback_threshold={value!r}")


def _parse_threshold_env(raw: str) -> float | None:
    return parse_slow_callback_threshold(raw, source=SLOW_CALLBACK_THRESHOLD_ENV)


def parse_slow_callback_threshold(text: str, *, source: str) -> float | None:
    """Parse a threshold written as text (environment, URL query, option file).

    ``"0"``, ``"off"`` and ``"none"`` mean off (``None``); otherwise a number of seconds
    ``>= 0``. ``source`` names where the text came from, for the ``ValueError``.
    """
    raw = text.strip()
    shown = f"{source}={raw!r}"
    if raw.lower() in _THRESHOLD_OFF_WORDS:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(
            f"invalid {shown}: expected a number of seconds, "
            f"or one of {', '.join(_THRESHOLD_OFF_WORDS)} to turn the warning off"
        ) from None
    return _check_threshold_value(seconds, shown)


def _check_threshold_value(seconds: float, shown: str) -> float | None:
    if math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        raise ValueError(
            f"invalid {shown}: expected a finite number of seconds >= 0 (0 turns the "
            "warning off), or None / 'off' to turn it off"
        )
    return None if seconds == 0 else seconds


def handler_names() -> list[str]:
    """Every name :func:`load_handler` accepts: built-ins first, then entry points.

    Entry points are those of the ``kazoo.handlers`` group of installed distributions,
    sorted, without names that shadow a built-in. Safe from any thread.
    """
    extra = sorted({ep.name for ep in _handler_entry_points()} - HANDLER_NAMES.keys())
    return [*HANDLER_NAMES, *extra]


def load_handler(spec: str) -> type:
    """Return the handler class named by ``spec``; construct it yourself.

    ``spec`` is a built-in name (see :data:`HANDLER_NAMES`), a ``"package.module:Class"``
    path, or the name of an entry point in the ``kazoo.handlers`` group, looked up in
    that order.

    Raises ``ValueError`` for an unknown name (listing the valid ones), ``ImportError``
    (chained to the cause) when what ``spec`` names cannot be imported, and
    ``TypeError`` when it is not a class with kazoo's handler methods.
    Imports the module it names; safe from any thread that may import.
    """
    if not isinstance(spec, str):
        raise TypeError(f"handler spec must be a str, got {type(spec).__name__} {spec!r}")
    name = spec.strip()
    if name in HANDLER_NAMES:
        obj = _import_target(HANDLER_NAMES[name], spec)
    elif ":" in name:
        obj = _import_target(name, spec)
    else:
        obj = _load_entry_point(name, spec)
    return _check_handler_class(obj, spec)


def _import_target(target: str, spec: str) -> object:
    """Import ``"module:attr.attr"``; errors name ``spec`` and what to do."""
    module_name, _, attr_path = target.partition(":")
    if not module_name or not attr_path:
        raise ValueError(
            f"invalid handler spec {spec!r}: expected 'package.module:Class' or one of "
            f"{', '.join(handler_names())}"
        )
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"handler {spec!r} needs module {module_name!r}, which could not be imported "
            f"({exc}); install it or choose another handler",
            name=module_name,
        ) from exc
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ImportError(
                f"handler {spec!r}: module {module_name!r} has no attribute {attr_path!r}",
                name=module_name,
            ) from exc
    return obj


def _handler_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Entry points of the ``kazoo.handlers`` group, read afresh (installs may change)."""
    found = importlib.metadata.entry_points()
    if hasattr(found, "select"):  # Python >= 3.10
        return list(found.select(group=HANDLER_ENTRY_POINT_GROUP))
    return list(found.get(HANDLER_ENTRY_POINT_GROUP, ()))  # type: ignore[attr-defined]


def _load_entry_point(name: str, spec: str) -> object:
    matches = [ep for ep in _handler_entry_points() if ep.name == name]
    if not matches:
        raise ValueError(
            f"unknown kazoo handler {spec!r}; valid names are {', '.join(handler_names())}, "
            "or give a 'package.module:Class' path"
        )
    entry_point = matches[0]
    try:
        return entry_point.load()
    except ImportError as exc:
        raise ImportError(
            f"handler {spec!r} (entry point {entry_point.value!r} in group "
            f"{HANDLER_ENTRY_POINT_GROUP!r}) could not be imported: {exc}",
            name=entry_point.module,
        ) from exc
    except AttributeError as exc:
        raise ImportError(
            f"handler {spec!r}: entry point {entry_point.value!r} names a missing attribute: {exc}",
            name=entry_point.module,
        ) from exc


def _check_handler_class(obj: object, spec: str) -> type:
    if not inspect.isclass(obj):
        raise TypeError(
            f"handler {spec!r} is {type(obj).__name__} {obj!r}, not a class; "
            "load_handler returns a handler class for KazooClient(handler=cls(...))"
        )
    missing = [attr for attr in REQUIRED_HANDLER_ATTRIBUTES if not hasattr(obj, attr)]
    if missing:
        raise TypeError(
            f"handler {spec!r} ({obj.__module__}.{obj.__qualname__}) is not a kazoo "
            f"handler: it lacks {', '.join(missing)}"
        )
    return obj
