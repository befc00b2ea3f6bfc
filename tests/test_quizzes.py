"""The quizzes: every option explains itself, and no quiz gives its answer away untried.

Each lesson notebook (01-12) ends with a few questions (helpers/quizzes.py). In JupyterLab the
answer cell prints, per answered question, ``Correct: <why>`` or ``Not yet: <what that option
misses>``; with no answer, as Run All and the stored outputs have it, it only says how to
answer. The website cannot run Python: there every option's verdict and explanation is folded
under it. tools/insert_quizzes.py writes the quiz cells into the notebooks from the data.

Each check here is also run on a broken copy (an option with no explanation, an explanation in
a stored output or unfolded on a page, a quiz cell removed) to prove that it fails.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import html
import importlib.util
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser import chromium
from notebook_runs import NOTEBOOKS, ROOT

from helpers import quizzes
from helpers.quizzes import QUIZZES, Option, Question, quiz

_spec = importlib.util.spec_from_file_location("insert_quizzes", ROOT / "tools/insert_quizzes.py")
insert_quizzes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(insert_quizzes)

LESSONS = [nb for nb in NOTEBOOKS if "01" <= nb.name[:2] <= "12"]
by_lesson = pytest.mark.parametrize("number", [nb.name[:2] for nb in LESSONS])


def printed(notebook: object, **answers: object) -> list[str]:
    """The lines the real ``quiz`` prints for these answers."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert quiz(notebook, **answers) is None, "quiz returns None: a cell shows its lines only"
    return out.getvalue().splitlines()


def names(number: str) -> list[str]:
    return [f"q{i}" for i in range(1, len(QUIZZES[number]) + 1)]


# --- the data -------------------------------------------------------------------------------


def problems(all_quizzes: dict[str, list[Question]]) -> list[str]:
    """What makes the quiz data incomplete: a lesson without a quiz, too few or too many
    questions or options, an answer that is no option, an option without its own explanation."""
    found = []
    lessons = sorted(nb.name[:2] for nb in LESSONS)
    if sorted(all_quizzes) != lessons:
        found.append(f"quizzes for {sorted(all_quizzes)}, wanted one per lesson: {lessons}")
    for number, questions in sorted(all_quizzes.items()):
        if not 2 <= len(questions) <= 4:
            found.append(f"{number}: {len(questions)} questions, 2 to 4 wanted")
        for i, q in enumerate(questions, start=1):
            where = f"{number} q{i}"
            letters = "".join(q.options)
            if letters not in ("abc", "abcd"):
                found.append(f"{where}: options {letters!r}, wanted a to c or a to d")
            if q.answer not in q.options:
                found.append(f"{where}: the answer {q.answer!r} is no option")
            if not q.text.strip().endswith("?"):
                found.append(f"{where}: the question does not end with '?'")
            whys = [o.why.strip() for o in q.options.values()]
            for letter, option in q.options.items():
                if not option.text.strip() or len(option.why.strip()) < 30:
                    found.append(f"{where} {letter}: no text, or no explanation of its own")
            if len(set(whys)) != len(whys):
                found.append(f"{where}: two options share one explanation")
    return found


def test_every_lesson_has_a_quiz_and_every_option_its_explanation():
    assert problems(QUIZZES) == []


def test_the_data_check_bites():
    def broken(number: str, i: int, **change: object) -> dict[str, list[Question]]:
        data = copy.deepcopy(QUIZZES)
        data[number][i] = dataclasses.replace(data[number][i], **change)
        return data

    q = QUIZZES["06"][0]
    no_why = {**q.options, "c": Option(q.options["c"].text, "")}
    same_why = {**q.options, "c": Option(q.options["c"].text, q.options["a"].why)}
    for data in (
        broken("06", 0, options=no_why),
        broken("06", 0, options=same_why),
        broken("06", 0, answer="e"),
        broken("06", 0, options={k: v for k, v in q.options.items() if k in "ab"}),
        broken("06", 0, text="Autolog after fit."),
        {**QUIZZES, "03": QUIZZES["03"][:1]},
        {k: v for k, v in QUIZZES.items() if k != "11"},
    ):
        assert problems(data), "a broken quiz passed the data check"


