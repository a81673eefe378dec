"""``make mutants``: mutation testing of the core with cosmic-ray.

For each module in :data:`MODULES` (the one list of what is mutated and which tests
guard it), cosmic-ray puts one mutation at a time into a scratch copy of the package
(``build/mutants/<module>/``, never the work tree) and runs that module's tests in a
fresh subprocess, bounded by a per-mutant timeout. A mutant is *killed* when the
tests fail, *timed out* when they run past the bound (also a detection), and
*survived* when they pass. Mutants inside type annotations are not run nor counted
(never evaluated: see :func:`_annotation_spans`). Survivors listed in ``mutants/equivalent.md`` (module,
operator and the mutated line) are equivalent mutants, with the reason written there.

Environment:

* ``MUTANTS_MODULES=_selfpipe,_wakepair``: run only these (default: all).
* ``MUTANTS_TIMEOUT=S``: the per-mutant bound (default: 3x the module's baseline
  run, at least 20 s).
* ``MUTANTS_RERUN=survivors``: keep each module's last session and run only its
  survivors again, against the current tests (after adding tests that target them;
  a test added can only kill more, so the other results stand).

Writes ``build/mutants/survivors.md`` (each survivor with its diff) and prints per
module and overall ``mutants: killed K of N (S survived, T timed out)``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple

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
    "_bridge": ["tests/contract/test_bridge.py", "tests/contract/test_idle_wait.py", "tests/contract/test_parking.py",
                "tests/contract/test_handler.py"],
    "_parking": ["tests/contract/test_parking.py", "tests/contract/test_primitives.py", "tests/contract/test_idle_wait.py",
                 "tests/contract/test_result.py"],
    "result": ["tests/contract/test_result_surface.py", "tests/contract/test_result.py",
               "tests/contract/test_aio.py::test_AsyncResult_await_gets_what_caller_set",
               "tests/contract/test_aio.py::test_AsyncResult_await_of_ready_result_returns_at_once"],
    # _select: 270 mutants; the wake pair's own tests, the starvation test and test_isolated
    # (ZooKeeper per mutant, 55 s more) would make its run several hours on 2 shared cores.
    "_select": ["tests/contract/test_select_rules.py", "tests/contract/test_select_idle.py",
                "tests/contract/test_select.py", "tests/contract/test_select_pollers.py",
                "tests/contract/test_read_ahead.py"],
    "_readahead": ["tests/contract/test_read_ahead.py"],
    "_primitives": ["tests/contract/test_primitives.py"],
    # handler: 280 mutants; test_isolated (10 s and a ZooKeeper server per mutant) would
    # make the run about 2 h on 2 shared cores; the contract tests cover the lifecycle.
    "handler": ["tests/contract/test_handler.py", "tests/contract/test_claims.py", "tests/test_bad_input.py",
                "tests/test_stats.py"],
    "_hubthread": ["tests/contract/test_hubthread.py", "tests/contract/test_hubs.py", "tests/contract/test_handler.py",
                   "tests/contract/test_claims.py", "tests/integration/test_isolated.py"],
    "_home": ["tests/contract/test_handler.py", "tests/contract/test_claims.py", "tests/test_stats.py",
              "tests/test_bad_input.py", "tests/integration/test_lifecycle.py"],
    # hub_is_idle and runs_coroutine live in _hubs since main's merge: the parking tests guard them.
    "_hubs": ["tests/contract/test_hubs.py", "tests/contract/test_bridge.py", "tests/contract/test_idle_wait.py",
              "tests/contract/test_parking.py", "tests/contract/test_handler.py",
              "tests/contract/test_aio.py::test_blocking_call_in_coroutine_on_asyncio_hub_names_await",
              "tests/integration/test_isolated.py"],
}

PYTEST_FLAGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--no-header", "-rN"]


class Result(NamedTuple):
    module: str
    killed: int
    survived: List[Dict[str, Any]]
    timed_out: int
    equivalent: int
    annotations: int  # mutants inside type annotations: not run, not counted
    seconds: float

    @property
    def total(self) -> int:
        return self.killed + len(self.survived) + self.timed_out


def _equivalents() -> Set[Tuple[str, str, str, str]]:
    """(module, operator, mutated line, definition or "") of each mutant written down as
    equivalent.

    An entry in equivalent.md is a list item: ``- `module` `operator` `mutated line` — reason``,
    or ``- `module` `operator` `mutated line` in `definition` — reason`` where the line alone
    would also match mutants elsewhere in the module.
    """
    keys = set()
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            match = re.match(r"- `([^`]+)` `([^`]+)` `(.+?)`(?: in `([^`]+)`)? (—|--) ", line)
            if match:
                keys.add((match.group(1), match.group(2), match.group(3).strip(), match.group(4) or ""))
    return keys


def _is_equivalent(keys: Set[Tuple[str, str, str, str]], module: str, mutation: Dict[str, Any], line: str) -> bool:
    operator = mutation["operator_name"]
    return (module, operator, line, "") in keys or (module, operator, line, mutation.get("definition_name") or "") in keys


def _annotation_spans(source: str) -> List[Tuple[Tuple[int, int], Tuple[int, int]]]:
    """(start, end) (row from 1, column from 0) of every type annotation in ``source``.

    Every module of the package has ``from __future__ import annotations``: its
    annotations stay strings that nothing evaluates at run time, so a mutant inside
    one (``Bridge | None`` -> ``Bridge << None``) behaves exactly like the original.
    ``mypy --strict`` (``tests/test_typing.py``, part of ``make test``) checks them.
    """
    assert "from __future__ import annotations" in source, "annotations would be evaluated"
    spans = []
    for node in ast.walk(ast.parse(source)):
        annotations: List[Optional[ast.expr]] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            annotations += [node.returns, *(arg.annotation for arg in every if arg is not None)]
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        for annotation in annotations:
            if annotation is not None and annotation.end_lineno is not None:
                spans.append(((annotation.lineno, annotation.col_offset),
                              (annotation.end_lineno, annotation.end_col_offset or 0)))
    return spans


def _in_annotation(position: List[int], spans: List[Tuple[Tuple[int, int], Tuple[int, int]]]) -> bool:
    return any(start <= (position[0], position[1]) < end for start, end in spans)


def _skip_annotation_mutants(session: Path, spans: List[Tuple[Tuple[int, int], Tuple[int, int]]]) -> None:
    """Mark the mutants inside annotations as skipped before ``exec``: never run."""
    from cosmic_ray.work_db import use_db  # type: ignore[import-untyped]
    from cosmic_ray.work_item import WorkerOutcome, WorkResult  # type: ignore[import-untyped]

    with use_db(str(session)) as db:
        for item in db.pending_work_items:
            if all(_in_annotation(list(m.start_pos), spans) for m in item.mutations):
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))


def _mutated_line(diff: str) -> str:
    """The diff's first added line, stripped; for a pure deletion (a removed decorator)
    ``removed: `` and the first removed line."""
    lines = diff.splitlines()
    for line in lines:
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    for line in lines:
        if line.startswith("-") and not line.startswith("---") and line[1:].strip():
            return "removed: " + line[1:].strip()
    return ""


def _scratch(module: str, keep: Optional[Path] = None) -> Path:
    """A fresh copy of the package and tests for this module's mutants (``keep``: a
    file of the old scratch directory to carry over, the session of a re-run)."""
    work = BUILD / module
    kept = keep.read_bytes() if keep is not None else None
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if keep is not None and kept is not None:
        keep.write_bytes(kept)
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


def run_module(module: str, env: Dict[str, str], rerun: bool = False) -> Result:
    """Mutate ``module`` and run its tests against each mutant.

    ``rerun``: keep the last run's session and run again only its survivors, against
    fresh copies of the package and tests (a test added since can only kill more).
    """
    tests = MODULES[module]
    if not (ROOT / PACKAGE / f"{module}.py").exists():
        raise SystemExit(f"mutants: {PACKAGE}/{module}.py does not exist: update MODULES in {__file__}")
    session = BUILD / module / "session.sqlite"
    if rerun and not session.exists():
        raise SystemExit(f"mutants: MUTANTS_RERUN=survivors but {module} has no earlier session ({session})")
    work = _scratch(module, keep=session if rerun else None)
    env = dict(env, PYTHONPATH=str(work), PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    baseline = subprocess.run(_test_command(tests, 120), cwd=work, env=env, capture_output=True, text=True)
    base_seconds = time.monotonic() - started
    if baseline.returncode != 0:
        raise SystemExit(f"mutants: {module}'s tests fail without any mutant:\n{baseline.stdout[-3000:]}")
    timeout = float(os.environ.get("MUTANTS_TIMEOUT") or max(20.0, 3 * base_seconds))
    command = _test_command(tests, timeout)
    config = _config(work, module, command, timeout)
    cosmic_ray = [sys.executable, "-m", "cosmic_ray.cli"]
    if rerun:
        with sqlite3.connect(session) as db:  # pending again: exec runs only these
            db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    else:
        subprocess.run([*cosmic_ray, "init", str(config), str(session)], cwd=work, env=env, check=True)
    spans = _annotation_spans((ROOT / PACKAGE / f"{module}.py").read_text())
    _skip_annotation_mutants(session, spans)
    subprocess.run([*cosmic_ray, "exec", str(config), str(session)], cwd=work, env=env, check=True)
    dump = subprocess.run([*cosmic_ray, "dump", str(session)], cwd=work, env=env, check=True,
                          capture_output=True, text=True).stdout
    return tally(module, dump, spans, time.monotonic() - started)


def tally(module: str, dump: str, spans: List[Tuple[Tuple[int, int], Tuple[int, int]]], seconds: float) -> Result:
    """Count a session's outcomes (``dump``: the output of ``cosmic-ray dump``)."""
    equivalents = _equivalents()
    killed = timed_out = equivalent = annotations = 0
    survived: List[Dict[str, Any]] = []
    for line in dump.splitlines():
        item, result = json.loads(line)
        if result is None:
            raise SystemExit(f"mutants: {module}: a mutant was not run: {item}")
        mutation = item["mutations"][0]
        if _in_annotation(mutation["start_pos"], spans):  # skipped, or run by an older session
            annotations += 1
        elif result.get("worker_outcome") == "skipped":
            raise SystemExit(f"mutants: {module}: a mutant was skipped outside an annotation: {item}")
        elif result.get("test_outcome") == "survived":
            listed = _is_equivalent(equivalents, module, mutation, _mutated_line(result.get("diff") or ""))
            equivalent += listed
            survived.append(dict(mutation, diff=result.get("diff") or "", equivalent=listed))
        elif result.get("output") == "timeout":
            timed_out += 1
        else:
            killed += 1
    return Result(module, killed, survived, timed_out, equivalent, annotations, seconds)


