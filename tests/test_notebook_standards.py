"""The stored notebooks meet the course's standards, read straight from the .ipynb files.

These checks need no kernel: they catch what strict nbval would silently accept, such as
an unrun cell (nbval skips it) or an output that is right but must not be published (a
warning, a machine path).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from notebook_runs import NOTEBOOKS

IGNORE_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")
MACHINE_PATH = re.compile(r"(/root/|/home/|/tmp/|/work/|/Users/|/private/var/|[A-Za-z]:\\\\)")
DEPRECATED_APIS = {
    r"\blist_experiments\(": "mlflow.search_experiments",
    r"\blist_registered_models\(": "MlflowClient.search_registered_models",
    r"\blist_run_infos\(": "mlflow.search_runs",
    r"\btransition_model_version_stage\(": "a registered model alias",
    r"\bget_latest_versions\(": "MlflowClient.get_model_version_by_alias",
    r"squared\s*=\s*False": "sklearn.metrics.root_mean_squared_error",
    r"log_model\((?:[^()]|\([^()]*\))*\bartifact_path\s*=": "log_model(name=...)",
}
"""Removed or deprecated calls (regex) and what replaced them."""


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def code_cells(notebook: Path) -> list[dict]:
    return [c for c in cells(notebook) if c["cell_type"] == "code"]


def markdown(notebook: Path) -> str:
    return "\n".join(source(c) for c in cells(notebook) if c["cell_type"] == "markdown")


by_name = pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])


def test_notebooks_are_numbered_in_course_order():
    names = [nb.name for nb in NOTEBOOKS]
    assert names == [
        "00_setup.ipynb",
        "01_set_tracking_uri.ipynb",
        "02_set_experiment.ipynb",
        "03_start_run.ipynb",
        "04_set_tag.ipynb",
        "05_compare_and_tune.ipynb",
        "06_autolog.ipynb",
        "07_model_management.ipynb",
        "08_model_registry.ipynb",
        "09_tracking_server.ipynb",
        "10_mlflow_in_practice.ipynb",
        "11_serving_and_alternatives.ipynb",
        "12_tuning_at_scale.ipynb",
        "13_homework.ipynb",
    ]
    assert [int(n[:2]) for n in names] == list(range(len(names))), "numbers have a gap"


@by_name
def test_notebook_has_the_course_shape(notebook):
    first = source(cells(notebook)[0])
    assert first.startswith("# "), "the first cell must be the H1 title"
    text = markdown(notebook)
    for part in ("In this notebook you will", "## Try it yourself", "## Summary"):
        assert part in text, f"missing '{part}'"
    if notebook != NOTEBOOKS[-1]:
        assert "**Next:**" in text


@by_name
def test_every_code_cell_was_run_in_order(notebook):
    counts = [c["execution_count"] for c in code_cells(notebook)]
    assert None not in counts, "an unrun cell is silently skipped by nbval"
    assert counts == list(range(1, len(counts) + 1)), "outputs come from one top-to-bottom run"


@by_name
def test_outputs_hold_no_noise_or_machine_details(notebook):
    for cell in code_cells(notebook):
        for output in cell["outputs"]:
            text = json.dumps(output)
            assert output.get("name") != "stderr", f"stderr output in: {source(cell)[:60]}"
            assert output["output_type"] != "error", f"an error in: {source(cell)[:60]}"
            assert "Warning" not in text, f"a warning in: {source(cell)[:60]}"
            assert not MACHINE_PATH.search(text), f"a machine path in: {source(cell)[:60]}"
            # A widget (a progress bar) is a model id on GitHub and a blank box on the site.
            assert WIDGET not in output.get("data", {}), f"a widget in: {source(cell)[:60]}"


WIDGET = "application/vnd.jupyter.widget-view+json"
IGNORE_TAGS = ("nbval-ignore-output", "nbval-skip")


def ignore_marker_lines(cell: dict) -> list[int]:
    """Lines that make nbval ignore a cell: it honours only a bare marker comment."""
    lines = source(cell).splitlines()
    return [i for i, line in enumerate(lines) if line.lstrip("#").strip() in IGNORE_MARKERS]


@by_name
def test_at_least_70_percent_of_outputs_are_compared(notebook):
    with_output = [c for c in code_cells(notebook) if c["outputs"]]
    ignored = [
        c
        for c in with_output
        if ignore_marker_lines(c) or set(IGNORE_TAGS) & set(c["metadata"].get("tags", []))
    ]
    assert with_output, "a notebook with no output teaches nothing checkable"
    assert len(ignored) <= 0.3 * len(with_output)
    for cell in ignored:
        lines = source(cell).splitlines()
        [marker] = ignore_marker_lines(cell) or [-1]
        reason = lines[marker + 1] if marker + 1 < len(lines) else ""
        assert reason.startswith("#") and len(reason.strip("# ")) > 10, (
            "an ignored output says why, in a comment right after the bare marker"
        )
    for cell in code_cells(notebook):  # a marker with text after it is silently compared
        for line in source(cell).splitlines():
            if "NBVAL_" in line and line.lstrip("#").strip() not in IGNORE_MARKERS:
                raise AssertionError(f"nbval ignores only a bare marker, not: {line!r}")


@by_name
def test_no_deprecated_mlflow_or_sklearn_api(notebook):
    code = "\n".join(source(c) for c in code_cells(notebook))
    for pattern, replacement in DEPRECATED_APIS.items():
        found = re.search(pattern, code)
        assert not found, f"{found.group(0)!r} is deprecated or removed: use {replacement}"


def test_no_deprecated_api_in_the_course_code():
    root = NOTEBOOKS[0].parents[1]
    for path in sorted([*root.glob("helpers/*.py"), *root.glob("tools/*.py")]):
        code = path.read_text(encoding="utf-8")
        for pattern, replacement in DEPRECATED_APIS.items():
            found = re.search(pattern, code)
            assert not found, f"{path.name}: {found.group(0)!r} is removed: use {replacement}"


def test_the_deprecated_api_check_catches_what_it_should():
    old_code = [
        "mlflow.list_experiments()",
        "client.transition_model_version_stage(name, 1, 'Production')",
        "mean_squared_error(y, p, squared=False)",
        "mlflow.sklearn.log_model(model, artifact_path='model', input_example=X[:5])",
        'mlflow.sklearn.log_model(\n    model,\n    artifact_path="model")',
    ]
    for code in old_code:
        assert any(re.search(p, code) for p in DEPRECATED_APIS), code
    assert not any(
        re.search(p, 'mlflow.log_artifact(path, artifact_path="x")') for p in DEPRECATED_APIS
    )


@by_name
def test_notebooks_import_helpers_without_path_hacks(notebook):
    for cell in code_cells(notebook):
        assert "sys.path" not in source(cell), "helpers is installed by the setup command"


COURSE_STORE = 'mlflow.set_tracking_uri("sqlite:///mlflow.db")'
TRACKS_NOTHING = {"00_setup.ipynb"}
"""Notebooks that do not name the course's store: 00 only checks the environment (it reads
``mlflow.__version__``, nothing else of MLflow); the next test keeps that true."""


def mlflow_uses(notebook: Path) -> set[str]:
    """The attributes of ``mlflow`` a notebook's code uses (``mlflow.set_experiment`` ...)."""
    return {
        node.attr
        for cell in code_cells(notebook)
        for node in ast.walk(ast.parse(source(cell)))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "mlflow"
    }


