"""``python -m build`` makes an sdist that holds the tests and docs, and a wheel that installs
and works outside the source tree; ``twine check`` accepts both."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from support import import_or_skip

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter whose only copy of eventlet_handler is the installed wheel.
CHECK = """
import importlib.metadata as md, importlib.resources as res, sys, warnings
warnings.simplefilter("ignore")
import eventlet_handler
from eventlet_handler import EventletHandler, load_handler
site = sys.argv[1]
assert eventlet_handler.__file__.startswith(site), eventlet_handler.__file__
assert res.files("eventlet_handler").joinpath("py.typed").is_file(), "py.typed missing"
assert res.files("eventlet_handler.testing").joinpath("pytest_plugin.py").is_file()
dist = md.distribution("eventlet-handler")
groups = {(ep.group, ep.name) for ep in dist.entry_points}
for wanted in [("kazoo.handlers", "eventlet"), ("kazoo.handlers", "eventlet-shared"),
               ("kazoo.handlers", "eventlet-isolated"), ("tooz.backends", "zookeeper+eventlet"),
               ("pytest11", "eventlet_handler")]:
    assert wanted in groups, (wanted, sorted(groups))
assert load_handler("eventlet") is EventletHandler
handler = EventletHandler()
handler.start()
result = handler.async_result()
handler.spawn(result.set, 42)
assert result.get(timeout=10) == 42
handler.stop(timeout=10)
assert eventlet_handler.__version__ == dist.version, (eventlet_handler.__version__, dist.version)
print("wheel ok", dist.version)
"""


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, and the wheel built from it (``python -m build``'s own order), built from
    a copy of the tree without build leftovers: setuptools would otherwise take the file
    list of a stale ``*.egg-info/SOURCES.txt`` and hide a file MANIFEST.in misses."""
    import_or_skip("build")
    dist = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source") / "tree"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".compat", "*.egg-info", "build", "dist", "_build", "__pycache__", ".*_cache"))
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True, text=True, timeout=200,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    sdists = list(dist.glob("eventlet[-_]handler-*.tar.gz"))
    wheels = list(dist.glob("eventlet_handler-*-py3-none-any.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, list(dist.iterdir())
    return {"sdist": sdists[0], "wheel": wheels[0]}


def _version() -> str:
    scope: dict[str, str] = {}
    exec((ROOT / "eventlet_handler/_version.py").read_text(), scope)
    return scope["__version__"]


@pytest.mark.timeout(240)
def test_sdist_holds_the_tests_docs_and_changelog(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for wanted in ["README.md", "LICENSE", "MANIFEST.in", "Makefile", "setup.cfg",
                   "eventlet_handler/_version.py", "eventlet_handler/py.typed",
                   "tests/conftest.py", "tests/contract/test_handler.py", "tests/test_docs.py",
                   "docs/conf.py", "docs/index.rst", "docs/changelog.rst", "docs/_inv/kazoo.inv",
                   "examples/test_app_example.py", "benchmarks/results/latest.png", "tools/compat.py"]:
        assert wanted in names, f"{wanted} is missing from the sdist (MANIFEST.in)"
    leaked = sorted(n for n in names if n.startswith(("docs/_build/", ".compat/")) or "__pycache__" in n)
    assert not leaked, leaked


@pytest.mark.timeout(240)
def test_twine_accepts_the_sdist_and_the_wheel(dists: dict[str, Path]) -> None:
    pytest.importorskip("twine")
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists["sdist"]), str(dists["wheel"])],
        capture_output=True, text=True, timeout=120,
    )
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]


@pytest.mark.timeout(240)
def test_wheel_installs_and_works_outside_the_source_tree(tmp_path: Path, dists: dict[str, Path]) -> None:
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--target", str(site), str(dists["wheel"])],
        capture_output=True, text=True, timeout=120,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    # -s: no user site; PYTHONPATH puts the wheel's copy ahead of the editable one;
    # cwd outside the tree so the source checkout is not importable by accident.
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONWARNINGS="ignore")
    ran = subprocess.run(
        [sys.executable, "-s", "-c", CHECK, str(site)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert f"wheel ok {_version()}" in ran.stdout
