"""``make mutants``: mutation testing of the core with cosmic-ray.

For each module in :data:`MODULES` (the one list of what is mutated and which tests
guard it), cosmic-ray puts one mutation at a time into a scratch copy of the package
(``build/mutants/<module>/``, never the work tree) and runs that module's tests in a
fresh subprocess, bounded by a per-mutant timeout. A mutant is *killed* when the
tests fail, *timed out* when they run past the bound (also a detection), and
*survived* when they pass. Survivors listed in ``mutants/equivalent.md`` (module,
operator and the mutated line) are equivalent mutants, with the reason written there.

Environment:

* ``MUTANTS_MODULES=_selfpipe,_wakepair``: run only these (default: all).
* ``MUTANTS_TIMEOUT=S``: the per-mutant bound (default: 3x the module's baseline
  run, at least 20 s).

Writes ``build/mutants/survivors.md`` (each survivor with its diff) and prints per
module and overall ``mutants: killed K of N (S survived, T timed out)``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "eventlet_handler"
BUILD = ROOT / "build" / "mutants"
EQUIVALENT = ROOT / "mutants" / "equivalent.md"

# module (path under eventlet_handler/, without .py) -> the tests that guard it.
# Tight on purpose: each mutant runs these with -x, so a module's run is minutes.
MODULES: Dict[str, List[str]] = {
    "_selfpipe": ["tests/contract/test_selfpipe.py", "tests/contract/test_bridge.py", "tests/contract/test_wakepair.py"],
    "_task": ["tests/contract/test_handler.py::test_EventletHandler_spawn_runs_on_home_hub_and_joins_from_caller",
              "tests/contract/test_handler.py::test_EventletHandler_spawned_exception_is_kept_and_logged",
              "tests/contract/test_claims.py"],
    "_wakepair": ["tests/contract/test_wakepair_rules.py", "tests/contract/test_wakepair.py"],
    "_worker": ["tests/contract/test_worker.py", "tests/test_stats.py", "tests/contract/test_handler.py",
                "tests/contract/test_claims.py"],
    "_bridge": ["tests/contract/test_bridge.py", "tests/contract/test_handler.py"],
    "_parking": ["tests/contract/test_primitives.py", "tests/contract/test_result.py",
                 "tests/contract/test_idle_wait.py"],
    "result": ["tests/contract/test_result_surface.py", "tests/contract/test_result.py"],
    "_select": ["tests/contract/test_select.py", "tests/contract/test_select_idle.py",
                "tests/contract/test_wakepair.py", "tests/integration/test_starvation.py",
                "tests/integration/test_isolated.py"],
    "_primitives": ["tests/contract/test_primitives.py"],
    "handler": ["tests/contract/test_handler.py", "tests/contract/test_claims.py", "tests/integration/test_isolated.py"],
    "_hubthread": ["tests/contract/test_handler.py", "tests/contract/test_claims.py", "tests/integration/test_isolated.py"],
    "_home": ["tests/contract/test_handler.py", "tests/contract/test_claims.py", "tests/integration/test_lifecycle.py"],
    "_hubs": ["tests/contract/test_handler.py", "tests/contract/test_bridge.py", "tests/integration/test_isolated.py"],
}

PYTEST_FLAGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--no-header", "-rN"]


class Result(NamedTuple):
    module: str
    killed: int
    survived: List[dict]
    timed_out: int
    equivalent: int
    seconds: float

    @property
    def total(self) -> int:
        return self.killed + len(self.survived) + self.timed_out


def _equivalents() -> Set[Tuple[str, str, str]]:
    """(module, operator, mutated line) of each mutant written down as equivalent.

    An entry in equivalent.md is a list item: ``- `module` `operator` `mutated line` — reason``.
    """
    keys = set()
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            match = re.match(r"- `([^`]+)` `([^`]+)` `(.+?)` (—|--) ", line)
            if match:
                keys.add((match.group(1), match.group(2), match.group(3).strip()))
    return keys


def _mutated_line(diff: str) -> str:
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    return ""


def _scratch(module: str) -> Path:
    """A fresh copy of the package and tests for this module's mutants."""
    work = BUILD / module
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / PACKAGE, work / PACKAGE, ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    shutil.copy(ROOT / "setup.cfg", work / "setup.cfg")
    return work


def _test_command(tests: List[str], per_test_timeout: float) -> List[str]:
    return [sys.executable, "-m", "pytest", *PYTEST_FLAGS, f"--timeout={int(per_test_timeout)}", *tests]