@by_name
def test_tracking_notebooks_use_the_course_store_literally(notebook):
    """A learner starts the UI on ``sqlite:///mlflow.db`` next to the notebooks: every notebook
    that tracks anything writes there (or says so, then returns there, as 09 and 10 do)."""
    code = "\n".join(source(c) for c in code_cells(notebook))
    if notebook.name in TRACKS_NOTHING:
        assert mlflow_uses(notebook) <= {"__version__"}, "it tracks now: name the store"
        assert "MlflowClient" not in code, "it tracks now: name the store"
    else:
        assert COURSE_STORE in code


def test_seed_calls_are_taught_literally():
    everything = "\n".join(
        source(c) for nb in NOTEBOOKS for c in cells(nb) if c["cell_type"] == "code"
    )
    for call in (
        'mlflow.set_tracking_uri("sqlite:///mlflow.db")',
        "mlflow.set_experiment(",
        "with mlflow.start_run(",
        'mlflow.set_tag("developer", ',
    ):
        assert call in everything
    prose = "\n".join(markdown(nb) for nb in NOTEBOOKS)
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in prose


def ridge_calls(code: str) -> list[ast.Call | ast.expr]:
    """Every use of ``Ridge`` in ``code`` but its import: a call, or the bare name (which
    would build a Ridge elsewhere, where the tolerance is not seen)."""
    tree = ast.parse(code)
    calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = [n for n in ast.walk(tree) if getattr(n, "id", getattr(n, "attr", None)) == "Ridge"]
    return [calls.get(id(n), n) for n in names]


