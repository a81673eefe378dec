"""``make test-compat``: prove the supported range of kazoo, eventlet, tooz and Python.

Every combination gets its own virtualenv under ``.compat/<name>/`` (kept between runs,
rebuilt only when its pins or ``setup.cfg`` change) with this tree installed editable,
so it tests the code as it is now, and runs the contract suite plus a real-server
integration subset (CRUD, watches, pipelined ``get_async``, ``Lock``, TLS connect, the
tooz backend and a tooz lock) in one process, unpatched, ``-p no:randomly``. Each
combination's log goes to ``.compat/logs/<name>.log`` (not in git).

    python tools/compat.py               # the whole matrix (make test-compat)
    python tools/compat.py --corners     # oldest of each, newest of each (make test)
    python tools/compat.py --list        # print the combinations and exit

Each combination's latest result is kept in ``.compat/results/<name>.json``, so that
the matrix may be run in parts (``-k``, several processes); ``--write-table`` writes
``docs/compat-matrix.rst`` and the README's matrix section from the stored results of
every combination, and refuses when one has never run. Exit status 1 if any combination
failed or could not be set up; a Python that is not installed is reported as
untested, never as passed.

The pins are the newest release of each minor line as ``pip index versions`` listed
them on 2026-12-03, and each library's oldest supported release; ``setup.cfg``'s lower
bounds are the oldest pins (``tests/test_docs.py`` checks they agree).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPAT_DIR = ROOT / ".compat"
LOG_DIR = COMPAT_DIR / "logs"
RESULT_DIR = COMPAT_DIR / "results"  # one <name>.json per combination's latest run
TABLE_RST = ROOT / "docs" / "compat-matrix.rst"
README = ROOT / "README.md"
README_START, README_END = "<!-- compat-matrix:start -->", "<!-- compat-matrix:end -->"

KAZOO = ("2.9.0", "2.10.0", "2.11.0")
# The floor, 0.38.1, fixed the asyncio hub across several OS threads (eventlet #995), which
# isolated mode on that hub relies on; it runs in the oldest corner. The cross product
# uses the newest release of each minor line.
EVENTLET_FLOOR = "0.38.1"
EVENTLET = ("0.38.2", "0.39.1", "0.40.4", "0.41.3")
TOOZ_OLDEST, TOOZ_NEWEST = "7.0.0", "9.1.0"  # tooz 6.x imports oslo_utils.secretutils.md5, gone from current oslo.utils
# tooz 9 needs Python >= 3.11: on 3.10 the newest corner takes the newest tooz it can have.
TOOZ_NEWEST_FOR_PYTHON = {"3.10": "8.1.0"}
PYTHON_DEFAULT = f"{sys.version_info.major}.{sys.version_info.minor}"
PYTHON_OLDEST = "3.10"
PYTHONS_OTHER = ("3.10", "3.12", "3.13")  # besides PYTHON_DEFAULT; newer ones are not installed here
TEST_TOOLS = ("pytest>=7", "pytest-timeout>=2.1", "cryptography>=45")

SUBSET = (
    "tests/contract",
    "tests/integration/test_kazoo_client.py::test_crud_and_transaction",
    "tests/integration/test_kazoo_client.py::test_data_watch_sees_changes_in_order",
    "tests/integration/test_kazoo_client.py::test_child_watch_sees_every_list_growing",
    "tests/integration/test_kazoo_client.py::test_get_async_pipeline_completes_in_order",
    "tests/integration/test_kazoo_client.py::test_lock_contended_by_many_green_threads",
    "tests/integration/test_tls.py::test_tls_connect_crud_and_watch",
    "tests/integration/test_tooz.py::test_backend_runs_tooz_driver_on_our_handler_without_deprecation_warnings",
    "tests/integration/test_tooz.py::test_lock_contended_by_green_threads",
)


@dataclasses.dataclass(frozen=True)
class Combo:
    python: str
    kazoo: str
    eventlet: str
    tooz: str

    @property
    def name(self) -> str:
        return f"py{self.python}-kazoo{self.kazoo}-eventlet{self.eventlet}-tooz{self.tooz}"

    @property
    def pins(self) -> list[str]:
        return [f"kazoo=={self.kazoo}", f"eventlet=={self.eventlet}", f"tooz=={self.tooz}", *TEST_TOOLS]


def oldest(python: str = PYTHON_DEFAULT) -> Combo:
    return Combo(python, KAZOO[0], EVENTLET_FLOOR, TOOZ_OLDEST)


def newest(python: str = PYTHON_DEFAULT) -> Combo:
    return Combo(python, KAZOO[-1], EVENTLET[-1], TOOZ_NEWEST_FOR_PYTHON.get(python, TOOZ_NEWEST))


def matrix() -> list[Combo]:
    """Every kazoo x eventlet pair (newest tooz); the oldest corner (eventlet's floor, the
    oldest tooz); on the oldest Python both corners, on the other Pythons the newest."""
    combos = [Combo(PYTHON_DEFAULT, k, e, TOOZ_NEWEST) for k in KAZOO for e in EVENTLET]
    combos.append(oldest())
    for python in PYTHONS_OTHER:
        if python == PYTHON_DEFAULT:
            continue
        if python == PYTHON_OLDEST:
            combos.append(oldest(python))
        combos.append(newest(python))
    return combos


def corners() -> list[Combo]:
    return [oldest(), newest()]


@dataclasses.dataclass
class Outcome:
    combo: Combo
    status: str  # "passed", "failed", "setup failed", "untested"
    summary: str
    seconds: float


def _interpreter(python: str) -> str | None:
    """An interpreter of that version that runs: on PATH, or installed by pyenv but not
    active (its shim then exits non-zero)."""
    if python == PYTHON_DEFAULT:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{python}")] + sorted(str(p) for p in pyenv.glob(f"{python}.*/bin/python{python}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, timeout=60)
        if probe.returncode == 0 and probe.stdout.strip() == python:
            return candidate
    return None


def _fingerprint(combo: Combo) -> str:
    text = "\n".join(combo.pins) + (ROOT / "setup.cfg").read_text()
    return hashlib.sha256(text.encode()).hexdigest()


def _run(cmd: list[str], log, timeout: float, **kw) -> int:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    try:
        return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, **kw).returncode
    except subprocess.TimeoutExpired:
        log.write(f"timed out after {timeout} s\n")
        return -1


def _ensure_venv(combo: Combo, interpreter: str, log) -> Path | None:
    venv = COMPAT_DIR / combo.name
    marker = venv / ".installed"
    python = venv / "bin" / "python"
    if marker.exists() and marker.read_text() == _fingerprint(combo) and python.exists():
        log.write(f"reusing {venv}\n")
        return python
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [interpreter, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *combo.pins],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "-e", str(ROOT)],
    ]
    for step in steps:
        if _run(step, log, timeout=900) != 0:
            return None
    marker.write_text(_fingerprint(combo))
    return python


def _summary(log_path: Path) -> str:
    pattern = re.compile(r"^=*\s*\d+ (passed|failed|errors?|skipped)\b.* in [\d.]+s")
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if pattern.match(line)]
    return lines[-1].strip("= ") if lines else "no pytest summary"


def run_combo(combo: Combo) -> Outcome:
    started = time.monotonic()
    interpreter = _interpreter(combo.python)
    if interpreter is None:
        return Outcome(combo, "untested", f"python{combo.python} is not installed here", 0.0)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{combo.name}.log"
    with log_path.open("w") as log:
        python = _ensure_venv(combo, interpreter, log)
        if python is None:
            return Outcome(combo, "setup failed", f"see {log_path.relative_to(ROOT)}", time.monotonic() - started)
        env = dict(os.environ, EVENTLET_HANDLER_REQUIRE_ZOOKEEPER="1", PYTHONDONTWRITEBYTECODE="1")
        for name in ("EVENTLET_HUB", "EVENTLET_HANDLER_TEST_MONKEY_PATCH", "EVENTLET_HANDLER_MODE", "PYTHONPATH"):
            env.pop(name, None)
        cmd = [str(python), "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *SUBSET]
        code = _run(cmd, log, timeout=1200, cwd=ROOT, env=env)
    status = "passed" if code == 0 else "failed"
    return Outcome(combo, status, _summary(log_path), time.monotonic() - started)


def store(outcome: Outcome) -> None:
    RESULT_DIR.mkdir(parents=True, exist_ok=True)
    record = dict(dataclasses.asdict(outcome.combo), status=outcome.status, summary=outcome.summary,
                  seconds=round(outcome.seconds, 1), finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    (RESULT_DIR / f"{outcome.combo.name}.json").write_text(json.dumps(record, indent=2))


def load(combo: Combo) -> Outcome:
    path = RESULT_DIR / f"{combo.name}.json"
    if not path.exists():
        raise SystemExit(f"{combo.name} has never run: run python tools/compat.py -k '{re.escape(combo.name)}'")
    record = json.loads(path.read_text())
    return Outcome(combo, record["status"], record["summary"], record["seconds"])


def _rst_table(outcomes: list[Outcome], total: float) -> str:
    rows = [
        "..  Written by ``python tools/compat.py --write-table`` (``make test-compat``); do not edit.",
        "",
        f"Run of {time.strftime('%Y-%m-%d', time.gmtime())}: {len(outcomes)} combinations, "
        f"{total / 60:.1f} minutes of run time in all (the seconds below: creating the "
        "virtualenv, then the contract suite and the real-server subset against ZooKeeper 3.8, "
        "niced, on a shared 2-core machine).",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - Python",
        "     - kazoo",
        "     - eventlet",
        "     - tooz",
        "     - result",
        "     - seconds",
    ]
    for o in outcomes:
        rows += [f"   * - {o.combo.python}", f"     - {o.combo.kazoo}", f"     - {o.combo.eventlet}",
                 f"     - {o.combo.tooz}", f"     - {o.status}: {o.summary}", f"     - {o.seconds:.0f}"]
    return "\n".join(rows) + "\n"


def _markdown_table(outcomes: list[Outcome], total: float) -> str:
    pythons = sorted({o.combo.python for o in outcomes if o.status != "untested"})
    lines = [
        f"`make test-compat` ({time.strftime('%Y-%m-%d', time.gmtime())}, {len(outcomes)} combinations, "
        f"{total / 60:.1f} minutes of run time) runs the contract suite and a real-server subset in a fresh "
        "virtualenv per combination. On Python " + PYTHON_DEFAULT + ", kazoo x eventlet with tooz "
        + TOOZ_NEWEST + ":",
        "",
        "| kazoo \\ eventlet | " + " | ".join(EVENTLET) + " |",
        "|---|" + "---|" * len(EVENTLET),
    ]
    by_pair = {(o.combo.kazoo, o.combo.eventlet): o.status for o in outcomes
               if o.combo.python == PYTHON_DEFAULT and o.combo.tooz == TOOZ_NEWEST}
    for k in KAZOO:
        lines.append(f"| {k} | " + " | ".join(by_pair.get((k, e), "not run") for e in EVENTLET) + " |")
    others = [o for o in outcomes if not (o.combo.python == PYTHON_DEFAULT and o.combo.tooz == TOOZ_NEWEST)]
    lines.append("")
    lines.append("Also: " + "; ".join(
        f"Python {o.combo.python} + kazoo {o.combo.kazoo}, eventlet {o.combo.eventlet}, tooz {o.combo.tooz}: {o.status}"
        for o in others) + f". Tested Pythons: {', '.join(pythons)}; newer ones are untested.")
    return "\n".join(lines) + "\n"


def write_tables(outcomes: list[Outcome], total: float) -> None:
    TABLE_RST.write_text(_rst_table(outcomes, total))
    text = README.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {README_START} ... {README_END} section to write the matrix into")
    README.write_text(text[: start + len(README_START)] + "\n" + _markdown_table(outcomes, total) + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corners", action="store_true", help="only the oldest and the newest of each")
    parser.add_argument("--list", action="store_true", help="print the combinations and exit")
    parser.add_argument("--write-table", action="store_true", help="write docs/compat-matrix.rst and the README's matrix")
    parser.add_argument("-k", dest="only", default="", help="run only the combinations whose name matches this regex")
    parser.add_argument("--no-run", action="store_true", help="run nothing (with --write-table: tables from stored results)")
    args = parser.parse_args(argv)
    combos = [c for c in (corners() if args.corners else matrix()) if re.search(args.only, c.name)]
    if args.list:
        print("\n".join(c.name for c in combos))
        return 0
    started = time.monotonic()
    outcomes = []
    for combo in [] if args.no_run else combos:
        print(f"{combo.name} ...", flush=True)
        outcome = run_combo(combo)
        print(f"    {outcome.status} ({outcome.summary}) {outcome.seconds:.0f} s", flush=True)
        store(outcome)
        outcomes.append(outcome)
    print(f"{len(outcomes)} combinations in {(time.monotonic() - started) / 60:.1f} min")
    if args.write_table:
        if args.corners:
            raise SystemExit("--write-table writes the whole matrix, not the corners")
        stored = [load(combo) for combo in matrix()]
        write_tables(stored, sum(o.seconds for o in stored))
    failed = [o for o in outcomes if o.status in ("failed", "setup failed")]
    for o in failed:
        print(f"FAILED {o.combo.name}: {o.summary} (log: .compat/logs/{o.combo.name}.log)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