def summary(label: str, killed: int, total: int, survived: int, timed_out: int, equivalent: int) -> str:
    """The summary line; the score counts a timeout as a detection and leaves the
    mutants listed equivalent out of the denominator (nothing can detect them)."""
    detectable = total - equivalent
    share = 100.0 * (killed + timed_out) / detectable if detectable else 100.0
    return (f"{label}mutants: killed {killed} of {total} ({survived} survived, {timed_out} timed out); "
            f"{equivalent} of the survivors listed equivalent; "
            f"{share:.1f}% of the other {detectable} detected")


def _survivor_lines(result: Result) -> List[str]:
    lines = []
    for mutant in result.survived:
        tag = " (listed equivalent)" if mutant["equivalent"] else ""
        lines += [f"## {result.module} {mutant['operator_name']} line {mutant['start_pos'][0]} "
                  f"in {mutant.get('definition_name')}{tag}", "", "```diff", mutant["diff"].rstrip(), "```", ""]
    return lines


def write_survivors(results: List[Result]) -> Path:
    """survivors.md for this run, and survivors-<module>.md per module (kept across runs of others)."""
    out = BUILD / "survivors.md"
    lines = ["# Surviving mutants", ""]
    for result in results:
        lines += _survivor_lines(result)
        (BUILD / f"survivors-{result.module}.md").write_text(
            "\n".join([f"# Surviving mutants of {result.module}", "", *_survivor_lines(result)]))
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
    rerun = os.environ.get("MUTANTS_RERUN", "")
    if rerun not in ("", "survivors"):
        raise SystemExit(f"mutants: MUTANTS_RERUN must be 'survivors' or empty, not {rerun!r}")
    for module in wanted:
        result = run_module(module, env, rerun=bool(rerun))
        results.append(result)
        print(summary(f"{module} ({result.seconds:.0f} s): ", result.killed, result.total,
                      len(result.survived), result.timed_out, result.equivalent)
              + f"; {result.annotations} in annotations not counted", flush=True)
    out = write_survivors(results)
    print(f"survivors with their diffs: {out.relative_to(ROOT)}")
    print(summary("", sum(r.killed for r in results), sum(r.total for r in results),
                  sum(len(r.survived) for r in results), sum(r.timed_out for r in results),
                  sum(r.equivalent for r in results)))
    unexplained = sum(len(r.survived) - r.equivalent for r in results)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