def _config(work: Path, module: str, command: List[str], timeout: float) -> Path:
    config = work / "cosmic-ray.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{PACKAGE}/{module}.py"\n'
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(' '.join(command))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    return config


def run_module(module: str, env: Dict[str, str]) -> Result:
    tests = MODULES[module]
    if not (ROOT / PACKAGE / f"{module}.py").exists():
        raise SystemExit(f"mutants: {PACKAGE}/{module}.py does not exist: update MODULES in {__file__}")
    work = _scratch(module)
    env = dict(env, PYTHONPATH=str(work), PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    baseline = subprocess.run(_test_command(tests, 120), cwd=work, env=env, capture_output=True, text=True)
    base_seconds = time.monotonic() - started
    if baseline.returncode != 0:
        raise SystemExit(f"mutants: {module}'s tests fail without any mutant:\n{baseline.stdout[-3000:]}")
    timeout = float(os.environ.get("MUTANTS_TIMEOUT") or max(20.0, 3 * base_seconds))
    command = _test_command(tests, timeout)
    config = _config(work, module, command, timeout)
    session = work / "session.sqlite"
    cosmic_ray = [sys.executable, "-m", "cosmic_ray.cli"]
    subprocess.run([*cosmic_ray, "init", str(config), str(session)], cwd=work, env=env, check=True)
    subprocess.run([*cosmic_ray, "exec", str(config), str(session)], cwd=work, env=env, check=True)
    dump = subprocess.run([*cosmic_ray, "dump", str(session)], cwd=work, env=env, check=True,
                          capture_output=True, text=True).stdout
    equivalents = _equivalents()
    killed = timed_out = equivalent = 0
    survived: List[dict] = []
    for line in dump.splitlines():
        item, result = json.loads(line)
        if result is None:
            raise SystemExit(f"mutants: {module}: a mutant was not run: {item}")
        mutation = item["mutations"][0]
        if result.get("test_outcome") == "survived":
            key = (module, mutation["operator_name"], _mutated_line(result.get("diff") or ""))
            if key in equivalents:
                equivalent += 1
            survived.append(dict(mutation, diff=result.get("diff") or "", equivalent=key in equivalents))
        elif result.get("output") == "timeout":
            timed_out += 1
        else:
            killed += 1
    return Result(module, killed, survived, timed_out, equivalent, time.monotonic() - started)


def summary(label: str, killed: int, total: int, survived: int, timed_out: int, equivalent: int) -> str:
    share = 100.0 * (killed + timed_out) / total if total else 100.0
    return (f"{label}mutants: killed {killed} of {total} ({survived} survived, {timed_out} timed out); "
            f"{share:.1f}% detected, {equivalent} of the survivors listed equivalent")


def write_survivors(results: List[Result]) -> Path:
    out = BUILD / "survivors.md"
    lines = ["# Surviving mutants", ""]
    for result in results:
        for mutant in result.survived:
            tag = " (listed equivalent)" if mutant["equivalent"] else ""
            lines += [f"## {result.module} {mutant['operator_name']} line {mutant['start_pos'][0]} "
                      f"in {mutant.get('definition_name')}{tag}", "", "```diff", mutant["diff"].rstrip(), "```", ""]
    out.write_text("\n".join(lines))
    return out


def main() -> int:
    wanted = [m for m in os.environ.get("MUTANTS_MODULES", "").replace(" ", "").split(",") if m] or list(MODULES)
    unknown = [m for m in wanted if m not in MODULES]
    if unknown:
        raise SystemExit(f"mutants: unknown module(s) {unknown}; known: {', '.join(MODULES)}")
    BUILD.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("EVENTLET_HUB", "EVENTLET_HANDLER_TEST_MONKEY_PATCH")}
    results = []
    for module in wanted:
        result = run_module(module, env)
        results.append(result)
        print(summary(f"{module} ({result.seconds:.0f} s): ", result.killed, result.total,
                      len(result.survived), result.timed_out, result.equivalent), flush=True)
    out = write_survivors(results)
    print(f"survivors with their diffs: {out.relative_to(ROOT)}")
    print(summary("", sum(r.killed for r in results), sum(r.total for r in results),
                  sum(len(r.survived) for r in results), sum(r.timed_out for r in results),
                  sum(r.equivalent for r in results)))
    unexplained = sum(len(r.survived) - r.equivalent for r in results)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
