"""tools/mutate_checkers.py finds every refusal, disables exactly one, and picks the tests that
can notice it (the full run is an instructor's check: tools/mutate_checkers.py)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from mutate_checkers import EXERCISES, checkers_reaching, covering_tests, refusals  # noqa: E402

MODULE = """
from helpers.exercises import Hint, checker, require


def _shared(x):
    require(x > 0, "positive")


@checker
def check_a(x):
    _shared(x)
    if x == 3:
        raise Hint("not three")
    return "ok"


@checker
def check_b(x):
    require(x, "something")
    return "ok"
"""


def test_every_require_and_raise_hint_is_found_and_disabled_alone(tmp_path):
    path = tmp_path / "nb99.py"
    path.write_text(MODULE)
    found = refusals(path)
    assert [refusal.text for refusal in found] == [
        'require(x > 0, "positive")',
        'raise Hint("not three")',
        'require(x, "something")',
    ]
    for refusal in found:
        ast.parse(refusal.mutant)  # still Python
        changed = [
            (old, new)
            for old, new in zip(MODULE.splitlines(), refusal.mutant.splitlines(), strict=True)
            if old != new
        ]
        assert len(changed) == 1, "exactly one refusal disabled"
    assert 'require(True, "positive")' in found[0].mutant
    assert "        pass" in found[1].mutant


def test_a_refusal_is_tested_through_every_checker_that_reaches_it(tmp_path):
    path = tmp_path / "nb99.py"
    path.write_text(MODULE)
    shared, in_a, in_b = refusals(path)
    assert checkers_reaching(path, shared.line) == {"check_a"}
    assert checkers_reaching(path, in_b.line) == {"check_b"}


def test_the_course_refusals_all_have_tests():
    for path in sorted(EXERCISES.glob("nb*.py")):
        for refusal in refusals(path):
            assert covering_tests(refusal), f"no test reaches {path.name}:{refusal.line}"