def converges(use: ast.Call | ast.expr) -> bool:
    """True if ``use`` is a call that passes ``tol=1e-8`` by name (a ``**`` cannot set it)."""
    keywords = use.keywords if isinstance(use, ast.Call) else []
    return any(
        k.arg == "tol" and isinstance(k.value, ast.Constant) and k.value.value == 1e-8
        for k in keywords
    )


@by_name
def test_iterative_solvers_are_asked_to_converge(notebook):
    """Ridge on sparse data stops at tol=1e-4 by default: its third decimal then differs
    between machines and thread counts, and a stored output stops matching (notebook 04).
    Every Ridge a notebook builds says tol=1e-8 itself: ``Ridge(tol=1e-8, **params)`` is
    fine (``params`` cannot hold a second ``tol``), ``Ridge(**params)`` is not."""
    for cell in code_cells(notebook):
        for use in ridge_calls(source(cell)):
            assert converges(use), f"{ast.unparse(use)}: pass tol=1e-8"


def test_the_convergence_check_catches_what_it_should():
    good = "m = Ridge(alpha=1.0, tol=1e-8)\nn = linear_model.Ridge(tol=1e-8, **ridge_params)"
    assert all(converges(use) for use in ridge_calls(good))
    for bad in (
        "m = Ridge(alpha=1.0)",
        "m = Ridge(**ridge_params)",
        "m = Ridge(tol=1e-4)",
        "m = make_pipeline(Ridge)",
        "m = functools.partial(Ridge, tol=1e-8)",
        "m = sklearn.linear_model.Ridge()",
    ):
        assert not all(converges(use) for use in ridge_calls(bad)), bad
    assert ridge_calls("from sklearn.linear_model import Ridge") == []


CHECK_CALL = re.compile(r"^(check_\w+)\(", re.MULTILINE)


def stdout(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell["outputs"] if o.get("name") == "stdout")


def headed_sections(notebook: Path) -> dict[str, list[dict]]:
    """Cells grouped under their latest ``##`` or ``###`` heading."""
    sections: dict[str, list[dict]] = {}
    heading = ""
    for cell in cells(notebook):
        if cell["cell_type"] == "markdown":
            found = re.findall(r"^#{2,3} (.+)$", source(cell), re.MULTILINE)
            heading = found[-1] if found else heading
        sections.setdefault(heading, []).append(cell)
    return sections


HOMEWORK = "13_homework.ipynb"
"""The homework asks "Question N" (checked by test_the_homework_checks_every_answer), not
"Exercise N": it is the one notebook the exercise test leaves out."""
WITH_EXERCISES = [nb for nb in NOTEBOOKS if nb.name != HOMEWORK]


def exercise_headings(notebook: Path) -> list[str]:
    return sorted(h for h in headed_sections(notebook) if re.match(r"Exercise \d+", h))


def test_only_the_homework_asks_questions_instead_of_exercises():
    """The exercise test leaves the homework out: this keeps that exemption exact (the
    homework has no exercise it would miss, and no other notebook has questions)."""
    asks = {
        nb.name: [h for h in headed_sections(nb) if re.match(r"Question \d+", h)]
        for nb in NOTEBOOKS
    }
    assert [name for name, questions in asks.items() if questions] == [HOMEWORK]
    [homework] = [nb for nb in NOTEBOOKS if nb.name == HOMEWORK]
    assert exercise_headings(homework) == []


@pytest.mark.parametrize("notebook", WITH_EXERCISES, ids=[nb.stem for nb in WITH_EXERCISES])
def test_exercises_check_themselves_and_their_solutions_are_folded(notebook):
    """Each exercise cell calls a checker that refuses the empty answer ("Not yet": strict
    nbval compares these stored outputs on every CI run), and its worked solution, folded at
    the end of the notebook, calls the same checker (tests/test_solutions.py runs each one in
    its answer cell and proves it passes)."""
    sections = headed_sections(notebook)
    exercises = exercise_headings(notebook)
    solutions = sorted(h for h in sections if re.match(r"Solution \d+", h))
    wanted = 1 if notebook.name.startswith("00_") else 2
    assert len(exercises) >= wanted, f"{len(exercises)} exercises, at least {wanted} wanted"
    numbers = range(1, len(exercises) + 1)
    assert [h.split(":")[0] for h in exercises] == [f"Exercise {i}" for i in numbers]
    assert [h.split(":")[0] for h in solutions] == [f"Solution {i}" for i in numbers]
    text = [source(c) for c in cells(notebook)]
    assert text.index(next(t for t in text if t.startswith("## Solutions"))) < text.index(
        next(t for t in text if t.startswith("## Summary"))
    ), "solutions come before the summary, after every exercise"
    for exercise, solution in zip(exercises, solutions, strict=True):
        [asked] = [c for c in sections[exercise] if c["cell_type"] == "code"]
        checker = CHECK_CALL.findall(source(asked))
        assert checker, f"{exercise}: the exercise cell must call its checker"
        assert "Write your code here" in source(asked)
        assert stdout(asked).startswith("Not yet: "), f"{exercise}: the empty answer must fail"
        code = assert_folded(solution, sections[solution])
        assert checker[-1] in CHECK_CALL.findall(code), f"{solution}: same check"