# --- the answer cell --------------------------------------------------------------------------


@by_lesson
def test_every_option_gets_its_verdict_and_its_own_explanation(number):
    """Run through the real function: each option of each question, alone, gets "Correct" if
    it is the answer and "Not yet" if not, with that option's explanation; the other
    questions are left unanswered."""
    for i, q in enumerate(QUIZZES[number], start=1):
        rights = 0
        for letter, option in q.options.items():
            lines = printed(number, **{f"q{i}": letter})
            verdict = "Correct" if letter == q.answer else "Not yet"
            rights += verdict == "Correct"
            assert lines[i - 1] == f"q{i} ({letter}) {verdict}: {option.why}", (number, i, letter)
            others = [line for n, line in enumerate(lines, start=1) if n != i]
            assert all(re.fullmatch(r"q\d: no answer yet \([a-d, or]+\)\.", o) for o in others)
        assert rights == 1, f"{number} q{i}: {rights} options are right"


@by_lesson
def test_all_questions_at_once_in_any_case_or_spacing(number):
    questions = QUIZZES[number]
    answers = {f"q{i}": f" {q.answer.upper()} " for i, q in enumerate(questions, start=1)}
    lines = printed(number, **answers)
    assert [line.split(")")[1].split(":")[0] for line in lines] == [" Correct"] * len(questions)


def leaks(text: str, number: str) -> list[str]:
    """What ``text`` (a stored output, a questions cell) gives away of the quiz ``number``: a
    verdict, or any option's explanation."""
    found = [verdict for verdict in ("Correct:", "Not yet:") if verdict in text]
    for q in QUIZZES[number]:
        found += [option.why for option in q.options.values() if option.why in text]
    return found


@by_lesson
def test_no_answer_only_says_how_to_answer(number, monkeypatch):
    """Run All runs the answer cell with every answer None: its output names the questions
    and nothing else, the same whatever the right answers are."""
    count = len(QUIZZES[number])
    unanswered = printed(number, **dict.fromkeys(names(number)))
    assert unanswered == printed(number) == [quizzes._instructions(count)]
    assert leaks("\n".join(unanswered), number) == []
    assert all(f"{name}=" in unanswered[0] for name in names(number))
    shifted = [
        dataclasses.replace(q, answer="b" if q.answer == "a" else "a") for q in QUIZZES[number]
    ]
    monkeypatch.setitem(QUIZZES, number, shifted)
    assert printed(number, **dict.fromkeys(names(number))) == unanswered


def test_slips_get_a_clear_message():
    options = "write one letter, a, b, c or d, in quotes"
    for slip in ("e", "ab", "", "b)", 2, True, ["a"]):
        [line, *_] = printed("01", q1=slip)
        assert line == f'q1: {slip!r} is not one of the options: {options} (q1="...").', slip
    lines = printed("01", q9="a")
    assert lines[0] == "q9: this quiz has no such question; its questions are q1 to q3."
    assert lines[1].startswith("No answer yet")  # q1 to q3 were not answered
    assert printed("01", Q1="b")[0].startswith("Q1: this quiz has no such question")
    assert printed("13", q1="a") == [
        "There is no quiz for notebook '13': the quizzes are those of notebooks "
        '"01" to "12", such as quiz("01", q1=...).'
    ]
    assert printed(1, q1="b") == printed("01", q1="b"), "a notebook number as an int works"
    assert "Correct" not in "\n".join(printed("01", q1="e", q2=3, q3="ab"))


# --- the notebooks' quiz cells ------------------------------------------------------------


def quiz_cells(notebook: Path) -> list[dict]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if quizzes.TAG in c["metadata"].get("tags", [])]


def stdout(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell["outputs"] if o.get("name") == "stdout")


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_stored_quiz_cells_give_nothing_away(notebook):
    """What GitHub, the website and a learner opening the notebook see before trying: the
    questions, and the answer cell's stored output, which only says how to answer."""
    number = notebook.name[:2]
    questions, answer = quiz_cells(notebook)
    assert leaks("".join(questions["source"]), number) == []
    assert answer["execution_count"] is not None, "run the notebook (tools/execute_notebooks.py)"
    assert stdout(answer) == "\n".join(printed(number)) + "\n"
    assert leaks(json.dumps(answer["outputs"]), number) == []


