"""Every code sample in ``docs/`` runs, against a real ZooKeeper where it talks to one.

Rules for the docs (this module enforces them):

1. A sample is a ``.. code-block:: python`` directive. The python blocks of a page run
   in order, in one fresh interpreter, so a later block may use an earlier one's names.
2. An rst comment ``.. docs-test: new-process`` before a block starts a new interpreter
   (e.g. for ``eventlet.monkey_patch()``, which must come first); ``.. docs-test:
   pytest`` makes the block a test file of its own, run by pytest with this package's
   plugin.
3. ``127.0.0.1:2181`` in a sample is replaced by the test server's address.
4. Other blocks are ``console`` (commands) or ``ini`` (configuration); bare ``::``
   literal blocks are not allowed (they would be samples nobody runs), and
   ``literalinclude`` may only show files the suite runs elsewhere.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.glob("*.rst"))
PLACEHOLDER_HOSTS = "127.0.0.1:2181"
LANGUAGES = {"python", "console", "ini"}
# literalinclude targets and the test that runs each one.
INCLUDED_AND_RUN = {
    "examples/test_app_example.py": "tests/test_readme.py",
    "examples/asyncio_example.py": "tests/test_aio_example.py",
}
_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. code-block:: *(?P<lang>\S+)\s*$")
_MARK = re.compile(r"^ *\.\. docs-test: *(?P<mark>\S+)\s*$")


@dataclasses.dataclass
class Sample:
    page: str
    line: int
    language: str
    mark: str  # "", "new-process" or "pytest"
    code: str


def _block_body(lines: list[str], start: int, indent: int) -> str:
    """The directive's content: after its options and a blank line, the lines indented
    deeper than the directive, until the first line that is not."""
    i = start
    while i < len(lines) and lines[i].strip().startswith(":"):
        i += 1
    body: list[str] = []
    for line in lines[i:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
    text = "\n".join(body).strip("\n")
    depth = min(len(l) - len(l.lstrip()) for l in text.splitlines() if l.strip())
    return "\n".join(l[depth:] for l in text.splitlines()) + "\n"


def samples(page: Path) -> list[Sample]:
    lines = page.read_text().splitlines()
    found, mark = [], ""
    for number, line in enumerate(lines):
        marked = _MARK.match(line)
        if marked:
            mark = marked.group("mark")
            continue
        directive = _DIRECTIVE.match(line)
        if directive:
            body = _block_body(lines, number + 1, len(directive.group("indent")))
            found.append(Sample(page.name, number + 1, directive.group("lang"), mark, body))
            mark = ""
    return found


def scripts(page: Path) -> list[tuple[str, str, str]]:
    """``(id, kind, code)`` per interpreter the page's python samples run in."""
    groups: list[tuple[str, str, list[str]]] = []
    for sample in samples(page):
        if sample.language != "python":
            continue
        if sample.mark not in ("", "new-process", "pytest"):
            raise AssertionError(f"{page.name}:{sample.line}: unknown docs-test mark {sample.mark!r}")
        if sample.mark or not groups or groups[-1][1] == "pytest":
            groups.append((f"{page.stem}:{sample.line}", sample.mark or "script", []))
        groups[-1][2].append(sample.code)
    return [(ident, kind, "\n".join(codes)) for ident, kind, codes in groups]