FOLD = re.compile(
    r"<details><summary>Show the worked solution</summary>\n\n```python\n(.*?)\n```\n\n</details>",
    re.S,
)
"""A folded solution, as tools/fold_solutions.py writes it."""


def assert_folded(solution: str, section: list[dict]) -> str:
    """A solution shows nothing before the learner opens it, and Run All never runs it: it is
    markdown, its heading then its code folded in a <details> whose summary says only "Show
    the worked solution". Any explanation is a comment in its code, not text beside it.
    Returns the folded code."""
    assert all(c["cell_type"] == "markdown" for c in section), (
        f"{solution}: a code cell here would be run by Run All: fold it (tools/fold_solutions.py)"
    )
    folds = [code for c in section for code in FOLD.findall(source(c))]
    assert len(folds) == 1, f"{solution}: {len(folds)} folds, one wanted"
    for cell in section:
        visible = FOLD.sub("", source(cell)).strip()
        assert re.fullmatch(r"(?s).*### Solution \d+(: [^\n]*)?", visible), (
            f"{solution}: only its heading is visible; explain in the solution's comments"
        )
    return folds[0]


@by_name
def test_no_stored_output_gives_an_answer_away(notebook):
    """Run All runs no solution, so no stored output says "Correct: " (and saving after a
    Run All leaves none for the learner's next visit)."""
    for cell in code_cells(notebook):
        assert "Correct: " not in stdout(cell), source(cell)[:200]


def test_the_homework_checks_every_answer():
    [homework] = [nb for nb in NOTEBOOKS if nb.name.startswith("13_")]
    sections = headed_sections(homework)
    questions = [h for h in sections if re.match(r"Question \d+", h)]
    assert len(questions) == 7, questions  # the course's seven steps (helpers.exercises.nb13)
    answers = {h for h in sections if re.match(r"Solution \d+", h)}
    assert len(answers) == 7, answers
    for question in questions:
        number = re.match(r"Question (\d+)", question).group(1)
        asked = [c for c in sections[question] if source(c).strip() == f"ask({number})"]
        assert asked and stdout(asked[0]).startswith("The 2025 homework"), question
        checks = [c for c in sections[question] if CHECK_CALL.search(source(c))]
        assert checks, f"{question}: an answer cell with a check"
        assert stdout(checks[0]).startswith("Not yet: "), f"{question}: empty answer refused"
        number = re.match(r"Question (\d+)", question).group(1)
        [solution] = [h for h in answers if re.match(rf"Solution {number}\b", h)]
        code = assert_folded(solution, sections[solution])
        checker = CHECK_CALL.findall(source(checks[0]))[-1]
        assert checker in CHECK_CALL.findall(code), f"{solution}: same check as {question}"


def test_the_serving_notebooks_fallback_champion_is_the_one_08_chooses():
    """Notebook 11 trains 08's champion itself when it runs alone; its alpha is the one 08's
    grid picks (a number copied between notebooks must fail here when 08's choice changes)."""
    [registry] = [nb for nb in NOTEBOOKS if nb.name.startswith("08_")]
    [serving] = [nb for nb in NOTEBOOKS if nb.name.startswith("11_")]
    printed = "".join(stdout(c) for c in code_cells(registry))
    chosen = float(re.search(r"best alpha on February: ([\d.]+)", printed).group(1))
    fallback = "\n".join(source(c) for c in code_cells(serving))
    alphas = [float(a) for a in re.findall(r"Ridge\(alpha=([\d.]+), tol=1e-8\)", fallback)]
    assert alphas == [chosen], f"11 trains alpha {alphas}, 08 chooses {chosen}"