def test_the_leak_check_bites():
    q = QUIZZES["09"][0]
    assert leaks(f"q1 (a) Not yet: {q.options['a'].why}", "09")
    assert leaks(f"Some text that happens to say {q.options['b'].why}", "09")
    assert leaks("q2 (c) Correct: ...", "09")
    assert not leaks("\n".join(printed("09")), "09")


def test_the_insertion_tool_finds_the_notebooks_up_to_date():
    """Fails until ``python tools/insert_quizzes.py`` has written the data into the notebooks
    (then ``tools/execute_notebooks.py`` stores the answer cells' outputs)."""
    result = subprocess.run(
        [sys.executable, "tools/insert_quizzes.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def check(folder: Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = insert_quizzes.main(["--check", "--notebooks", str(folder)])
    return code, out.getvalue()


def write(folder: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert insert_quizzes.main(["--notebooks", str(folder)]) == 0


def test_the_insertion_tool_replaces_what_changed_and_only_that(tmp_path, monkeypatch):
    """Run on notebooks without quiz cells, the tool adds them before the summary; run again,
    it changes nothing (stored outputs kept); --check fails on a removed, moved or stale cell,
    or a quiz cell in a notebook that has no quiz, and the tool repairs each."""
    for notebook in NOTEBOOKS:
        cells = json.loads(notebook.read_text(encoding="utf-8"))
        cells["cells"] = [
            c for c in cells["cells"] if quizzes.TAG not in c["metadata"].get("tags", [])
        ]
        (tmp_path / notebook.name).write_text(json.dumps(cells), encoding="utf-8")
    assert check(tmp_path)[0] == 1
    write(tmp_path)
    assert check(tmp_path) == (0, f"quiz cells up to date in {len(NOTEBOOKS)} notebooks\n")
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write(tmp_path)
    assert written == {p.name: p.read_bytes() for p in tmp_path.iterdir()}, "not idempotent"

    lesson = tmp_path / "03_start_run.ipynb"
    nb = json.loads(lesson.read_text(encoding="utf-8"))
    cells = nb["cells"]
    summary = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Summary"))
    assert [quizzes.TAG in c["metadata"].get("tags", []) for c in cells[summary - 2 : summary]] == [
        True,
        True,
    ], "the quiz comes right before the summary"
    cells[summary - 1]["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["x\n"]}]
    cells[summary - 1]["execution_count"] = 99
    lesson.write_text(json.dumps(nb), encoding="utf-8")
    write(tmp_path)
    assert "x\n" in stdout(quiz_cells(lesson)[1]), "an unchanged answer cell keeps its output"

    removed = copy.deepcopy(nb)
    del removed["cells"][summary - 1]
    moved = copy.deepcopy(nb)
    moved["cells"].insert(3, moved["cells"].pop(summary - 2))
    for broken in (removed, moved):
        lesson.write_text(json.dumps(broken), encoding="utf-8")
        assert check(tmp_path) == (
            1,
            "quiz cells out of date with helpers/quizzes.py (run tools/insert_quizzes.py):\n"
            "  03_start_run.ipynb\n",
        )
        write(tmp_path)
        assert check(tmp_path)[0] == 0

    setup = tmp_path / "00_setup.ipynb"
    stray = json.loads(setup.read_text(encoding="utf-8"))
    stray["cells"].insert(1, quizzes.notebook_cells("01")[0])
    setup.write_text(json.dumps(stray), encoding="utf-8")
    assert "00_setup.ipynb" in check(tmp_path)[1]
    write(tmp_path)

    reworded = dataclasses.replace(QUIZZES["05"][1], text="How does a trial become a child run?")
    monkeypatch.setitem(QUIZZES, "05", [QUIZZES["05"][0], reworded, *QUIZZES["05"][2:]])
    assert check(tmp_path)[1].endswith("  05_compare_and_tune.ipynb\n")
    write(tmp_path)
    assert "How does a trial become a child run?" in "".join(
        quiz_cells(tmp_path / "05_compare_and_tune.ipynb")[0]["source"]
    )
    assert check(tmp_path)[0] == 0


# --- the website ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with the README's command (warnings are errors) into a scratch folder."""
    out = tmp_path_factory.mktemp("site") / "_site" / "html"
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", "site", ".", "-W", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


SMART = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
SMART |= str.maketrans({"\u2026": "...", "\u2013": "--", "\u2014": "---"})
"""Typography the site's markdown (docutils' smart quotes) adds, undone."""


def plain(words: str) -> str:
    """Text as a reader sees it: no code or emphasis marks, plain quotes (the site's markdown
    curls them), single spaces."""
    return " ".join(words.replace("`", "").replace("*", "").translate(SMART).split())


def text(fragment: str) -> str:
    """What a reader sees of a page's HTML fragment."""
    return plain(html.unescape(re.sub(r"<[^>]+>", "", fragment)))


FOLD = re.compile(r"<details><summary>(.*?)</summary>(.*?)</details>", re.S)


def quiz_section(page: str) -> str:
    start = page.index('<section id="check-your-understanding">')
    return page[start : page.index("</section>", start)]


def site_problems(page: str, number: str) -> list[str]:
    """How the quiz of a page differs from what the site must show: each question, then each
    option folded (closed) with its verdict and explanation inside, and nothing outside."""
    section = quiz_section(page)
    folds = [(text(summary), text(body)) for summary, body in FOLD.findall(section)]
    wanted = [
        (
            f"{letter}. {plain(option.text)}",
            f"{'Correct' if letter == q.answer else 'Not yet'}: {plain(option.why)}",
        )
        for q in QUIZZES[number]
        for letter, option in q.options.items()
    ]
    found = [] if folds == wanted else [f"folds {folds} differ from {wanted}"]
    outside = text(FOLD.sub("", section))
    verdicts = [v for v in ("Correct:", "Not yet:") if v in outside]
    whys = [o.why for q in QUIZZES[number] for o in q.options.values() if plain(o.why) in outside]
    found += [f"shown unfolded: {leak}" for leak in verdicts + whys]
    found += [
        f"question missing: {q.text}" for q in QUIZZES[number] if plain(q.text) not in outside
    ]
    if "<details open" in section:
        found.append("an option opens by itself")
    return found


@by_lesson
def test_the_site_folds_every_explanation(site, number):
    [page] = (site / "notebooks").glob(f"{number}_*.html")
    assert site_problems(page.read_text(encoding="utf-8"), number) == []


def test_the_site_check_bites(site):
    page = next((site / "notebooks").glob("07_*.html")).read_text(encoding="utf-8")
    assert site_problems(page, "07") == []
    start = page.index('<section id="check-your-understanding">')
    end = page.index("</section>", start)
    quiz, rest = page[start:end], page[end:]
    why = html.escape(QUIZZES["07"][1].options["b"].why, quote=False)
    for broken in (
        quiz.replace("<details><summary>", "<div><summary>", 1),  # an option not folded
        quiz.replace("<details>", "<details open>", 1),  # folded, but open
        quiz.replace("Correct: ", "Not yet: ", 1),  # a wrong verdict
        quiz + f"<p>{why}</p>",  # an explanation outside its fold
        quiz.replace(html.escape(QUIZZES["07"][2].text[:40], quote=False), "", 1),  # no question
    ):
        assert site_problems(page[:start] + broken + rest, "07"), "a broken quiz passed"


def test_an_option_opens_on_a_click(site):
    """In a real browser: the explanation is hidden until its option is clicked."""
    q = QUIZZES["06"][0]
    with chromium() as browser:
        page = browser.new_page()
        page.goto((site / "notebooks" / "06_autolog.html").as_uri())
        fold = page.locator("#check-your-understanding details").nth(
            list(q.options).index(q.answer)
        )
        body = fold.locator("p")
        assert body.count() == 1 and not body.is_visible()
        fold.locator("summary").click()
        body.wait_for(state="visible")
        assert plain(body.inner_text()) == f"Correct: {plain(q.options[q.answer].why)}"
        page.close()
