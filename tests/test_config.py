"""eventlet_handler.config: handler selection by name and option resolution."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_load_handler_unimportable_module_chains_the_import_error() -> None:
    with pytest.raises(ImportError, match="no_such_package.handlers:Handler") as info:
        load_handler("no_such_package.handlers:Handler")
    assert isinstance(info.value.__cause__, ImportError)


def test_load_handler_missing_class_is_an_import_error() -> None:
    with pytest.raises(ImportError, match="has no attribute 'NoSuchHandler'") as info:
        load_handler("kazoo.handlers.threading:NoSuchHandler")
    assert isinstance(info.value.__cause__, AttributeError)


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


@pytest.mark.parametrize("spec", [":Handler", "kazoo.handlers.threading:"])
def test_load_handler_malformed_path(spec: str) -> None:
    with pytest.raises(ValueError, match="expected 'package.module:Class'"):
        load_handler(spec)


def test_load_handler_refuses_non_strings() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        load_handler(SequentialThreadingHandler)  # type: ignore[arg-type]


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


def test_resolve_options_none_threshold_turns_warning_off_over_environment() -> None:
    options = resolve_options(mode="shared", slow_callback_threshold=None, environ={SLOW_CALLBACK_THRESHOLD_ENV: "3"})
    assert options.slow_callback_threshold is None


@pytest.mark.parametrize("text", ["0", "off", "OFF", "none", " None "])
def test_resolve_options_environment_words_turn_threshold_off(text: str) -> None:
    options = resolve_options(mode="shared", environ={SLOW_CALLBACK_THRESHOLD_ENV: text})
    assert options.slow_callback_threshold is None


def test_resolve_options_empty_environment_values_are_unset(not_patched: None) -> None:
    options = resolve_options(environ={MODE_ENV: "", SLOW_CALLBACK_THRESHOLD_ENV: "  "})
    assert options.requested_mode == "auto"
    assert options.slow_callback_threshold == 1.0


def test_resolve_options_zero_threshold_argument_is_off() -> None:
    assert resolve_options(mode="shared", slow_callback_threshold=0, environ={}).slow_callback_threshold is None


def test_resolve_options_unset_is_the_default() -> None:
    assert resolve_options(mode="shared", slow_callback_threshold=UNSET, environ={}).slow_callback_threshold == 1.0


def test_resolve_options_bad_mode_argument() -> None:
    with pytest.raises(ValueError, match=r"mode='fast'.*argument.*auto, shared, isolated"):
        resolve_options(mode="fast", environ={})


def test_resolve_options_bad_mode_environment() -> None:
    with pytest.raises(ValueError, match=rf"{MODE_ENV}='fast'.*environment variable.*auto, shared, isolated"):
        resolve_options(environ={MODE_ENV: "fast"})


def test_resolve_options_mode_of_wrong_type() -> None:
    with pytest.raises(TypeError, match="mode must be a str"):
        resolve_options(mode=1, environ={})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, -0.001, math.nan, math.inf])
def test_resolve_options_refuses_bad_threshold_numbers(value: float) -> None:
    with pytest.raises(ValueError, match="slow_callback_threshold"):
        resolve_options(mode="shared", slow_callback_threshold=value, environ={})


@pytest.mark.parametrize("value", [True, "1", [1]])
def test_resolve_options_refuses_threshold_of_wrong_type(value: object) -> None:
    with pytest.raises(TypeError, match="slow_callback_threshold must be a number"):
        resolve_options(mode="shared", slow_callback_threshold=value, environ={})  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["soon", "-1", "nan", "inf"])
def test_resolve_options_refuses_bad_threshold_environment(text: str) -> None:
    with pytest.raises(ValueError, match=SLOW_CALLBACK_THRESHOLD_ENV) as info:
        resolve_options(mode="shared", environ={SLOW_CALLBACK_THRESHOLD_ENV: text})
    assert repr(text) in str(info.value)


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
