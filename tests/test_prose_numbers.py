"""A number the prose states as a result is one a cell printed, or one this file checks.

Why: strict nbval compares outputs, not markdown. Change "the same 20 trials" to 30 in a
notebook's text and every other test still passes, while the notebook now says something its
own cells contradict. So every number left in a notebook's markdown, once the non-results below
are set aside (each with its reason), must appear in a stored output of that notebook, or be
one of the few numbers this file checks against another record (``CHECKED_ELSEWHERE``).

Numbers are compared by value ("6.2" matches a printed 6.2 or 6.20, not 6.207), so a result
that changes in a cell's output and not in the prose, or the other way round, fails here.
To extend the check to more notebooks, add their names to ``CHECKED_NOTEBOOKS``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from notebook_runs import NOTEBOOKS, ROOT

CHECKED_NOTEBOOKS = [
    "00_setup",
    "01_set_tracking_uri",
    "02_set_experiment",
    "03_start_run",
    "04_set_tag",
    "05_compare_and_tune",
    "06_autolog",
    "07_model_management",
    "08_model_registry",
    "09_tracking_server",
    "10_mlflow_in_practice",
    "11_serving_and_alternatives",
    "12_tuning_at_scale",
    "13_homework",
]
"""The notebooks whose prose is checked: all of them."""

NOT_RESULTS: list[tuple[str, str]] = [
    (r"\*Cost: about [^*]*\*", "timings, measured by bench/; the README test checks the total"),
    (r"(?m)^#+ \d\d ·", "a notebook's number in its title"),
    (r"\[\d\d ·", "a link to another notebook"),
    (r"\b[Nn]otebooks?\s+\d\d(?:(?:-|, | and | or )\d\d)*", "a reference to another notebook"),
    (r"\b\d\d's\b|\bas (?:in )?\d\d(?: and \d\d)?\b", "another notebook: 05's, as in 07 and 08"),
    (r"\b[Ss]cenarios?\s+\d(?:(?:, | and | or )\d)*|\*\*\d\. |\bin 2 and 3\b", "scenario numbers"),
    (r"\b5000\s+is\s+the\s+default|\b80 or 443\b", "MLflow's and HTTP's default ports"),
    (
        r"\b(?:psycopg|SQLAlchemy)\s+\d+(?:\.\d+)*|\bfrom 1\.4 to below 3\b|\bbut 2\.0 picks",
        "versions of SQLAlchemy and psycopg",
    ),
    (r"\b(?:as of|December) 20\d\d\b", "a date"),
    (r"= 42\b", "the value exercise 09 asks to log"),
    (r"\bunder 7 minutes\b", "the threshold of 07's search filter: a choice, not a result"),
    (r"\bat most \*\*4\.2\*\* minutes\b", "the threshold exercise 3 of 08 asks for: its input"),
    (
        r"\b\d+-mile trip from zone \d+ to zone \d+|\(zone \*\*\d+\*\*\)|\*\*2\.5\*\* miles"
        r"|\bthe same trip\s+at \d+ miles",
        "an exercise's trip: its input, not a result",
    ),
    (r"Options: [\d., ]+", "the module's answer options: the checkers decide which is right"),
    (r"between 0\.01 and 100\b|\b15 trials\b", "the search settings a task asks for (05, 12)"),
    (
        r'"20(?:22|23|24|25)"|\b20(?:22|23|24|25)(?: cohort\b|\'s\b| to 2025\b)|cohorts/20\d\d/',
        "the homework's cohorts, named by year (13)",
    ),
    (r"#\d+", "an issue or pull request of the module's repository"),
    (r"\*\*3 workers of 4 trials each\*\*", "the search exercise 1 of 12 asks for: its input"),
    (r"about 30 minutes on 2 cores", "the reference course's search, measured (shared/STYLE.md)"),
    (r"about 5 seconds when the machine is idle", "a timing: varies with the machine's load"),
    (r"\((?:\d\d(?:-\d\d)?(?:, )?)+\)", "notebook numbers in parentheses, as in (03, 07)"),
    (r"\b(?:[Ee]xercise|[Ss]olution|[Ss]tep|[Qq]uestion) \d+", "a section's number"),
    (r"(?m)^\s*\d+\. ", "a numbered list"),
    (r"\bMLflow 1\.x, 2\.x and\s+3\.0 to 3\.6\b", "the versions whose default was the file store"),
    (
        r"\b(?:MLflow|scikit-learn|Python|Optuna|pandas|hyperopt)\s+\d+(?:\.\d+)*(?:\.x)?",
        "a version",
    ),
    (r"\b(?:January|February|March) 20\d\d\b|\b20\d\d-\d\d\b", "the module's months of data"),
    (r"\b[Pp]ort \d+|--port \d+|\b127\.0\.0\.1(?::\d+)?|\b\d{4} is taken", "a port number"),
    (r"\b1 to 60 minutes\b", "the module's filter on durations: a choice, not a result"),
]
"""Numbers in markdown that state no result (regex, reason). Everything else is a result."""

PERFORMANCE = (ROOT / "docs" / "PERFORMANCE.md").read_text(encoding="utf-8")


def in_performance(passage: str) -> Callable[[], None]:
    """The number is a measurement recorded in docs/PERFORMANCE.md, in this passage."""

    def check() -> None:
        assert passage in " ".join(PERFORMANCE.split()), (
            f"PERFORMANCE.md no longer says {passage!r}"
        )

    return check


def printed_by(notebook: str, number: str) -> Callable[[], None]:
    """The number is a result another notebook prints (cited with its notebook's number)."""

    def check() -> None:
        assert value(number) in output_values(path(notebook)), (
            f"{notebook} no longer prints {number}"
        )

    return check


def memory_within(notebook: str, pattern: str, low: float, high: float) -> Callable[[], None]:
    """A stated memory range holds what the notebook's (ignored, machine-dependent) cell printed."""

    def check() -> None:
        printed = [float(n) for m in re.findall(pattern, outputs(path(notebook))) for n in
                   (m if isinstance(m, tuple) else (m,))]  # fmt: skip
        assert printed, f"{notebook} no longer prints {pattern!r}"
        assert all(low <= megabytes <= high for megabytes in printed), (
            f"{notebook} printed {printed} MB, outside the {low}-{high} MB its text states"
        )

    return check


def dense_copy_megabytes() -> None:
    """06's "220 MB": 03's training matrix (trips x columns, printed there) as float64."""
    printed = outputs(path("03_start_run"))
    trips = int(re.search(r"(\d+) training trips", printed).group(1))
    columns = int(re.search(r"features: (\d+)", printed).group(1))
    assert round(trips * columns * 8 / 1e6, -1) == 220


def model_inference_takes_3_to_5_seconds() -> None:
    """06's "3 to 5 seconds per fit": log_model inferring requirements, as measured."""
    row = re.search(
        r"\| log_model, pip_requirements given \|[^|]*\|[^|]*\| ([\d.]+) \|", PERFORMANCE
    )
    assert row and 3 <= float(row.group(1)) <= 5, "PERFORMANCE.md measures another time"


def forest_parameters(count: int, since_2022: tuple[str, ...] = ()) -> Callable[[], None]:
    """12's "18" and "17": how many parameters RandomForestRegressor has (autologging records
    each), today and without the ones scikit-learn added since 2022."""

    def check() -> None:
        from sklearn.ensemble import RandomForestRegressor

        params = RandomForestRegressor().get_params()
        assert all(name in params for name in since_2022)
        assert len(params) - len(since_2022) == count, f"the forest has {len(params)} parameters"

    return check


CHECKED_ELSEWHERE: dict[str, dict[str, Callable[[], None]]] = {
    "13_homework": {
        "18": forest_parameters(18),
        "17": forest_parameters(17, since_2022=("monotonic_cst",)),
    },
    "03_start_run": {
        "1,000": in_performance("0.355 s (12x to 18x faster; all 1,000 values stored)"),
        "12": in_performance("0.355 s (12x to 18x faster; all 1,000 values stored)"),
        "18": in_performance("0.355 s (12x to 18x faster; all 1,000 values stored)"),
    },
    "10_mlflow_in_practice": {  # "500 to 600 MB for each tracking server, under 100 MB"
        "500": memory_within("10_mlflow_in_practice", r"servers: (\d+) and (\d+) MB", 500, 600),
        "600": memory_within("10_mlflow_in_practice", r"servers: (\d+) and (\d+) MB", 500, 600),
        "100": memory_within("10_mlflow_in_practice", r"object store: (\d+) MB", 0, 100),
    },
    "11_serving_and_alternatives": {  # "a little over 500 MB", "over 500 MB"
        "500": memory_within("11_serving_and_alternatives", r"(\d+) MB of memory", 500, 650),
    },
    "06_autolog": {
        "11,600": printed_by("03_start_run", "11600"),
        "2,358": printed_by("03_start_run", "2358"),
        "220": dense_copy_megabytes,
        "73,448": in_performance("73,448 x 6,453 (3.8 GB) on a real month"),
        "6,453": in_performance("73,448 x 6,453 (3.8 GB) on a real month"),
        "3.8": in_performance("73,448 x 6,453 (3.8 GB) on a real month"),
        "7.7": in_performance("peaked at **7.7 GB**"),
        "3": model_inference_takes_3_to_5_seconds,
        "5": model_inference_takes_3_to_5_seconds,
    },
}
"""Numbers a notebook states from another record, each with the check that it still holds."""

NUMBER = re.compile(
    r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:\.\d+)?(?![\w])"
)


