"""The package facade, ``__all__``, the ``TYPE_CHECKING`` imports, the error hierarchy
and the entry points in setup.cfg agree (issue 11). Reads setup.cfg rather than the
installed metadata, so it checks this checkout whatever is installed."""

from __future__ import annotations

import ast
import configparser
import importlib
from pathlib import Path

import pytest

import eventlet_handler
from eventlet_handler import config

ROOT = Path(__file__).resolve().parent.parent


def _entry_points() -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    groups = {}
    for group, text in parser["options.entry_points"].items():
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        groups[group] = dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)
    return groups


def _load(target: str) -> object:
    module, _, attr = target.partition(":")
    obj: object = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def test_all_is_made_from_the_facade_table_and_every_name_resolves() -> None:
    assert eventlet_handler.__all__ == sorted(eventlet_handler._HOMES)
    for name in eventlet_handler.__all__:
        assert getattr(eventlet_handler, name) is getattr(
            importlib.import_module(eventlet_handler._HOMES[name], "eventlet_handler"), name
        )


def test_type_checking_imports_name_the_same_objects_as_the_facade() -> None:
    tree = ast.parse((ROOT / "eventlet_handler" / "__init__.py").read_text())
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    imported[alias.name] = "." * stmt.level + (stmt.module or "")
    assert imported == eventlet_handler._HOMES


def test_entry_points_name_the_facade_classes() -> None:
    groups = _entry_points()
    handlers = {name: _load(target) for name, target in groups["kazoo.handlers"].items()}
    assert handlers == {
        "eventlet": eventlet_handler.EventletHandler,
        "eventlet-shared": eventlet_handler.EventletSharedHandler,
        "eventlet-isolated": eventlet_handler.EventletIsolatedHandler,
    }
    for name, target in groups["kazoo.handlers"].items():
        assert config.HANDLER_NAMES[name] == target, "load_handler's built-in table and setup.cfg differ"
    from eventlet_handler.tooz import EventletKazooDriver

    assert _load(groups["tooz.backends"]["zookeeper+eventlet"]) is EventletKazooDriver
    assert _load(groups["pytest11"]["eventlet_handler"]) is importlib.import_module(
        "eventlet_handler.testing.pytest_plugin"
    )


def test_old_pinned_module_path_still_imports() -> None:
    old = importlib.import_module("eventlet_handler._pinned")
    assert old.EventletSharedHandler is eventlet_handler.EventletSharedHandler
    assert old.EventletIsolatedHandler is eventlet_handler.EventletIsolatedHandler


@pytest.mark.parametrize(
    ("name", "ancestor"),
    [("HandlerTimeoutError", Exception), ("HandlerStoppedError", RuntimeError), ("NoHubError", RuntimeError)],
)
def test_every_error_sits_under_EventletHandlerError_keeping_its_ancestry(name: str, ancestor: type) -> None:
    error = getattr(eventlet_handler, name)
    assert issubclass(error, eventlet_handler.EventletHandlerError) and issubclass(error, ancestor)
    if name == "HandlerTimeoutError":
        assert not issubclass(error, (RuntimeError, OSError))
    from eventlet_handler._bridge import BridgeClosed

    assert issubclass(BridgeClosed, eventlet_handler.EventletHandlerError)


def test_public_signatures_show_no_private_names() -> None:
    import inspect

    for obj in (eventlet_handler.EventletHandler, eventlet_handler.EventletSharedHandler,
                eventlet_handler.EventletIsolatedHandler, config.resolve_options):
        assert "_Unset" not in str(inspect.signature(obj)), obj
