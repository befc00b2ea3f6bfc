"""Re-run the course notebooks and store their fresh outputs (for instructors).

Why: learners read the stored outputs on GitHub and nbval compares against them, so
after editing a notebook its outputs must be regenerated. This script runs the notebooks
in order, in one scratch folder (as a learner would, but without touching your own
``notebooks/mlflow.db``), with a kernel of this Python, and writes the outputs back.

    python tools/execute_notebooks.py                 # every notebook
    python tools/execute_notebooks.py 03_start_run    # only those named (in a fresh folder)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(paths: list[Path], workdir: Path) -> None:
    """Execute each notebook in ``workdir`` and write its outputs to the original file."""
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            record_timing=False,  # timestamps in cell metadata would make every re-run a diff
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute()
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
        print(f"executed {path.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all, in order)")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names or p.name in args.names]
        if not paths:
            parser.error(f"no notebook matches {args.names}")
    with tempfile.TemporaryDirectory(prefix="course-run-") as tmp:
        execute(paths, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
