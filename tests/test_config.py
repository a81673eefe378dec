"""eventlet_handler.config: handler selection by name and option resolution."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from kazoo.handlers.eventlet import SequentialEventletHandler
from kazoo.handlers.gevent import SequentialGeventHandler
from kazoo.handlers.threading import SequentialThreadingHandler

from eventlet_handler import config
from eventlet_handler.config import (
    HANDLER_NAMES,
    MODE_ENV,
    SLOW_CALLBACK_THRESHOLD_ENV,
    UNSET,
    HandlerOptions,
    handler_names,
    load_handler,
    resolve_options,
)

pytestmark = pytest.mark.timeout(30)

DEMO_MODULE = "eventlet_handler_demo_handlers"


@pytest.fixture
def demo_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny installed distribution registering handlers in ``kazoo.handlers``."""
    (tmp_path / f"{DEMO_MODULE}.py").write_text(
        textwrap.dedent(
            """
            from kazoo.handlers.threading import SequentialThreadingHandler

            class DemoHandler(SequentialThreadingHandler):
                name = "demo_handler"

            not_a_class = object()
            """
        )
    )
    dist_info = tmp_path / "eventlet_handler_demo-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: eventlet-handler-demo\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""
            [kazoo.handlers]
            demo = {DEMO_MODULE}:DemoHandler
            demo-broken = {DEMO_MODULE}_missing:DemoHandler
            demo-missing-attr = {DEMO_MODULE}:NoSuchHandler
            demo-not-a-class = {DEMO_MODULE}:not_a_class
            threading = {DEMO_MODULE}:DemoHandler
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop(DEMO_MODULE, None)


# -- load_handler ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("threading", SequentialThreadingHandler),
        ("gevent", SequentialGeventHandler),
        ("kazoo-eventlet", SequentialEventletHandler),
    ],
)
def test_load_handler_kazoo_names(name: str, expected: type) -> None:
    assert load_handler(name) is expected


def test_load_handler_eventlet_is_our_handler() -> None:
    from eventlet_handler.handler import EventletHandler

    assert load_handler("eventlet") is EventletHandler


@pytest.mark.parametrize(("name", "mode"), [("eventlet-shared", "shared"), ("eventlet-isolated", "isolated")])
def test_load_handler_pinned_names_construct_with_no_arguments(name: str, mode: str) -> None:
    from eventlet_handler.handler import EventletHandler

    cls = load_handler(name)
    assert issubclass(cls, EventletHandler)
    handler = cls()  # tooz constructs handlers without arguments
    assert handler.options.mode == mode
    assert handler.options.requested_mode == mode
    assert not handler.running


def test_load_handler_pinned_names_keep_the_threshold_option() -> None:
    handler = load_handler("eventlet-isolated")(slow_callback_threshold=None)
    assert handler.options.slow_callback_threshold is None


def test_load_handler_every_builtin_name_loads() -> None:
    for name in HANDLER_NAMES:
        assert isinstance(load_handler(name), type), name


def test_load_handler_module_class_path() -> None:
    assert load_handler("kazoo.handlers.threading:SequentialThreadingHandler") is SequentialThreadingHandler
    assert load_handler("  kazoo.handlers.gevent:SequentialGeventHandler ") is SequentialGeventHandler


def test_load_handler_entry_point_of_another_package(demo_distribution: Path) -> None:
    cls = load_handler("demo")
    assert cls.__module__ == DEMO_MODULE and cls.__name__ == "DemoHandler"
    assert "demo" in handler_names()


def test_load_handler_builtin_names_win_over_entry_points(demo_distribution: Path) -> None:
    assert load_handler("threading") is SequentialThreadingHandler
    assert handler_names().count("threading") == 1


def test_handler_names_lists_builtins_first_then_entry_points(demo_distribution: Path) -> None:
    names = handler_names()
    assert names[: len(HANDLER_NAMES)] == list(HANDLER_NAMES)
    extra = names[len(HANDLER_NAMES):]
    assert extra == sorted(extra)
    assert {"demo", "demo-broken"} <= set(extra)


def test_load_handler_unknown_name_lists_the_valid_ones(demo_distribution: Path) -> None:
    with pytest.raises(ValueError, match="unknown kazoo handler 'no-such-handler'") as info:
        load_handler("no-such-handler")
    for name in (*HANDLER_NAMES, "demo"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("spec", "error", "match", "cause"),
    [
        # an unimportable module chains the ImportError; a missing class is an ImportError too
        ("no_such_package.handlers:Handler", ImportError, "no_such_package.handlers:Handler", ImportError),
        ("kazoo.handlers.threading:NoSuchHandler", ImportError, "has no attribute 'NoSuchHandler'", AttributeError),
        (":Handler", ValueError, "expected 'package.module:Class'", None),
        ("kazoo.handlers.threading:", ValueError, "expected 'package.module:Class'", None),
        (SequentialThreadingHandler, TypeError, "must be a str", None),  # not a string
    ],
)
def test_load_handler_refuses_a_spec_it_cannot_load(spec: Any, error: type, match: str, cause: Any) -> None:
    with pytest.raises(error, match=match) as info:
        load_handler(spec)
    if cause is not None:
        assert isinstance(info.value.__cause__, cause)


def test_load_handler_broken_entry_point_names_the_spec(demo_distribution: Path) -> None:
    with pytest.raises(ImportError, match="'demo-broken'") as info:
        load_handler("demo-broken")
    assert info.value.__cause__ is not None
    with pytest.raises(ImportError, match="'demo-missing-attr'"):
        load_handler("demo-missing-attr")


def test_load_handler_refuses_objects_that_are_not_classes(demo_distribution: Path) -> None:
    with pytest.raises(TypeError, match="not a class"):
        load_handler("demo-not-a-class")
    with pytest.raises(TypeError, match="not a class"):
        load_handler("os.path:join")