def path(name: str) -> Path:
    return next(nb for nb in NOTEBOOKS if nb.stem == name)


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def outputs(notebook: Path) -> str:
    """Every text a code cell of the notebook printed, returned or displayed, as stored."""
    texts = []
    for cell in cells(notebook):
        for output in cell.get("outputs", []):
            texts.append("".join(output.get("text", "")))
            texts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def value(number: str) -> float:
    return float(number.replace(",", ""))


def output_values(notebook: Path) -> set[float]:
    return {value(n) for n in NUMBER.findall(outputs(notebook))}


def prose(markdown: str) -> str:
    """The markdown without code, links' targets and the numbers that state no result."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)  # code blocks
    text = re.sub(r"`[^`]*`", " ", text)  # code spans: code, not prose
    text = re.sub(r"\]\([^)]*\)", "]", text)  # where a link or an image points
    text = re.sub(r"<https?://[^>]*>|https?://\S+", " ", text)
    for pattern, _reason in NOT_RESULTS:
        text = re.sub(pattern, " ", text)
    return text


def unexplained_numbers(notebook: Path) -> list[str]:
    """Numbers the notebook's prose states that none of its outputs shows, with their context."""
    printed = output_values(notebook)
    elsewhere = CHECKED_ELSEWHERE.get(notebook.stem, {})
    found = []
    for cell in cells(notebook):
        if cell["cell_type"] != "markdown":
            continue
        text = prose("".join(cell["source"]))
        for match in NUMBER.finditer(text):
            number = match.group(0)
            if value(number) in printed or number in elsewhere:
                continue
            context = " ".join(text[max(0, match.start() - 40) : match.end() + 20].split())
            found.append(f"{number!r} in '...{context}...'")
    return found


