"""Every worked solution passes its check, run where a learner runs it: in the answer cell.

The solutions are folded markdown at the end of each notebook (tools/fold_solutions.py), so
that JupyterLab's *Run All* never runs them and the stored outputs show no answer. What
their stored "Correct: ..." proved before is proved here: for each notebook, a solved copy,
in which each answer cell keeps its imports and holds its solution's code in place of the
rest (as the notebooks tell a learner to do), runs top to bottom in a fresh kernel, in a
scratch folder, offline where the machine allows it. Each answer cell must print exactly one
"Correct: " line, and no "Not yet", error or stderr.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_runs import NOTEBOOKS, ROOT, offline_prefix

_spec = importlib.util.spec_from_file_location("fold_solutions", ROOT / "tools/fold_solutions.py")
fold_solutions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fold_solutions)

CHECK_CALL = re.compile(r"^check_\w+\(", re.MULTILINE)
ASKED = re.compile(r"^### (?:Exercise|Question) (\d+)", re.MULTILINE)
SOLUTION = re.compile(r"^### Solution (\d+)", re.MULTILINE)
IMPORT = re.compile(r"(?:from \S+ )?import ")
RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
source, executed, folder = sys.argv[1:]
nb = nbformat.read(source, as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True, record_timing=False,
               resources={"metadata": {"path": folder}}).execute()
nbformat.write(nb, executed)
"""


def answer_cells(nb: nbformat.NotebookNode) -> dict[int, int]:
    """Exercise (or question) number -> index of its answer cell: the code cell under its
    heading that calls a checker."""
    found, number = {}, None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            headings = re.findall(r"^#{2,3} .+$", cell.source, re.MULTILINE)
            if headings:
                asked = ASKED.match(headings[-1])
                number = int(asked.group(1)) if asked else None
        elif number is not None and CHECK_CALL.search(cell.source):
            assert number not in found, f"exercise {number} has two answer cells"
            found[number] = index
    return found


def solutions(nb: nbformat.NotebookNode) -> dict[int, str]:
    """Solution number -> the code folded under its heading."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for part in re.split(r"(?=^### )", cell.source, flags=re.MULTILINE):
            heading = SOLUTION.match(part)
            if heading:
                code = fold_solutions.solution_code(part)
                assert code, f"Solution {heading.group(1)}: no folded code under its heading"
                found[int(heading.group(1))] = code
    return found


def leading_imports(source: str) -> str:
    """The import lines an answer cell starts with (its checker's among them)."""
    kept = []
    for line in source.splitlines():
        if line.strip() and not IMPORT.match(line):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def solved_copy(notebook: Path) -> tuple[nbformat.NotebookNode, dict[int, int]]:
    """The notebook with each answer cell replaced by its imports and its solution's code."""
    nb = nbformat.read(notebook, as_version=4)
    answers, worked = answer_cells(nb), solutions(nb)
    assert answers, f"{notebook.name}: no answer cell"
    assert sorted(answers) == sorted(worked), f"answers {sorted(answers)}, solved {sorted(worked)}"
    for number, index in answers.items():
        cell = nb.cells[index]
        imports = leading_imports(cell.source)
        cell.source = f"{imports}\n\n{worked[number]}" if imports else worked[number]
        cell.outputs, cell.execution_count = [], None
    return nb, answers


def execute(nb: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh kernel of this Python with ``folder`` as working folder, offline
    where possible; return the executed notebook."""
    source, executed = folder / "solved.ipynb", folder / "executed.ipynb"
    nbformat.write(nb, source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MLFLOW_"))}
    for setting in ("COURSE_DATA_SOURCE", "COURSE_SAMPLE_TRIPS"):  # as the stored outputs
        env.pop(setting, None)
    # The "python3" kernel is the first python on PATH; `mlflow models serve` needs its bin too.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", RUNNER, str(source), str(executed), str(folder)]
    prefix = offline_prefix()
    if prefix is not None:
        command = [*prefix, *command]
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return nbformat.read(executed, as_version=4)


def text_of(cell: nbformat.NotebookNode, stream: str) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == stream)


WITH_ANSWERS = [nb for nb in NOTEBOOKS if answer_cells(nbformat.read(nb, as_version=4))]


def test_every_notebook_has_answer_cells_each_with_its_solution():
    assert [nb.name[:2] for nb in WITH_ANSWERS] == [nb.name[:2] for nb in NOTEBOOKS]
    for notebook in WITH_ANSWERS:
        solved_copy(notebook)  # each answer cell has its solution, and the other way round


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", WITH_ANSWERS, ids=[nb.stem for nb in WITH_ANSWERS])
def test_every_solution_passes_its_check_in_its_answer_cell(notebook, tmp_path):
    nb, answers = solved_copy(notebook)
    executed = execute(nb, tmp_path)
    problems = []
    for index, cell in enumerate(executed.cells):
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.output_type == "error":
                    problems.append(f"cell {index}: {output.ename}: {output.evalue}")
    for number, index in sorted(answers.items()):
        cell = executed.cells[index]
        printed = text_of(cell, "stdout")
        verdicts = [line for line in printed.splitlines() if line.startswith("Correct: ")]
        if len(verdicts) != 1 or "Not yet" in printed:
            problems.append(f"solution {number}: printed {printed[-1500:]!r}")
        if stderr := text_of(cell, "stderr"):
            problems.append(f"solution {number}: wrote to stderr: {stderr[-1500:]}")
    assert problems == []
