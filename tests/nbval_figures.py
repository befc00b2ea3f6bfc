"""A pytest plugin that makes nbval compare figures too: every stored ``image/png`` output.

Why: nbval 0.11 drops ``image/png`` from its comparison unless ``--nbdime`` is given (and then
it wants the base64 text byte for byte, which no two renderings promise). So a wrong plot
passed strict mode: turning notebook 05's "best so far" line from ``cummin`` into ``cummax``
changed no text output. With ``-p nbval_figures`` (tests/ on ``PYTHONPATH``), each compared cell
must also produce as many PNGs as it stored, each of the same size in pixels and within
``TOLERANCE`` of the stored one (root mean square of the pixel differences, on matplotlib's 0-255
scale, the formula of ``matplotlib.testing.compare.calculate_rms``). Cells that nbval does not
compare (``NBVAL_IGNORE_OUTPUT``, ``NBVAL_SKIP``, ``--nbval-lax``) are left alone.

A failing figure is saved as ``<notebook>-cell<N>-figure<K>-{expected,actual,diff}.png`` in
``--nbval-figures-dir`` (run_nbval gives a ``figure-diffs`` folder beside the notebooks: the test's
own tmp folder), and the message names that folder.
"""

from __future__ import annotations

import base64
import functools
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nbval.plugin import IPyNbCell
from PIL import Image

TOLERANCE = 1.0
"""Largest RMS that still counts as the same figure, chosen from measurement (notebook 05's figure).

Honest reruns: RMS 0.000 for each of the 3 stored figures (03 and 05), on Python 3.11, 3.12 and
3.13, with 1 and 4 BLAS threads. Plotted data moved by a relative 1e-5 (last-digit noise of
another machine): 0.28. One trial's point moved by 0.005 minutes: 1.98; by 0.05: 4.3.
``cummax`` for ``cummin``: 14.4. So 1.0 passes noise with 3.5x margin and fails a moved point.
"""
MIME = "image/png"


@dataclass(frozen=True)
class FigureComparison:
    """How a fresh figure compares with the stored one; ``rms`` is None when sizes differ."""

    expected_size: tuple[int, int]
    actual_size: tuple[int, int]
    rms: float | None
    tolerance: float

    @property
    def matches(self) -> bool:
        return self.rms is not None and self.rms <= self.tolerance

    def describe(self) -> str:
        """One line a reader can act on: the sizes when they differ, else the RMS."""
        if self.rms is None:
            return (
                f"size {self.actual_size[0]}x{self.actual_size[1]} px, "
                f"stored {self.expected_size[0]}x{self.expected_size[1]} px"
            )
        return f"RMS {self.rms:.3f} (tolerance {self.tolerance}, on a 0-255 scale)"


def decode_png(data: bytes) -> np.ndarray:
    """Pixels as matplotlib's comparison loads them: RGB, or RGBA when not fully opaque.

    Inline figures are opaque RGBA; dropping an all-255 alpha channel keeps it out of the mean,
    so an RMS here equals the one ``compare_images`` would report for the same two files.
    """
    image = Image.open(io.BytesIO(data))
    if image.mode != "RGB":
        image = image.convert("RGBA")
        if image.getextrema()[3][0] == 255:
            image = image.convert("RGB")
    return np.asarray(image)


def compare_pngs(expected: bytes, actual: bytes, tolerance: float = TOLERANCE) -> FigureComparison:
    """Compare two PNG files' bytes; different dimensions never match, whatever the pixels."""
    old, new = decode_png(expected), decode_png(actual)
    sizes = (old.shape[1], old.shape[0]), (new.shape[1], new.shape[0])
    same_shape = old.shape == new.shape
    rms = float(np.sqrt(((old.astype(float) - new) ** 2).mean())) if same_shape else None
    return FigureComparison(*sizes, rms=rms, tolerance=tolerance)


def save_figures(folder: Path, stem: str, expected: bytes, actual: bytes) -> list[Path]:
    """Write the stored and fresh PNGs, and their difference when sizes allow; return the paths.

    matplotlib is imported here, on failure only: it would add seconds to every nbval run.
    """
    from matplotlib.testing.compare import save_diff_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}-expected.png", folder / f"{stem}-actual.png"]
    paths[0].write_bytes(expected)
    paths[1].write_bytes(actual)
    if decode_png(expected).shape == decode_png(actual).shape:
        paths.append(folder / f"{stem}-diff.png")
        save_diff_image(str(paths[0]), str(paths[1]), str(paths[2]))
    return paths


def pngs_of(outputs: list[dict[str, Any]]) -> list[bytes]:
    """The PNG outputs of a cell, decoded, in order (stored ones may be split into lines)."""
    pngs = []
    for output in outputs:
        data = output.get("data", {}).get(MIME)
        if data is not None:
            pngs.append(base64.b64decode("".join(data) if isinstance(data, list) else data))
    return pngs


def figure_problems(item: IPyNbCell, fresh: list[bytes], stored: list[bytes]) -> list[str]:
    """Messages for every figure of ``item`` that does not match; saves the failing ones."""
    notebook = Path(str(item.fspath)).name
    where = f"{notebook}, code cell {item.cell_num}"
    if len(fresh) != len(stored):
        return [f"{where}: {len(fresh)} figure(s) drawn, {len(stored)} stored"]
    problems = []
    for number, (expected, actual) in enumerate(zip(stored, fresh, strict=True), start=1):
        comparison = compare_pngs(expected, actual)
        # In --junitxml reports: how the tolerance was measured, and how a rerun compares with it
        item.user_properties.append((f"figure {number} RMS", comparison.rms))
        if comparison.matches:
            continue
        folder = figures_dir(item.config)
        stem = f"{Path(notebook).stem}-cell{item.cell_num}-figure{number}"
        saved = save_figures(folder, stem, expected, actual)
        problems.append(
            f"{where}, figure {number} differs from the stored one: {comparison.describe()}.\n"
            f"  Saved: {', '.join(p.name for p in saved)}\n"
            f"  in {folder}"
        )
    return problems


def figures_dir(config: pytest.Config) -> Path:
    """Where failing figures go: the folder given, else a new temporary one (never the repo)."""
    if config.option.nbval_figures_dir:
        return Path(config.option.nbval_figures_dir)
    if not hasattr(config, "_nbval_figures_dir"):
        config._nbval_figures_dir = Path(tempfile.mkdtemp(prefix="nbval-figures-"))
    return config._nbval_figures_dir


def compare_with_figures(
    item: IPyNbCell, compare_text: Callable[..., bool], test: list, ref: list, skip=None
) -> bool:
    """nbval's comparison, then the figures' (only when the text already matches)."""
    if not compare_text(test, ref, skip):
        return False
    problems = figure_problems(item, pngs_of(test), pngs_of(ref))
    item.comparison_traceback.extend(problems)
    return not problems


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("nbval").addoption(
        "--nbval-figures-dir",
        default=None,
        help="folder for the stored, fresh and difference PNGs of figures that do not match",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Wrap each nbval cell's ``compare_outputs`` (called only for cells nbval compares)."""
    for item in items:
        if isinstance(item, IPyNbCell):
            compare_text = item.compare_outputs
            item.compare_outputs = functools.partial(compare_with_figures, item, compare_text)