def test_load_handler_refuses_classes_without_handler_methods() -> None:
    with pytest.raises(TypeError, match="not a kazoo handler") as info:
        load_handler("collections:OrderedDict")
    message = str(info.value)
    for attr in ("start", "dispatch_callback", "async_result", "spawn"):
        assert attr in message


# -- resolve_options ---------------------------------------------------------------------


@pytest.fixture
def not_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_monkey_patched_modules", lambda: [])


@pytest.fixture
def thread_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_monkey_patched_modules", lambda: ["thread"])


def test_resolve_options_defaults(not_patched: None) -> None:
    options = resolve_options(environ={})
    assert options == HandlerOptions(
        mode="isolated",
        requested_mode="auto",
        mode_reason="auto: the process is not monkey-patched",
        slow_callback_threshold=1.0,
    )


def test_resolve_options_auto_is_shared_when_monkey_patched(thread_patched: None) -> None:
    options = resolve_options(environ={})
    assert options.mode == "shared"
    assert options.mode_reason == "auto: the process is monkey-patched (thread)"


def test_resolve_options_auto_follows_eventlet_patcher() -> None:
    from eventlet import patcher

    patched = patcher.is_monkey_patched("thread") or patcher.is_monkey_patched("socket")
    assert resolve_options(environ={}).mode == ("shared" if patched else "isolated")


def test_resolve_options_keyword_beats_environment(not_patched: None) -> None:
    environ = {MODE_ENV: "isolated", SLOW_CALLBACK_THRESHOLD_ENV: "5"}
    options = resolve_options(mode="shared", slow_callback_threshold=0.25, environ=environ)
    assert (options.mode, options.requested_mode) == ("shared", "shared")
    assert options.mode_reason == "mode='shared' argument"
    assert options.slow_callback_threshold == 0.25


def test_resolve_options_environment_beats_defaults(thread_patched: None) -> None:
    options = resolve_options(environ={MODE_ENV: " Isolated ", SLOW_CALLBACK_THRESHOLD_ENV: "2.5"})
    assert options.mode == "isolated"
    assert options.mode_reason == f"{MODE_ENV}=Isolated"
    assert options.slow_callback_threshold == 2.5


def test_resolve_options_auto_from_environment_says_so(thread_patched: None) -> None:
    options = resolve_options(environ={MODE_ENV: "auto"})
    assert options.mode == "shared"
    assert options.mode_reason == f"{MODE_ENV}=auto: the process is monkey-patched (thread)"


def test_resolve_options_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_ENV, "shared")
    monkeypatch.setenv(SLOW_CALLBACK_THRESHOLD_ENV, "off")
    options = resolve_options()
    assert options.mode == "shared"
    assert options.slow_callback_threshold is None


@pytest.mark.parametrize(
    ("kwargs", "text", "threshold"),
    [
        ({"slow_callback_threshold": None}, "3", None),  # None turns the warning off over the environment
        *[({}, text, None) for text in ["0", "off", "OFF", "none", " None "]],  # so do these words
        ({"slow_callback_threshold": 0}, None, None),  # and a zero argument
        ({"slow_callback_threshold": UNSET}, None, 1.0),  # UNSET is the default
    ],
)
def test_resolve_options_threshold_off_or_default(kwargs: dict, text: Any, threshold: Any) -> None:
    environ = {} if text is None else {SLOW_CALLBACK_THRESHOLD_ENV: text}
    assert resolve_options(mode="shared", environ=environ, **kwargs).slow_callback_threshold == threshold


def test_resolve_options_empty_environment_values_are_unset(not_patched: None) -> None:
    options = resolve_options(environ={MODE_ENV: "", SLOW_CALLBACK_THRESHOLD_ENV: "  "})
    assert options.requested_mode == "auto"
    assert options.slow_callback_threshold == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match", "also"),
    [
        ({"mode": "fast", "environ": {}}, ValueError, r"mode='fast'.*argument.*auto, shared, isolated", ""),
        ({"environ": {MODE_ENV: "fast"}}, ValueError, rf"{MODE_ENV}='fast'.*environment variable.*auto, shared, isolated",
         ""),
        ({"mode": 1, "environ": {}}, TypeError, "mode must be a str", ""),
        *[({"mode": "shared", "slow_callback_threshold": value, "environ": {}}, ValueError,
           "slow_callback_threshold", "") for value in [-1, -0.001, math.nan, math.inf]],
        *[({"mode": "shared", "slow_callback_threshold": value, "environ": {}}, TypeError,
           "slow_callback_threshold must be a number", "") for value in [True, "1", [1]]],
        # a bad environment value is quoted in the error
        *[({"mode": "shared", "environ": {SLOW_CALLBACK_THRESHOLD_ENV: text}}, ValueError,
           SLOW_CALLBACK_THRESHOLD_ENV, repr(text)) for text in ["soon", "-1", "nan", "inf"]],
    ],
)
def test_resolve_options_refuses_bad_values(kwargs: dict, error: type, match: str, also: str) -> None:
    with pytest.raises(error, match=match) as info:
        resolve_options(**kwargs)
    assert also in str(info.value)


def test_handler_options_are_frozen() -> None:
    options = resolve_options(mode="shared", environ={})
    with pytest.raises(AttributeError):
        options.mode = "isolated"  # type: ignore[misc]


def test_importing_config_starts_nothing_and_adds_no_eventlet_import() -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        import eventlet_handler
        had_eventlet = "eventlet" in sys.modules
        threads = threading.active_count()
        import eventlet_handler.config
        assert threading.active_count() == threads, "importing config started a thread"
        assert had_eventlet or "eventlet" not in sys.modules, "importing config imported eventlet"
        """
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=30)
