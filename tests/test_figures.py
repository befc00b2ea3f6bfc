"""The figure comparison that nbval runs for us (tests/nbval_figures.py) accepts what is the same
picture and rejects what is not: first on figures drawn here, then inside a real nbval run.

Why both: the comparison function decides the tolerance, but only an nbval run proves that the
plugin is loaded by run_nbval and reached for each compared cell (and not for ignored ones).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from matplotlib.figure import Figure
from nbval_figures import TOLERANCE, compare_pngs, pngs_of
from notebook_runs import report, run_nbval

TRIALS = np.random.default_rng(0).normal(6.4, 0.05, 30)  # RMSEs of a search, like notebook 05's


def draw(best: np.ndarray, trials: np.ndarray = TRIALS, title: str = "", **png: object) -> bytes:
    """A "best so far" plot like notebook 05's, as PNG bytes (the inline backend's tight crop)."""
    figure = Figure(figsize=(5.5, 4))
    axes = figure.add_subplot()
    axes.plot(trials, "o", label="trial")
    axes.plot(best, drawstyle="steps-post", label="best so far")
    axes.set(title=title, xlabel="trial", ylabel="RMSE")
    axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", **png)
    return buffer.getvalue()


BEST = np.minimum.accumulate(TRIALS)
STORED = draw(BEST)


def test_the_same_figure_matches_exactly():
    comparison = compare_pngs(STORED, draw(BEST))
    assert comparison.matches
    assert comparison.rms == 0


def test_a_slightly_rerendered_figure_matches():
    # Other bytes (compression) and data moved in the 6th digit, as another machine may compute.
    trials = TRIALS * (1 + 1e-6)
    fresh = draw(np.minimum.accumulate(trials), trials, pil_kwargs={"compress_level": 1})
    assert fresh != STORED
    comparison = compare_pngs(STORED, fresh)
    assert 0 < comparison.rms <= TOLERANCE / 4, comparison.describe()
    assert comparison.matches


def test_a_different_curve_fails():
    # Notebook 05's trap: "best so far" drawn with cummax instead of cummin.
    comparison = compare_pngs(STORED, draw(np.maximum.accumulate(TRIALS)))
    assert not comparison.matches
    assert comparison.rms > 4 * TOLERANCE, comparison.describe()
    assert re.fullmatch(
        r"RMS \d+\.\d{3} \(tolerance [\d.]+, on a 0-255 scale\)", comparison.describe()
    )


def test_a_figure_of_another_size_fails_whatever_its_pixels():
    fresh = draw(BEST, title="Trial history")  # a title: a taller crop, the same figure size
    comparison = compare_pngs(STORED, fresh)
    assert comparison.expected_size != comparison.actual_size
    assert comparison.rms is None
    assert not comparison.matches
    width, height = comparison.expected_size
    assert f"stored {width}x{height} px" in comparison.describe()


def test_pngs_are_read_from_outputs_in_order_whether_stored_as_one_string_or_lines():
    encoded = base64.b64encode(STORED).decode()
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "printed\n"},
        {"output_type": "display_data", "data": {"image/png": encoded, "text/plain": "<Figure>"}},
        {"output_type": "display_data", "data": {"image/png": [encoded[:64], encoded[64:]]}},
    ]
    assert pngs_of(outputs) == [STORED, STORED]


SETUP = """\
import matplotlib.pyplot as plt
import numpy as np

trials = np.random.default_rng(0).normal(6.4, 0.05, 30)

def draw(best, title=""):
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(trials, "o", label="trial")
    ax.plot(best, drawstyle="steps-post", label="best so far")
    ax.set(title=title, xlabel="trial", ylabel="RMSE")
    ax.legend()
    plt.show()"""
HONEST = "draw(np.minimum.accumulate(trials))"
# (source whose outputs are stored, source that nbval runs): one cell each
CELLS = [
    (SETUP, SETUP),
    (HONEST, HONEST),  # passes
    ("draw(np.maximum.accumulate(trials))", HONEST),  # another curve: fails on RMS
    ('draw(np.minimum.accumulate(trials), "Trial history")', HONEST),  # size
    (HONEST, "pass"),  # no figure drawn (its stored text is removed below): fails on count
    (
        "# NBVAL_IGNORE_OUTPUT\ndraw(np.maximum.accumulate(trials))",
        f"# NBVAL_IGNORE_OUTPUT\n{HONEST}",
    ),
]


def execute(notebook: nbformat.NotebookNode, folder: Path) -> None:
    """Run a notebook in place with this Python's kernel (as ``--nbval-current-env`` does)."""
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

    manager = KernelManager(
        kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager()
    )
    client = NotebookClient(notebook, km=manager, resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    finally:  # a client given its kernel manager leaves the kernel running
        manager.shutdown_kernel(now=True)


@pytest.mark.notebooks
def test_nbval_runs_compare_every_figure_and_save_the_failing_ones(tmp_path):
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(stored) for stored, _ in CELLS]
    )
    execute(notebook, tmp_path)
    for cell, (_, fresh) in zip(notebook.cells, CELLS, strict=True):
        cell.source = fresh
    del notebook.cells[4].outputs[0].data["text/plain"]  # so that nbval's own text check passes
    path = tmp_path / "figures.ipynb"
    nbformat.write(notebook, path)

    result = run_nbval(tmp_path, [path], offline=False)
    out = result.stdout
    assert result.returncode == 1, report(result)
    assert "3 failed, 3 passed" in out, report(result)
    rms = re.search(r"figures\.ipynb, code cell 2, figure 1 differs .*: RMS (\d+\.\d+)", out)
    assert rms and float(rms[1]) > 4 * TOLERANCE, report(result)
    assert re.search(r"code cell 3, figure 1 differs .*: size \d+x\d+ px, stored \d+x\d+ px", out)
    assert "figures.ipynb, code cell 4: 0 figure(s) drawn, 1 stored" in out
    diffs = tmp_path / "figure-diffs"
    assert f"in {diffs}" in out
    assert sorted(p.name for p in diffs.iterdir()) == [
        "figures-cell2-figure1-actual.png",
        "figures-cell2-figure1-diff.png",
        "figures-cell2-figure1-expected.png",
        "figures-cell3-figure1-actual.png",  # no difference image between two sizes
        "figures-cell3-figure1-expected.png",
    ]


def test_the_rms_is_matplotlibs(tmp_path):
    # The tolerance is on matplotlib's scale: compare_images would report the same number.
    from matplotlib.testing.compare import compare_images

    fresh = draw(np.maximum.accumulate(TRIALS))
    (tmp_path / "expected.png").write_bytes(STORED)
    (tmp_path / "actual.png").write_bytes(fresh)
    theirs = compare_images(tmp_path / "expected.png", tmp_path / "actual.png", 0, True)
    assert compare_pngs(STORED, fresh).rms == pytest.approx(theirs["rms"], abs=1e-9)
