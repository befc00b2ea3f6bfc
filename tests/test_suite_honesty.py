"""No test passes by not testing: what is missing is skipped with a reason, never returned from.

Why: CI fails a session that skips, xfails or xpasses (tests/conftest.py), so a test that
meets a missing browser, database or package must say so with ``pytest.skip(reason)``. A
test that returns early instead, or catches the ImportError of a missing package, is
reported as passed: CI's rule never sees it. These checks read the tests' source.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).parent
MISSING_PACKAGE = {"ImportError", "ModuleNotFoundError"}


def own_nodes(function: ast.FunctionDef) -> Iterator[ast.AST]:
    """The nodes of ``function``'s body, without those of functions defined inside it."""
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def early_returns(code: str) -> list[str]:
    """Each ``return`` in a test function, as "line: test name" (a test returns nothing)."""
    found = []
    for function in ast.walk(ast.parse(code)):
        if isinstance(function, ast.FunctionDef) and function.name.startswith("test_"):
            found += [
                f"{node.lineno}: {function.name}"
                for node in own_nodes(function)
                if isinstance(node, ast.Return)
            ]
    return found


def caught_missing_packages(code: str) -> list[int]:
    """Lines that catch ImportError or ModuleNotFoundError (a missing package passes)."""
    lines = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            names = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node.type) if isinstance(n, ast.Attribute)}
            if names & MISSING_PACKAGE:
                lines.append(node.lineno)
    return lines


def test_no_test_returns_early():
    found = {
        path.name: early_returns(path.read_text(encoding="utf-8"))
        for path in sorted(TESTS.glob("test_*.py"))
    }
    assert {name: lines for name, lines in found.items() if lines} == {}, (
        "a test that returns early passes without testing: pytest.skip(reason) or check it all"
    )


def test_no_test_code_catches_a_missing_package():
    found = {
        path.name: caught_missing_packages(path.read_text(encoding="utf-8"))
        for path in sorted(TESTS.glob("*.py"))
    }
    assert {name: lines for name, lines in found.items() if lines} == {}, (
        "a missing package must fail the test, or skip it: pytest.importorskip(name, reason=...)"
    )


def test_the_checks_find_what_they_should():
    escapes = """
def test_browser():
    if not chromium():
        return
    assert page()

def test_helper_inside_may_return():
    def newest(runs):
        return runs[-1]
    assert newest([1, 2]) == 2

def test_postgres():
    try:
        import psycopg
    except (ImportError, OSError):
        pass

def test_boto():
    try:
        import boto3
    except builtins.ModuleNotFoundError:
        boto3 = None
"""
    assert early_returns(escapes) == ["4: test_browser"]
    assert caught_missing_packages(escapes) == [15, 21]
