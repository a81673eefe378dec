"""The package keeps full type hints (it ships py.typed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import import_or_skip

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(180)
def test_package_type_checks_with_every_def_annotated() -> None:
    import_or_skip("mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "eventlet_handler", "--ignore-missing-imports",
         "--disallow-untyped-defs", "--disallow-incomplete-defs", "--no-error-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