@pytest.mark.parametrize("name", CHECKED_NOTEBOOKS)
def test_numbers_in_the_prose_are_printed_by_a_cell(name):
    unexplained = unexplained_numbers(path(name))
    assert not unexplained, (
        f"{name}: numbers in the text that no output shows: print them from a cell, phrase "
        "the text so it holds for any data, or (not a result) add a reason to NOT_RESULTS:\n"
        + "\n".join(unexplained)
    )


@pytest.mark.parametrize("name", sorted(CHECKED_ELSEWHERE))
def test_numbers_checked_elsewhere_still_hold(name):
    for check in CHECKED_ELSEWHERE[name].values():
        check()
    text = "\n".join(prose("".join(c["source"])) for c in cells(path(name)))
    stated = set(NUMBER.findall(text))
    assert set(CHECKED_ELSEWHERE[name]) <= stated, "a number checked here is no longer stated"


def test_the_check_bites(tmp_path):
    """A result changed in the prose only, or a new number nothing prints, fails the check."""
    original = path("05_compare_and_tune")
    notebook = json.loads(original.read_text(encoding="utf-8"))
    assert not unexplained_numbers(original)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = [line.replace("search of 20 trials", "search of 30 trials")
                              for line in cell["source"]]  # fmt: skip
    notebook["cells"].append(
        {"cell_type": "markdown", "metadata": {}, "source": ["How many trials beat 6.5 minutes?"]}
    )
    changed = tmp_path / original.name
    changed.write_text(json.dumps(notebook), encoding="utf-8")
    unexplained = unexplained_numbers(changed)
    assert any(found.startswith("'30'") for found in unexplained), unexplained
    assert any(found.startswith("'6.5'") for found in unexplained), unexplained
