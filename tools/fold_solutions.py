"""Fold each worked solution into its "### Solution N" markdown cell (for instructors).

Why: JupyterLab's *Run All* runs every code cell, a collapsed one too, and un-hides its
result; saving keeps it shown. A solution written as a code cell was therefore revealed to
any learner who ran the whole notebook. A solution kept as markdown is never run: its code
sits in a fenced block inside an HTML ``<details>`` fold, which JupyterLab, GitHub and the
website (myst-nb) all render closed, with a "Show the worked solution" summary to click.

    python tools/fold_solutions.py            # every notebook
    python tools/fold_solutions.py 03_start_run

A solution to fold is a code cell whose first line is "# Worked solution: ..." right after a
markdown cell that ends with its "### Solution N" heading; the code goes verbatim into that
markdown cell and the code cell is removed. Re-running it changes nothing once every
solution is folded, so a solution written as a code cell later (easier to run while writing
it) is folded by running the script again. ``solution_code`` reads a fold back, for tests.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SUMMARY = "Show the worked solution"
OPEN = f"<details><summary>{SUMMARY}</summary>"
FOLD = re.compile(
    rf"^{re.escape(OPEN)}\n\n```python\n(?P<code>.*?)\n```\n\n</details>$", re.S | re.M
)
HEADING = re.compile(r"^### Solution (\d+)\s*$")


def fold(code: str) -> str:
    """The markdown that shows ``code`` folded."""
    if "```" in code:
        raise ValueError("a solution's code holds a code fence: it cannot be folded as is")
    return f"{OPEN}\n\n```python\n{code.strip()}\n```\n\n</details>"


def solution_code(markdown: str) -> str | None:
    """The code folded in a solution's markdown cell, or None if it has none."""
    found = FOLD.search(markdown)
    return found.group("code") if found else None


def fold_solutions(nb: nbformat.NotebookNode) -> int:
    """Fold every solution code cell of ``nb`` into its heading's cell; returns how many."""
    folded, cells = 0, []
    for cell in nb.cells:
        previous = cells[-1] if cells else None
        if (
            cell.cell_type == "code"
            and cell.source.startswith("# Worked solution:")
            and previous is not None
            and previous.cell_type == "markdown"
            and HEADING.match(previous.source.strip().splitlines()[-1])
        ):
            previous.source = previous.source.rstrip() + "\n\n" + fold(cell.source)
            folded += 1
            continue
        cells.append(cell)
    nb.cells = cells
    return folded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names or p.name in args.names]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        count = fold_solutions(nb)
        if count:
            nbformat.write(nb, path)
        print(f"{path.name}: {count} solution(s) folded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
