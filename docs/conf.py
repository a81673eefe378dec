"""Sphinx configuration: ``make docs`` builds this into ``docs/_build/html`` with ``-W``.

The build is offline: intersphinx reads the inventories shipped in ``_inv/`` (see
``_inv/make_inventories.py``) and never downloads one. A build also fails when a
public name of a module in ``PUBLIC_MODULES`` has no entry in the API reference.
"""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from eventlet_handler._version import __version__  # noqa: E402

project = "eventlet-handler"
author = "eventlet-handler contributors"
copyright = "2026, eventlet-handler contributors"
release = version = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
exclude_patterns = ["_build", "_inv", "compat-matrix.rst"]
html_theme = "furo"
html_title = f"eventlet-handler {release}"
templates_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}

# Local inventories first; the published URL is only the link target (and a fallback
# that an offline build never reaches, because the local file is always there).
_INV = HERE / "_inv"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", (str(_INV / "python.inv"), None)),
    "kazoo": ("https://kazoo.readthedocs.io/en/latest", (str(_INV / "kazoo.inv"), None)),
    "eventlet": ("https://eventlet.readthedocs.io/en/latest", (str(_INV / "eventlet.inv"), None)),
}

# The modules whose every public name (``__all__``) the API reference must document.
# Add a module here and an ``automodule`` for it in api.rst.
PUBLIC_MODULES = (
    "eventlet_handler",
    "eventlet_handler.aio",
    "eventlet_handler.config",
    "eventlet_handler.tooz",
    "eventlet_handler.testing",
    "eventlet_handler.testing.pytest_plugin",
    "eventlet_handler.testing.zookeeper",
)

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="eventlet")


def _public_objects() -> dict[str, object]:
    """``{"module.name": object}`` for every name in a public module's ``__all__``."""
    found = {}
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            found[f"{modname}.{name}"] = getattr(module, name)
    return found


def _check_api_is_complete(app, env) -> None:  # type: ignore[no-untyped-def]
    """Warn (an error under -W) for a public object documented under none of its names:
    its names in the public modules, or its home ``__module__.__qualname__``."""
    from sphinx.util import logging

    documented = set(env.domaindata["py"]["objects"])
    public = _public_objects()
    names_of: dict[int, set[str]] = {}
    for full, obj in public.items():
        names = names_of.setdefault(id(obj), set())
        names.add(full)
        if hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
            names.add(f"{obj.__module__}.{obj.__qualname__}")
    log = logging.getLogger(__name__)
    for full, obj in sorted(public.items()):
        if not names_of[id(obj)] & documented:
            log.warning("the API reference does not document %s (add it to api.rst)", full)


class ReadmeTable:
    """``.. readme-table:: <first header cell>``: the README's Markdown table whose header
    row starts with that cell, as a list-table (one source for the README and the docs)."""

    @staticmethod
    def rst_lines(first_cell: str) -> list[str]:
        readme = (ROOT / "README.md").read_text().splitlines()
        starts = [i for i, line in enumerate(readme) if re.match(rf"^\|\s*{re.escape(first_cell)}\s*\|", line)]
        if len(starts) != 1:
            raise ValueError(f"README.md has {len(starts)} tables whose header starts with {first_cell!r}, not 1")
        rows = []
        for line in readme[starts[0]:]:
            if not line.startswith("|"):
                break
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                continue
            rows.append([re.sub(r"`([^`]+)`", r"``\1``", cell) for cell in cells])
        out = [".. list-table::", "   :header-rows: 1", ""]
        for row in rows:
            out += [f"   {'*' if n == 0 else ' '} - {cell}".rstrip() for n, cell in enumerate(row)]
        return out


def _readme_table_directive():  # type: ignore[no-untyped-def]
    from docutils.parsers.rst import Directive

    class Table(Directive):
        required_arguments = 1
        final_argument_whitespace = True

        def run(self):  # type: ignore[no-untyped-def]
            self.state_machine.insert_input(ReadmeTable.rst_lines(self.arguments[0]), "README.md")
            return []

    return Table


def _keep_public_data(app, what, name, obj, skip, options):  # type: ignore[no-untyped-def]
    # autodoc drops module constants without a doc comment even with undoc-members;
    # a name a public module exports in __all__ is API, documented or not.
    if what == "module" and skip and any(
        name in getattr(importlib.import_module(m), "__all__", ()) for m in PUBLIC_MODULES
    ):
        return False
    return None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("env-updated", _check_api_is_complete)
    app.connect("autodoc-skip-member", _keep_public_data)
    app.add_directive("readme-table", _readme_table_directive())
    return {"parallel_read_safe": True}
