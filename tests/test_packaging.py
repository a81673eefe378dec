"""``python -m build`` makes a wheel that installs and works outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import import_or_skip

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
print("wheel ok", dist.version)
"""


@pytest.mark.timeout(240)
def test_wheel_builds_installs_and_works_outside_the_source_tree(tmp_path: Path) -> None:
    import_or_skip("build")
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True, text=True, timeout=200,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = list(dist.glob("eventlet_handler-*-py3-none-any.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--target", str(site), str(wheels[0])],
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
    assert "wheel ok 0.1.0" in ran.stdout
