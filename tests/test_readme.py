"""The README stays true: its example test file is the one the suite runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_example(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README.md has no example block for {name}"
    return match.group(1)


def test_readme_example_is_the_file_in_examples() -> None:
    assert _readme_example("examples/test_app_example.py") == (ROOT / "examples/test_app_example.py").read_text()


@pytest.mark.timeout(120)
def test_readme_example_test_file_passes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=90",
         str(ROOT / "examples/test_app_example.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout


def test_readme_names_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci/run").read_text()
