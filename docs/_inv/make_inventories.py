"""Write the intersphinx inventories the docs build reads offline (``docs/_inv/*.inv``).

The build machine reaches no documentation site, so ``conf.py`` points intersphinx at
these files instead of downloading ``objects.inv``. Each is generated here from the
installed package (kazoo, eventlet) or the running interpreter's standard library, with
the URIs those projects' published docs use, and committed. Rerun after upgrading:

    .venv/bin/python docs/_inv/make_inventories.py
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import sys
import warnings
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Standard-library modules the docs and docstrings refer to; each documented at
# library/<module>.html#<module>.<name> on docs.python.org.
PYTHON_MODULES = (
    "asyncio", "concurrent.futures", "logging", "os", "queue", "select", "selectors",
    "socket", "ssl", "subprocess", "threading", "time", "typing", "collections.abc",
    "importlib.metadata", "atexit", "weakref",
)
# kazoo's API pages: kazoo.<a>.<b> is documented at api/<a>/<b>.html.
KAZOO_MODULES = (
    "kazoo.client", "kazoo.exceptions", "kazoo.interfaces", "kazoo.handlers.threading",
    "kazoo.handlers.eventlet", "kazoo.handlers.gevent", "kazoo.handlers.utils",
    "kazoo.protocol.states", "kazoo.recipe.lock", "kazoo.recipe.watchers",
    "kazoo.recipe.election", "kazoo.recipe.counter", "kazoo.recipe.barrier",
    "kazoo.recipe.party", "kazoo.recipe.queue", "kazoo.retry", "kazoo.security",
)
# eventlet's docs are hand-written pages: name -> (role, page).
EVENTLET_NAMES = {
    "eventlet": ("py:module", "basic_usage.html"),
    "eventlet.spawn": ("py:function", "basic_usage.html"),
    "eventlet.spawn_n": ("py:function", "basic_usage.html"),
    "eventlet.sleep": ("py:function", "basic_usage.html"),
    "eventlet.monkey_patch": ("py:function", "patching.html"),
    "eventlet.patcher.monkey_patch": ("py:function", "patching.html"),
    "eventlet.patcher.is_monkey_patched": ("py:function", "patching.html"),
    "eventlet.patcher.original": ("py:function", "patching.html"),
    "eventlet.hubs": ("py:module", "hubs.html"),
    "eventlet.hubs.use_hub": ("py:function", "hubs.html"),
    "eventlet.hubs.get_hub": ("py:function", "hubs.html"),
    "eventlet.event": ("py:module", "modules/event.html"),
    "eventlet.event.Event": ("py:class", "modules/event.html"),
    "eventlet.queue": ("py:module", "modules/queue.html"),
    "eventlet.queue.LightQueue": ("py:class", "modules/queue.html"),
    "eventlet.queue.Queue": ("py:class", "modules/queue.html"),
    "eventlet.greenthread": ("py:module", "modules/greenthread.html"),
    "eventlet.greenthread.GreenThread": ("py:class", "modules/greenthread.html"),
    "eventlet.greenpool": ("py:module", "modules/greenpool.html"),
    "eventlet.greenpool.GreenPool": ("py:class", "modules/greenpool.html"),
    "eventlet.timeout": ("py:module", "modules/timeout.html"),
    "eventlet.timeout.Timeout": ("py:class", "modules/timeout.html"),
    "eventlet.green": ("py:module", "patching.html"),
    "eventlet.tpool": ("py:module", "threading.html"),
    "eventlet.tpool.execute": ("py:function", "threading.html"),
}

_ROLES = {"class": "py:class", "function": "py:function", "exception": "py:exception",
          "method": "py:method", "data": "py:data", "module": "py:module"}


def _role(obj: object) -> str:
    if inspect.isclass(obj):
        return "py:exception" if issubclass(obj, BaseException) else "py:class"
    if callable(obj):
        return "py:function"
    return "py:data"


def _module_entries(modname: str, page: str) -> list[tuple[str, str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module(modname)
    entries = [(modname, "py:module", f"{page}#module-{modname}")]
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name, None)
        if obj is None or inspect.ismodule(obj):
            continue
        if getattr(obj, "__module__", modname) != modname and not hasattr(module, "__all__"):
            continue  # imported from elsewhere; documented there
        full = f"{modname}.{name}"
        entries.append((full, _role(obj), f"{page}#{full}"))
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                role = "py:method" if callable(value) else "py:attribute"
                entries.append((f"{full}.{attr}", role, f"{page}#{full}.{attr}"))
    return entries


def python_entries() -> list[tuple[str, str, str]]:
    entries = []
    for modname in PYTHON_MODULES:
        entries += _module_entries(modname, f"library/{modname}.html")
    for name, obj in vars(builtins).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            entries.append((name, "py:exception", f"library/exceptions.html#{name}"))
        elif inspect.isclass(obj) or callable(obj):
            entries.append((name, "py:class" if inspect.isclass(obj) else "py:function",
                            f"library/functions.html#{name}"))
    entries.append(("None", "py:data", "library/constants.html#None"))
    return entries


def kazoo_entries() -> list[tuple[str, str, str]]:
    entries = []
    for modname in KAZOO_MODULES:
        entries += _module_entries(modname, "api/" + modname.split(".", 1)[1].replace(".", "/") + ".html")
    return entries


def eventlet_entries() -> list[tuple[str, str, str]]:
    return [(name, role, f"{page}#{name}" if role != "py:module" else f"{page}#module-{name}")
            for name, (role, page) in EVENTLET_NAMES.items()]


def write(path: Path, project: str, version: str, entries: list[tuple[str, str, str]]) -> None:
    """Write a version-2 Sphinx inventory (``sphinx.util.inventory`` reads this format)."""
    seen, lines = set(), []
    for name, role, uri in sorted(set(entries)):
        if (name, role) in seen:
            continue
        seen.add((name, role))
        lines.append(f"{name} {role} 1 {uri} -")
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n")
    path.write_bytes(header.encode() + zlib.compress(("\n".join(lines) + "\n").encode()))
    print(f"{path.name}: {len(lines)} names")


def main() -> None:
    import eventlet
    import kazoo.version

    write(HERE / "python.inv", "Python", f"{sys.version_info.major}.{sys.version_info.minor}", python_entries())
    write(HERE / "kazoo.inv", "kazoo", kazoo.version.__version__, kazoo_entries())
    write(HERE / "eventlet.inv", "Eventlet", eventlet.__version__, eventlet_entries())


if __name__ == "__main__":
    main()
