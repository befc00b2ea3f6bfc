"""Prove the checker tests bite: disable each refusal in helpers/exercises, one at a time.

A checker refuses a wrong answer in two ways: ``require(condition, hint)`` and
``raise Hint(...)``. For each one, this script makes a copy of the course in which that one
refusal is disabled (the condition becomes ``True``, the raise becomes ``pass``), runs the
tests of that notebook's checkers against the copy, and expects them to FAIL. A refusal whose
disabling no test notices is a hole: a wrong answer it alone stops would be called correct.

    python tools/mutate_checkers.py             # every module (about 30 minutes on 2 cores)
    python tools/mutate_checkers.py nb03 nb05   # only those modules
    python tools/mutate_checkers.py --list      # the refusals, without running anything
    python tools/mutate_checkers.py --lines nb02.py:30   # re-check one, after adding its test

Exits 1 if any refusal survives, naming it with its file and line.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "helpers" / "exercises"


@dataclass(frozen=True)
class Refusal:
    """One place where a checker refuses an answer, and its source with that place disabled."""

    module: str  # "nb03", or "__init__" for what every checker shares
    line: int
    text: str  # the refusal's first line, to name it
    mutant: str  # the module's whole source, this refusal disabled


def _replace(source: str, node: ast.AST, replacement: str) -> str:
    """``source`` with the exact text of ``node`` replaced by ``replacement``."""
    lines = source.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: node.lineno - 1]) + node.col_offset
    end = sum(len(line) for line in lines[: node.end_lineno - 1]) + node.end_col_offset
    return source[:start] + replacement + source[end:]


def refusals(path: Path) -> list[Refusal]:
    """Every ``require(...)`` call and ``raise Hint(...)`` statement in one module."""
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "require"
            and node.args
        ):
            mutant = _replace(source, node.args[0], "True")
        elif (
            isinstance(node, ast.Raise)
            and isinstance(node.exc, ast.Call)
            and isinstance(node.exc.func, ast.Name)
            and node.exc.func.id == "Hint"
        ):
            mutant = _replace(source, node, "pass")
        else:
            continue
        text = source.splitlines()[node.lineno - 1].strip()
        found.append(Refusal(path.stem, node.lineno, text, mutant))
    return sorted(found, key=lambda refusal: refusal.line)


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def checkers_reaching(path: Path, line: int) -> set[str]:
    """The checkers of a module whose run can reach ``line``: the function holding it, and
    every function of the module that calls one of those, up to the ``@checker`` ones."""
    functions = {
        node.name: node
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    reached = {name for name, node in functions.items() if node.lineno <= line <= node.end_lineno}
    while True:
        callers = {name for name, node in functions.items() if _names_in(node) & reached}
        if callers <= reached:
            break
        reached |= callers
    return {
        name
        for name in reached
        if "checker" in _names_in(ast.Module(functions[name].decorator_list, []))
    }


def covering_tests(refusal: Refusal) -> list[str]:
    """The tests that must notice ``refusal`` disabled: those that call a checker reaching it
    (for what every checker shares, the tests of those parts themselves)."""
    files = sorted((ROOT / "tests").glob("test_exercises_*.py"))
    if refusal.module == "__init__":  # tried directly, in every state a run can be in
        return ["tests/test_exercises_common.py"]
    checkers = checkers_reaching(EXERCISES / f"{refusal.module}.py", refusal.line)
    selected = []
    for path in files:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                if _names_in(node) & checkers:
                    selected.append(f"tests/{path.name}::{node.name}")
    return selected


def copy_course(folder: Path) -> None:
    """What the checker tests need: the helpers, the tests and the project settings."""
    for name in ("helpers", "tests", "tools"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.in", "requirements.txt"):
        shutil.copy2(ROOT / name, folder / name)


def run_tests(folder: Path, test_files: list[str]) -> tuple[bool, float]:
    """Run ``test_files`` in ``folder``'s copy; whether they passed, and how long they took."""
    # The copy's helpers come first on the path, before the course's own installed ones.
    env = {**os.environ, "PYTHONPATH": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    began = time.monotonic()
    result = subprocess.run(
        [*command, *test_files],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    return result.returncode == 0, time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="nb00 ... nb13, __init__ (default: all)")
    parser.add_argument("--list", action="store_true", help="list the refusals, run nothing")
    parser.add_argument(
        "--lines", help="only these refusals, as listed: nb02.py:30,nb05.py:98 (a re-check)"
    )
    args = parser.parse_args(argv)
    paths = sorted(EXERCISES.glob("*.py"))
    if args.modules:
        paths = [p for p in paths if p.stem in args.modules]
        if not paths:
            parser.error(f"no module of helpers/exercises matches {args.modules}")
    todo = [refusal for path in paths for refusal in refusals(path)]
    if args.lines:
        wanted = set(args.lines.split(","))
        todo = [r for r in todo if f"{r.module}.py:{r.line}" in wanted]
    if args.list:
        for refusal in todo:
            print(f"{refusal.module}.py:{refusal.line}: {refusal.text}")
        print(f"{len(todo)} refusals")
        return 0
    survivors = []
    with tempfile.TemporaryDirectory(prefix="course-mutants-") as tmp:
        folder = Path(tmp)
        copy_course(folder)
        target = folder / "helpers" / "exercises"
        every_test = sorted({test for refusal in todo for test in covering_tests(refusal)})
        passed, seconds = run_tests(folder, every_test)  # unmutated, they must pass first
        if not passed:
            print("the checker tests fail without any mutation: fix them first")
            return 2
        print(f"{len(every_test)} tests pass unmutated ({seconds:.0f} s)", flush=True)
        for number, refusal in enumerate(todo, 1):
            module_file = target / f"{refusal.module}.py"
            original = module_file.read_text()
            module_file.write_text(refusal.mutant)
            tests = covering_tests(refusal)
            if not tests:
                print(f"no test calls a checker that reaches {refusal.module}.py:{refusal.line}")
                survivors.append(refusal)
                continue
            try:
                passed, seconds = run_tests(folder, tests)
            finally:
                module_file.write_text(original)
            verdict = "SURVIVED" if passed else "caught"
            print(
                f"[{number}/{len(todo)}] {verdict:8} {refusal.module}.py:{refusal.line} "
                f"({seconds:.0f} s): {refusal.text}",
                flush=True,
            )
            if passed:
                survivors.append(refusal)
    print(f"\n{len(todo) - len(survivors)} of {len(todo)} refusals caught by the tests")
    for refusal in survivors:
        print(f"SURVIVED: helpers/exercises/{refusal.module}.py:{refusal.line}: {refusal.text}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
