"""tools/canary.py makes its report from real inputs: the course's notebooks and requirements.

These tests build no environment and use no network: they give the report-making parts
notebooks whose outputs differ, warnings, package versions and requirement files, and check
what the report says (the whole canary is an instructor's command: python tools/canary.py).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_workflows import actionlint, load

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("canary", ROOT / "tools" / "canary.py")
canary = importlib.util.module_from_spec(_spec)
sys.modules["canary"] = canary  # its dataclasses look their module up there
_spec.loader.exec_module(canary)

SETUP = ROOT / "notebooks" / "00_setup.ipynb"
SANITIZE = canary.sanitize_patterns(ROOT / "tests" / "nbval_sanitize.cfg")


def stored(path: Path = SETUP) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def version_cell(notebook: dict) -> int:
    """The code cell of notebook 00 that shows ``mlflow.__version__`` (a compared output)."""
    [number] = [
        i for i, c in enumerate(code(notebook)) if "mlflow.__version__" in "".join(c["source"])
    ]
    return number


def with_version(notebook: dict, text: str) -> dict:
    """A copy of ``notebook`` as a new run would give it, with another version printed."""
    fresh = copy.deepcopy(notebook)
    cell = code(fresh)[version_cell(fresh)]
    [result] = [o for o in cell["outputs"] if o["output_type"] == "execute_result"]
    result["data"]["text/plain"] = [text]
    return fresh


def notebook_run(fresh: dict, outcomes: dict | None = None, output: str = "") -> object:
    return canary.NotebookRun(SETUP.name, 0 if not outcomes else 1, output, fresh, outcomes or {})


def results(**changes) -> object:
    notebook = stored()
    fields = dict(
        day="2026-11-29",
        seconds=600.0,
        python="3.11",
        direct_file="requirements.txt",
        pins={"mlflow": "3.17.2", "boto3": "1.44.5"},
        newest={"mlflow": "3.18.0", "boto3": "1.44.8"},
        installed={"mlflow": "3.17.2", "boto3": "1.44.8"},
        pinned_installed={"mlflow": "3.17.2", "boto3": "1.44.5"},
        notes={},
        stored={SETUP.name: notebook},
        canary={SETUP.name: notebook_run(notebook)},
        pinned={SETUP.name: notebook_run(notebook)},
        standards={"canary": "151 passed in 0.3s\n", "pins": "151 passed in 0.3s\n"},
        offline=True,
        patterns=SANITIZE,
    )
    return canary.Results(**{**fields, **changes})


# --------------------------------------------------------------------------- the direct list


OLD_REQUIREMENTS_TXT = """\
# The course's one list of packages (the format before requirements.in and the lock).
./tools/python_version_guard ; python_version < "3.11"   # says "use Python 3.11 or newer"
pip==26.3               # MLflow records pip's version in every logged model
mlflow==3.17.2          # tracking, models, registry, UI
scikit-learn==1.9.1     # the models of the module
-e .                    # the course's helpers package
"""


def test_the_direct_list_of_requirements_txt_skips_local_paths_and_editables():
    pins = canary.parse_direct(OLD_REQUIREMENTS_TXT)
    assert pins == {"pip": "26.3", "mlflow": "3.17.2", "scikit-learn": "1.9.1"}


def test_the_direct_list_of_this_course_is_requirements_in():
    text = (ROOT / "requirements.in").read_text(encoding="utf-8")
    pins = canary.parse_direct(text)
    assert pins["mlflow"] == "3.17.2"
    assert len(pins) == sum(1 for line in text.splitlines() if "==" in line.split("#")[0])


def test_the_direct_list_reads_pins_with_markers_and_skips_options_and_hashes():
    text = (
        "# the course's direct packages\n"
        "./tools/python_version_guard ; python_version < '3.11'  # a local path\n"
        "-e .                    # the course itself\n"
        "-r other.txt\n"
        "mlflow==3.17.2          # tracking\n"
        "Scikit_Learn == 1.9.1\n"
        "psycopg-binary==3.3.9 ; sys_platform != 'emscripten'\n"
        "pandas==3.1.1 \\\n"
        "    --hash=sha256:0123abcd\n"
        "numpy>=2\n"
    )
    assert canary.parse_direct(text) == {
        "mlflow": "3.17.2",
        "Scikit_Learn": "1.9.1",
        "psycopg-binary": "3.3.9",
        "pandas": "3.1.1",
    }
    assert canary.normalize("Scikit_Learn") == "scikit-learn"


def test_the_direct_list_comes_from_requirements_in_when_there_is_one(tmp_path):
    (tmp_path / "requirements.txt").write_text("mlflow==3.17.2 \\\n    --hash=sha256:00\n")
    assert canary.direct_list_file(tmp_path).name == "requirements.txt"
    (tmp_path / "requirements.in").write_text("mlflow==3.17.2  # why\n-e .\n")
    assert canary.direct_list_file(tmp_path).name == "requirements.in"
    assert canary.parse_direct(canary.direct_list_file(tmp_path).read_text()) == {
        "mlflow": "3.17.2"
    }


def test_the_versions_pip_lists_are_read_newest_first():
    listed = (
        "mlflow (3.18.0)\n"
        "Available versions: 3.18.0, 3.17.2, 3.17.1\n"
        "  INSTALLED: 3.17.2\n  LATEST:    3.18.0\n"
    )
    assert canary.parse_versions(listed) == ["3.18.0", "3.17.2", "3.17.1"]
    assert canary.parse_versions("ERROR: No matching distribution found for nothing\n") == []


# --------------------------------------------------------------------------- package tables


def test_the_package_table_shows_what_moved_and_why_a_release_was_not_taken():
    table = canary.package_table(
        pins={"mlflow": "3.17.2", "boto3": "1.44.5", "pandas": "3.1.1"},
        newest={"mlflow": "3.18.0", "boto3": "1.44.8", "pandas": "3.1.1"},
        installed={"mlflow": "3.17.2", "boto3": "1.44.8", "pandas": "3.1.1"},
        notes={"mlflow": "3.18.0 cannot be installed: no mlflow-skinny==3.18.0"},
    )
    assert "| boto3 | 1.44.5 -> **1.44.8** | 1.44.8 |  |" in table
    assert "| mlflow | 3.17.2 (same) | 3.18.0 | 3.18.0 cannot be installed" in table
    assert "| pandas" not in table
    assert "Unchanged (1): pandas 3.1.1." in table


def test_the_dependency_table_lists_only_changed_dependencies():
    table = canary.indirect_table(
        before={"botocore": "1.44.5", "numpy": "2.4.0", "boto3": "1.44.5", "six": "1.17.0"},
        after={"botocore": "1.44.8", "numpy": "2.4.0", "boto3": "1.44.8", "jmespath": "1.1"},
        direct=["boto3"],
    )
    assert "| botocore | 1.44.5 | 1.44.8 |" in table
    assert "| six | 1.17.0 | - |" in table and "| jmespath | - | 1.1 |" in table
    assert "numpy" not in table and "boto3" not in table


# --------------------------------------------------------------------------- changed outputs


def test_a_changed_output_is_named_with_both_texts():
    notebook = stored()
    fresh = with_version(notebook, "'3.18.0'")
    [change] = canary.changed_cells(notebook, fresh, SANITIZE)
    assert change.number == version_cell(notebook)
    assert (change.old, change.new) == ("'3.17.2'", "'3.18.0'")
    report = canary.make_report(results(canary={SETUP.name: notebook_run(fresh)}))
    assert f"**Cell {change.number}** (`In [{change.number + 1}]`: `import mlflow`)" in report
    assert "-'3.17.2'\n+'3.18.0'" in report
    assert "Compared cells whose output changed: 1;" in report
    assert report.startswith("---\norphan: true\n---\n\n# Upgrade canary, 2026-11-29\n")


def test_outputs_that_differ_only_in_sanitized_text_or_in_ignored_cells_are_not_changes():
    notebook = stored()
    run_id = "0123456789abcdef0123456789abcdef"
    code(notebook)[version_cell(notebook)]["outputs"][0]["data"]["text/plain"] = [run_id]
    fresh = with_version(notebook, run_id.replace("0", "f"))
    assert canary.changed_cells(notebook, fresh, SANITIZE) == []
    assert canary.changed_cells(notebook, fresh, []) != []  # the same, unsanitized: a change
    ignored = copy.deepcopy(fresh)
    cell = code(notebook)[version_cell(notebook)]
    for nb in (notebook, ignored):
        code(nb)[version_cell(nb)]["source"] = ["# NBVAL_IGNORE_OUTPUT\n", *cell["source"]]
    assert canary.changed_cells(notebook, ignored, []) == []


def test_a_cell_that_raised_shows_the_end_of_its_error_and_pins_that_fail_too_are_said():
    notebook = stored()
    fresh = copy.deepcopy(notebook)
    number = version_cell(fresh)
    frames = [f"\x1b[0;31mFile site-packages/mlflow/x{i}.py:{i}\x1b[0m" for i in range(30)]
    code(fresh)[number]["outputs"] = [
        {
            "output_type": "error",
            "ename": "ImportError",
            "evalue": "cannot import name 'Thing'",
            "traceback": [*frames, "ImportError: cannot import name 'Thing'"],
        }
    ]
    outcomes = {number: {"outcome": "failed", "message": "Notebook cell execution failed"}}
    report = canary.make_report(results(canary={SETUP.name: notebook_run(fresh, outcomes)}))
    assert f"**Cell {number}** (`In [{number + 1}]`: `import mlflow`) raised:" in report
    assert "ImportError: cannot import name 'Thing'\n```" in report
    assert "x29.py" in report and "x5.py" not in report, "only the error's last lines"
    assert "\x1b[" not in report
    assert "| 00_setup.ipynb | passes | fails (1 cells) | 1 | 1 |" in report
    both = results(
        canary={SETUP.name: notebook_run(fresh, outcomes)},
        pinned={SETUP.name: notebook_run(fresh, outcomes)},
    )
    assert "raised (it fails with the pins too):" in canary.make_report(both)


def test_a_failure_that_is_not_an_output_shows_nbvals_message():
    notebook = stored()
    number = version_cell(notebook)
    message = "Cell 1: figure 1 differs: RMS 14.4 > 1.0 (see figure-diffs)"
    outcomes = {
        number: {"outcome": "failed", "message": f"Notebook cell execution failed\n{message}"}
    }
    report = canary.make_report(results(canary={SETUP.name: notebook_run(notebook, outcomes)}))
    assert f"`import mlflow`) failed:\n\n```\nNotebook cell execution failed\n{message}" in report


# --------------------------------------------------------------------------- warnings


def warned(notebook: dict, line: str) -> dict:
    fresh = copy.deepcopy(notebook)
    code(fresh)[0]["outputs"].append({"output_type": "stream", "name": "stderr", "text": [line]})
    return fresh


FUTURE = (
    "/tmp/course-canary-x/venv/lib/python3.11/site-packages/mlflow/data/digest_utils.py:41: "
    "FutureWarning: DataFrame.all with positional arguments is deprecated\n"
)


def test_a_warning_only_the_new_packages_give_is_listed():
    notebook = stored()
    fresh = warned(notebook, FUTURE)
    report = canary.make_report(results(canary={SETUP.name: notebook_run(fresh)}))
    section = report.split("## New warnings")[1]
    assert "`FutureWarning: DataFrame.all with positional arguments is deprecated`" in section
    assert "(00_setup.ipynb cell 0)" in section
    assert "New warnings (not given with the pins): 1 (warnings seen: 1 with the newest" in report


def test_a_warning_the_pins_give_too_is_not_new_wherever_it_was_raised():
    notebook = stored()
    pinned_line = FUTURE.replace("/tmp/course-canary-x/venv", "/work/main/.venv").replace(
        ":41:", ":37:"
    )
    pinned = notebook_run(notebook, output=f"warnings summary\n  {pinned_line}")
    report = canary.make_report(
        results(
            canary={SETUP.name: notebook_run(warned(notebook, FUTURE))}, pinned={SETUP.name: pinned}
        )
    )
    assert "New warnings (not given with the pins): 0 (warnings seen: 1 with the newest" in report
    assert "None: every warning of the canary's runs also comes with the pins." in report


def test_warnings_are_found_in_a_run_output_and_deprecations_come_first():
    found = canary.find_warnings(
        "x.py:3: UserWarning: a\n"
        "  /a/b/c.py:9: DeprecationWarning: the ``noload`` strategy at 0x7f00aa is deprecated\n"
        "INFO  [alembic] Context impl SQLiteImpl.\n"
    )
    assert list(found) == [
        "UserWarning: a",
        "DeprecationWarning: the ``noload`` strategy at <addr> is deprecated",
    ]
    ordered = canary.new_warnings({key: ["somewhere"] for key in found}, pinned=[])
    assert [key for key, _ in ordered][0].startswith("DeprecationWarning")
    assert canary.new_warnings({key: ["somewhere"] for key in found}, pinned=found) == []


# --------------------------------------------------------------------------- the command


def test_the_command_documents_its_options():
    with pytest.raises(SystemExit) as exit_:
        canary.main(["--help"])
    assert exit_.value.code == 0


def test_the_help_names_every_option(capsys):
    with pytest.raises(SystemExit):
        canary.main(["--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--python", "--keep-env", "--no-baseline", "--notebooks"):
        assert option in text
    assert "--worker" not in text


# --------------------------------------------------------------------------- the nbval plugin


def test_the_nbval_plugin_records_each_cells_new_output_and_outcome(tmp_path):
    """The plugin (pytest -p canary) keeps what each cell printed in a run: the report's input.
    One kernel, two cells: about 5 s."""
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": i + 1,
                "metadata": {},
                "source": [f"print({text!r})"],
                "outputs": [{"output_type": "stream", "name": "stdout", "text": [stored_text]}],
            }
            for i, (text, stored_text) in enumerate([("same", "same\n"), ("new", "old\n")])
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook))
    record = tmp_path / "record"
    record.mkdir()
    env = {**os.environ, canary.RECORD_ENV: str(record), "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tools"), str(ROOT / "tests"), str(ROOT)])
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "canary"]
        + ["-p", "no:cacheprovider", "-q", f"--nbval-figures-dir={tmp_path}", "nb.ipynb"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    fresh = json.loads((record / "nb.fresh.ipynb").read_text())
    assert [canary.output_text(c["outputs"]) for c in code(fresh)] == ["same", "new"]
    outcomes = json.loads((record / "nb.outcomes.json").read_text())
    assert [outcomes[k]["outcome"] for k in ("0", "1")] == ["passed", "failed"]
    assert "old" in outcomes["1"]["message"]
    [change] = canary.changed_cells(notebook, fresh)
    assert (change.number, change.old, change.new) == (1, "old", "new")


# --------------------------------------------------------------------------- the weekly workflow


def test_the_canary_workflow_is_valid_and_never_blocks_a_change():
    """Weekly and by hand, never on a push or a pull request; it runs the documented command
    after the README's install and uploads the report (actionlint as for the other workflows)."""
    result = actionlint(ROOT / ".github" / "workflows" / "canary.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    workflow = load("canary.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    [job] = workflow["jobs"].values()
    steps = "\n".join(step.get("run", "") for step in job["steps"])
    assert "pip install -r requirements.txt" in steps
    assert "python tools/canary.py --out canary-report.md" in steps
    [upload] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["with"]["path"] == "canary-report.md" and upload["if"] == "always()"


def test_the_setup_checks_expected_drift_is_said_to_be_expected():
    notebook = stored()
    fresh = copy.deepcopy(notebook)
    [check] = [c for c in code(fresh) if "check_environment()" in "".join(c["source"])]
    check["outputs"][0]["text"] = ["[FAIL] boto3 1.44.8  (the course needs 1.44.5)\n"]
    report = canary.make_report(results(canary={SETUP.name: notebook_run(fresh)}))
    assert "output changed (expected while anything moved: `check_environment()`" in report
    assert "+[FAIL] boto3 1.44.8  (the course needs 1.44.5)" in report


def test_a_canary_that_cannot_run_exits_2_writes_no_report_and_leaves_no_scratch(tmp_path, capsys):
    scratch_before = set(Path(canary.tempfile.gettempdir()).glob("course-canary-*"))
    out = tmp_path / "report.md"
    assert canary.main(["--python", str(tmp_path / "no-python"), "--out", str(out)]) == 2
    assert "canary could not run" in capsys.readouterr().err
    assert not out.exists()
    assert set(Path(canary.tempfile.gettempdir()).glob("course-canary-*")) == scratch_before
