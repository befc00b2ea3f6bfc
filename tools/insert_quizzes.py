"""Write each lesson notebook's quiz cells from helpers/quizzes.py (for instructors).

Why a tool: the questions live in one module (``helpers.quizzes.QUIZZES``), which the answer
cell, the website and the tests all read. This script puts them into notebooks 01-12 as two
cells tagged ``quiz``, right before the "## Summary" cell: the questions (markdown) and the
answer cell (``quiz("01", q1=None, ...)``). Like the navigation cells of some books, they are
found by their tag and replaced, so the script can run again after any change to the data or
to the notebooks:

    python tools/insert_quizzes.py            # write the quiz cells of every notebook
    python tools/insert_quizzes.py --check    # exit 1 if a notebook differs from the data

A cell that is already as the data says is kept as it is, with its stored output, so running
the script twice changes nothing. A new or changed answer cell has no output yet: run
``tools/execute_notebooks.py`` on the notebooks it names (strict nbval compares that output).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from helpers.quizzes import QUIZZES, TAG, notebook_cells

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SUMMARY = "## Summary"


def is_quiz_cell(cell: dict) -> bool:
    return TAG in cell.get("metadata", {}).get("tags", [])


def with_quiz(nb: nbformat.NotebookNode, number: str) -> list[nbformat.NotebookNode]:
    """The notebook's cells with its quiz cells, as the data says, right before its summary
    (or with none, for a notebook that has no quiz)."""
    old = {cell.get("id"): cell for cell in nb.cells if is_quiz_cell(cell)}
    cells = [cell for cell in nb.cells if not is_quiz_cell(cell)]
    if number not in QUIZZES:
        return cells
    wanted = [nbformat.from_dict(cell) for cell in notebook_cells(number)]
    kept = [
        old[cell.id]
        if cell.id in old
        and old[cell.id].cell_type == cell.cell_type
        and old[cell.id].source == cell.source
        and old[cell.id].metadata == cell.metadata
        else cell
        for cell in wanted
    ]
    summaries = [
        i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith(SUMMARY)
    ]
    if len(summaries) != 1:
        raise ValueError(f"{len(summaries)} cells start with {SUMMARY!r}: one is needed")
    return cells[: summaries[0]] + kept + cells[summaries[0] :]


def update(path: Path, *, write: bool) -> bool:
    """Bring the quiz cells of the notebook at ``path`` up to date; True if they were not."""
    nb = nbformat.read(path, as_version=4)
    cells = with_quiz(nb, path.name[:2])
    if cells == nb.cells:
        return False
    if write:
        nb.cells = cells
        nbformat.validate(nb)
        nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="the notebooks' folder")
    args = parser.parse_args(argv)
    paths = sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        parser.error(f"no notebook in {args.notebooks}")
    stale = [path.name for path in paths if update(path, write=not args.check)]
    if args.check:
        if stale:
            print("quiz cells out of date with helpers/quizzes.py (run tools/insert_quizzes.py):")
            print("\n".join(f"  {name}" for name in stale))
            return 1
        print(f"quiz cells up to date in {len(paths)} notebooks")
        return 0
    for name in stale:
        print(f"{name}: quiz cells written (run tools/execute_notebooks.py on it)")
    print(f"{len(paths) - len(stale)} notebooks were up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