ALL_SCRIPTS = [script for page in PAGES for script in scripts(page)]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    for name in ("EVENTLET_HUB", "EVENTLET_HANDLER_TEST_MONKEY_PATCH", "EVENTLET_HANDLER_MODE",
                 "EVENTLET_HANDLER_SLOW_CALLBACK_THRESHOLD"):
        env.pop(name, None)
    return env


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("ident", "kind", "code"), ALL_SCRIPTS, ids=[s[0] for s in ALL_SCRIPTS])
def test_docs_sample_runs(ident: str, kind: str, code: str, zookeeper_server: Any, tmp_path: Path) -> None:
    code = code.replace(PLACEHOLDER_HOSTS, zookeeper_server.hosts)
    if kind == "pytest":
        path = tmp_path / "test_sample.py"
        path.write_text(code)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=90", str(path)]
    else:
        path = tmp_path / "sample.py"
        path.write_text(code)
        cmd = [sys.executable, str(path)]
    ran = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=110)
    assert ran.returncode == 0, f"{ident} failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    if kind == "pytest":
        assert re.search(r"\b\d+ passed\b", ran.stdout) and "failed" not in ran.stdout, ran.stdout[-2000:]


def test_every_page_has_only_known_blocks_and_no_bare_literal_blocks() -> None:
    for page in PAGES:
        for sample in samples(page):
            assert sample.language in LANGUAGES, f"{page.name}:{sample.line}: code-block {sample.language}"
        for number, line in enumerate(page.read_text().splitlines(), 1):
            stripped = line.rstrip()
            if stripped.endswith("::") and not stripped.lstrip().startswith(".."):
                raise AssertionError(f"{page.name}:{number}: a bare literal block; use .. code-block:: python")


def test_samples_were_found() -> None:
    # Guards the parser: the guide's pages hold samples, and each script has code in it.
    assert len(ALL_SCRIPTS) >= 10, [s[0] for s in ALL_SCRIPTS]
    assert all(code.strip() for _, _, code in ALL_SCRIPTS)
    assert {kind for _, kind, _ in ALL_SCRIPTS} == {"script", "new-process", "pytest"}


def test_literalincludes_show_only_files_the_suite_runs() -> None:
    for page in PAGES:
        for target in re.findall(r"^\.\. literalinclude:: *(\S+)", page.read_text(), re.M):
            relative = (DOCS / target).resolve().relative_to(ROOT).as_posix()
            assert relative in INCLUDED_AND_RUN, f"{page.name} shows {relative}, which no test runs"
            runner = (ROOT / INCLUDED_AND_RUN[relative]).read_text()
            assert relative in runner, f"{INCLUDED_AND_RUN[relative]} no longer runs {relative}"


# -- the tested matrix ---------------------------------------------------------------


def _compat() -> Any:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import compat
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return compat


def _lower_bounds() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requirements = cfg["options"]["install_requires"].split() + cfg["options.extras_require"]["tooz"].split()
    bounds = {}
    for requirement in requirements:
        match = re.fullmatch(r"([\w.-]+)>=([\d.]+)", requirement)
        assert match, f"setup.cfg: {requirement!r} is not name>=version"
        bounds[match.group(1)] = match.group(2)
    return bounds


def test_setup_cfg_lower_bounds_are_the_oldest_versions_the_matrix_runs() -> None:
    compat = _compat()
    bounds = _lower_bounds()
    assert bounds == {"kazoo": compat.KAZOO[0], "eventlet": compat.EVENTLET_FLOOR, "tooz": compat.TOOZ_OLDEST}
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["options"]["python_requires"].strip() == f">={compat.PYTHON_OLDEST}"


def test_docs_and_readme_show_the_matrix_the_runner_runs() -> None:
    compat = _compat()
    table = (DOCS / "compat-matrix.rst").read_text()
    rows = re.findall(r"\* - (\S+)\n +- (\S+)\n +- (\S+)\n +- (\S+)\n +- passed", table)
    assert sorted(rows) == sorted((c.python, c.kazoo, c.eventlet, c.tooz) for c in compat.matrix()), (
        "docs/compat-matrix.rst is not a passing run of tools/compat.py's matrix: run make test-compat")
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(compat.README_START):readme.index(compat.README_END)]
    for eventlet in compat.EVENTLET:
        assert eventlet in section
    for kazoo in compat.KAZOO:
        assert re.search(rf"\| {re.escape(kazoo)} \|( passed \|)+$", section, re.M), section