def test_each_notebook_states_the_time_the_readme_gives():
    """A learner reads a notebook's cost at its top and the README's table: they agree (both
    are a notebook alone in a fresh kernel, as bench/run_benchmark.py measures)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = dict(
        re.findall(r"^\| \[(\d\d)_\w+\]\(notebooks/\S+\) \|.*\| (\d+) s \|$", readme, re.M)
    )
    assert sorted(table) == sorted(nb.name[:2] for nb in NOTEBOOKS), "a README row per notebook"
    for notebook in NOTEBOOKS:
        stated = re.search(r"\*Cost: about (\d+) seconds in a fresh kernel", markdown(notebook))
        assert stated, f"{notebook.name}: '*Cost: about N seconds in a fresh kernel...*' at the top"
        assert stated.group(1) == table[notebook.name[:2]], (
            f"{notebook.name}: README says otherwise"
        )


@by_name
def test_exercises_say_that_run_all_never_runs_the_solutions(notebook):
    """Where its exercises begin, each notebook says that Run All runs no solution (so a
    learner may use it freely) and how to run one: copy its code into the answer cell."""
    text = markdown(notebook)
    start = text.index("## Try it yourself")
    intro = " ".join(text[start : text.index("### ", start)].split())
    assert "*Run All* never runs the solutions" in intro
    assert "copy its code into the answer cell" in intro


QUIZ_TAG = "quiz"
QUIZ_CALL = re.compile(r'^quiz\("(\d\d)"(?:, q\d=None)+\)$', re.M)
"""The answer cell as tools/insert_quizzes.py writes it: every answer None."""


def quiz_problems(notebook_cells: list[dict], number: str) -> list[str]:
    """Where a lesson's quiz is not in place: right before "## Summary", its questions (a
    markdown cell headed "## Check your understanding") then its answer cell, tagged ``quiz``
    (tools/insert_quizzes.py writes both from helpers/quizzes.py), run with no answer, so that
    it says how to answer and nothing more (tests/test_quizzes.py checks what it says)."""
    tagged = [i for i, c in enumerate(notebook_cells) if QUIZ_TAG in c["metadata"].get("tags", [])]
    if len(tagged) != 2 or tagged[1] != tagged[0] + 1:
        return [f"{len(tagged)} cells tagged {QUIZ_TAG!r}, two in a row wanted"]
    questions, answer = notebook_cells[tagged[0] : tagged[1] + 1]
    following = notebook_cells[tagged[1] + 1] if tagged[1] + 1 < len(notebook_cells) else None
    found = []
    if questions["cell_type"] != "markdown" or not source(questions).startswith(
        "## Check your understanding"
    ):
        found.append("the first quiz cell must be the questions' markdown")
    called = QUIZ_CALL.findall(source(answer)) if answer["cell_type"] == "code" else []
    if called != [number]:
        found.append(f'the answer cell must call quiz("{number}", q1=None, ...)')
    elif not stdout(answer).startswith("No answer yet: "):
        found.append("the answer cell's stored output must say how to answer")
    if following is None or not source(following).startswith("## Summary"):
        found.append("the quiz must come right before the summary")
    return found


@by_name
def test_lesson_notebooks_check_understanding_before_the_summary(notebook):
    number = notebook.name[:2]
    if "01" <= number <= "12":
        assert quiz_problems(cells(notebook), number) == []
    else:
        assert not any(QUIZ_TAG in c["metadata"].get("tags", []) for c in cells(notebook))


def test_the_quiz_placement_check_bites():
    [lesson] = [nb for nb in NOTEBOOKS if nb.name.startswith("04_")]
    good = cells(lesson)
    assert quiz_problems(good, "04") == []
    at = next(i for i, c in enumerate(good) if QUIZ_TAG in c["metadata"].get("tags", []))
    unanswered = json.loads(json.dumps(good))
    unanswered[at + 1]["outputs"] = []
    for broken in (
        good[:at] + good[at + 2 :],  # no quiz
        good[: at + 1] + good[at + 2 :],  # the answer cell removed
        good[:at] + good[at + 2 :] + good[at : at + 2],  # after the summary
        good[:at] + good[at : at + 2][::-1] + good[at + 2 :],  # answers before questions
        unanswered,  # never run
    ):
        assert quiz_problems(broken, "04"), "a misplaced quiz passed"
    assert quiz_problems(good, "05"), "another notebook's quiz passed"
