"""An upgrade canary: the course under the newest releases of its direct packages (instructors).

Why: the course pins every package it uses directly, so nothing moves until someone moves the
pins; this shows, before anyone does, what the next move breaks. It builds a scratch virtual
environment (``uv venv`` + ``uv pip install``) with the newest release of each direct package
(the names of ``requirements.in``, or of ``requirements.txt`` while there is no ``.in``; local
paths and ``-e`` lines are skipped; a newest release that cannot be installed is replaced by the
newest one that can, and the report says so), plus the course itself. Under that environment it
runs ``tests/test_notebook_standards.py`` and strict nbval on every notebook, each alone in a
scratch folder, exactly as ``tests/notebook_runs.py`` runs them (its sanitize file, its figure
plugin, offline where the machine allows). It does the same with the pinned environment running
this script, so that what already fails with the pins is not blamed on the upgrade, and warnings
are "new" only if the pins do not give them. Then it writes a Markdown report: the packages that
moved, every compared cell whose output changed (a diff of the stored and the new text), the
cells that failed (their error's last lines) and the new warnings.

    python tools/canary.py                                  # report: <temp folder>/canary-report.md
    python tools/canary.py --out docs/canary-$(date +%F).md
    python tools/canary.py --notebooks 00_setup 03_start_run --no-baseline   # a quick look

It exits 0 whenever it wrote a report, however much drifted (it reports, it never blocks), and 2
when it could not run (no uv, an environment that cannot be built, a run that recorded nothing).
It never writes to the working copy: everything runs in a snapshot of it in a scratch folder,
removed at the end unless ``--keep-env``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD_ENV = "COURSE_CANARY_RECORD"
"""Where the nbval plugin below writes what each cell printed (run_nbval passes it on: it drops
only ``PYTEST_*`` and ``MLFLOW_*`` variables)."""
PLUGIN = "canary"
"""This module, loaded by pytest with ``-p canary`` (tools/ on PYTHONPATH) in the nbval runs."""
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#\\]+)")
DIFF_LINES = 40
ERROR_LINES = 12
LINE_WIDTH = 160
FRONT_MATTER = ["---", "orphan: true", "---", ""]
"""The course website builds every docs/*.md (site/conf.py) and fails on a page that no table
of contents lists: ``orphan`` lets a report kept in docs/ be a page of its own."""
SETUP_CHECK = "check_environment()"
"""Notebook 00's setup check: it prints [FAIL] for each package that is not at its pin."""
MAX_TRIES = 5
"""Releases tried, newest first, when the newest cannot be installed."""


class CanaryError(Exception):
    """The canary could not run: there is no report to write."""


# --------------------------------------------------------------------------- the direct list


def normalize(name: str) -> str:
    """A package name as PyPI compares them (PEP 503): ``Scikit_Learn`` -> ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_list_file(root: Path) -> Path:
    """The human-edited list of direct packages: requirements.in if there is one, else the .txt."""
    requirements_in = root / "requirements.in"
    return requirements_in if requirements_in.is_file() else root / "requirements.txt"


def parse_direct(text: str) -> dict[str, str]:
    """Package name (as written) -> pinned version, for each ``name==version`` line.

    Local paths (``./tools/...``), ``-e`` and other options, comments and hash continuation
    lines are not packages of an index: they do not match, so they are skipped."""
    pins = {}
    for line in text.splitlines():
        match = PIN.match(line)  # a name starts with a letter or digit: not ".", "-" or "#"
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


# --------------------------------------------------------------------------- package tables


def parse_versions(text: str) -> list[str]:
    """The versions listed by ``pip index versions NAME``, newest first."""
    match = re.search(r"^Available versions: (.*)$", text, re.MULTILINE)
    if match:
        return [v.strip() for v in match.group(1).split(",") if v.strip()]
    newest = re.search(r"^\S+ \(([^)]+)\)\s*$", text, re.MULTILINE)
    return [newest.group(1)] if newest else []


def package_table(
    pins: dict[str, str],
    newest: dict[str, str | None],
    installed: dict[str, str],
    notes: dict[str, str],
) -> str:
    """Markdown: a table of the direct packages whose version moved or that have a note, then
    the names of those that did not move. Keys of ``newest``, ``installed`` and ``notes`` are
    normalized names."""
    rows, same = [], []
    for name, pin in pins.items():
        key = normalize(name)
        now = installed.get(key, "not installed")
        note = notes.get(key, "")
        latest = newest.get(key) or "?"
        if now == pin and not note:
            same.append(f"{name} {pin}")
            continue
        moved = f"{pin} -> **{now}**" if now != pin else f"{pin} (same)"
        rows.append(f"| {name} | {moved} | {latest} | {note} |")
    lines = []
    if rows:
        lines += ["| Package | Pin -> canary | Newest on the index | Note |", "|---|---|---|---|"]
        lines += rows
    else:
        lines.append("No direct package moved: the newest releases are the pins.")
    if same:
        lines += ["", f"Unchanged ({len(same)}): " + ", ".join(same) + "."]
    return "\n".join(lines)


def indirect_table(before: dict[str, str], after: dict[str, str], direct: Iterable[str]) -> str:
    """Markdown table of the other packages (dependencies) whose version differs between the
    pinned environment and the canary's; keys are normalized names."""
    skip = {normalize(n) for n in direct} | {"mlflow-tracking-course"}
    names = sorted((set(before) | set(after)) - skip)
    rows = [
        f"| {n} | {before.get(n, '-')} | {after.get(n, '-')} |"
        for n in names
        if before.get(n) != after.get(n)
    ]
    if not rows:
        return "No dependency changed version."
    return "\n".join(["| Dependency | With the pins | Canary |", "|---|---|---|", *rows])


# --------------------------------------------------------------------------- outputs and diffs


def sanitize_patterns(sanitize_file: Path) -> list[tuple[str, str]]:
    """(regex, replacement) pairs of an nbval sanitize file, read by nbval itself."""
    from nbval.plugin import get_sanitize_patterns

    return list(get_sanitize_patterns(sanitize_file.read_text(encoding="utf-8")))


def sanitize(text: str, patterns: list[tuple[str, str]]) -> str:
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def join(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


def output_text(outputs: list[dict]) -> str:
    """The text a reader compares in a cell's outputs: streams (merged per stream, as nbval
    does), results (``text/plain``, else ``text/html``), errors; a figure is ``[image/png]``."""
    streams: dict[str, list[str]] = {}
    parts: list[str] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            name = output.get("name", "stdout")
            if name not in streams:
                streams[name] = []
                parts.append(f"\0{name}")
            streams[name].append(join(output.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            shown = [join(data[m]) for m in ("text/plain", "text/html") if m in data][:1]
            shown += [f"[{m}]" for m in ("image/png", "image/jpeg") if m in data]
            parts.append("\n".join(shown))
        elif kind == "error":
            trace = ANSI.sub("", "\n".join(output.get("traceback", [])))
            parts.append(trace or f"{output.get('ename')}: {output.get('evalue')}")
    text = []
    for part in parts:
        if part.startswith("\0"):
            name = part[1:]
            merged = "".join(streams[name])
            text.append(merged if name == "stdout" else f"[{name}]\n{merged}")
        else:
            text.append(part)
    return "\n".join(t.rstrip("\n") for t in text)


def compared(cell: dict) -> bool:
    """Does strict nbval compare this cell's outputs? (Its markers and tags, read by nbval.)"""
    from nbval.plugin import find_comment_markers, find_metadata_tags

    options = dict(find_metadata_tags(cell.get("metadata", {})))
    options.update(dict(find_comment_markers(join(cell.get("source", "")))))
    return not options.get("skip") and options.get("check", True) is not False


@dataclasses.dataclass
class CellChange:
    number: int
    """The cell's place among the notebook's code cells, counted from 0 (nbval's "Cell N")."""
    execution_count: int | None
    first_line: str
    old: str
    new: str


def code_cells(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def changed_cells(
    stored: dict, fresh: dict, patterns: list[tuple[str, str]] | None = None
) -> list[CellChange]:
    """The compared code cells whose output text differs between two notebooks (the stored one
    and one holding a new run's outputs), after the sanitize patterns. Cells the new run did not
    reach (``metadata.canary == "not run"``) are left out: the failure before them says why."""
    changes = []
    pairs = zip(code_cells(stored), code_cells(fresh), strict=True)
    for number, (old_cell, new_cell) in enumerate(pairs):
        if not compared(old_cell) or new_cell.get("metadata", {}).get("canary") == "not run":
            continue
        old = sanitize(output_text(old_cell["outputs"]), patterns or [])
        new = sanitize(output_text(new_cell["outputs"]), patterns or [])
        if old != new:
            lines = join(old_cell["source"]).strip().splitlines() or [""]
            changes.append(CellChange(number, old_cell.get("execution_count"), lines[0], old, new))
    return changes


def trimmed(line: str, width: int = LINE_WIDTH) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def diff(old: str, new: str, limit: int = DIFF_LINES) -> str:
    """A unified diff of two output texts, lines and length trimmed for a report."""
    lines = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), "stored (pins)", "newest", lineterm="", n=2
        )
    )
    shown = [trimmed(line) for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"... {len(lines) - limit} more diff lines")
    return "\n".join(shown)


def last_lines(text: str, count: int = ERROR_LINES) -> str:
    lines = [trimmed(line) for line in ANSI.sub("", text).rstrip().splitlines()]
    return "\n".join(lines[-count:])


# --------------------------------------------------------------------------- warnings

WARNING = re.compile(r"\b(?P<category>[A-Z][A-Za-z]*Warning): (?P<message>\S.*)")
ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][\w.@+~-]+){2,}")
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def find_warnings(text: str, patterns: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """Warnings in a text (a cell's stderr, a pytest run's output): a key that ignores where
    they were raised and volatile details (paths, addresses, ids) -> the line as printed."""
    found = {}
    for line in ANSI.sub("", text).splitlines():
        match = WARNING.search(line)
        if match:
            message = sanitize(match.group("message").strip(), patterns or [])
            message = ADDRESS.sub("<addr>", ABSOLUTE_PATH.sub("<path>", message))
            found.setdefault(f"{match.group('category')}: {message}", trimmed(line.strip(), 300))
    return found


def new_warnings(
    canary: dict[str, list[str]], pinned: Iterable[str]
) -> list[tuple[str, list[str]]]:
    """Warnings (key -> where seen) of the canary that the pinned run did not give: deprecation
    and future warnings first."""
    known = set(pinned)
    fresh = [(k, where) for k, where in canary.items() if k not in known]
    urgent = ("DeprecationWarning", "FutureWarning", "PendingDeprecationWarning")
    return sorted(fresh, key=lambda kw: (not kw[0].startswith(urgent), kw[0]))


# --------------------------------------------------------------------------- one notebook's run


@dataclasses.dataclass
class NotebookRun:
    """What one environment's strict nbval run of one notebook gave."""

    name: str
    returncode: int
    output: str
    """The end of the nbval run's stdout and stderr."""
    fresh: dict | None
    """The notebook with the outputs of this run, or None if no cell ran."""
    outcomes: dict[int, dict]
    """Code cell number -> {"outcome": "passed"/"failed"/"skipped", "message": ...}."""
    seconds: float = 0.0

    @property
    def failed(self) -> list[int]:
        return sorted(n for n, o in self.outcomes.items() if o["outcome"] == "failed")

    @property
    def passed(self) -> bool:
        return self.returncode == 0


def load_run(folder: Path, name: str) -> NotebookRun | None:
    run_file = folder / f"{Path(name).stem}.run.json"
    if not run_file.is_file():
        return None
    run = json.loads(run_file.read_text(encoding="utf-8"))
    fresh_file = folder / f"{Path(name).stem}.fresh.ipynb"
    fresh = json.loads(fresh_file.read_text(encoding="utf-8")) if fresh_file.is_file() else None
    outcomes_file = folder / f"{Path(name).stem}.outcomes.json"
    outcomes = {}
    if outcomes_file.is_file():
        outcomes = {int(k): v for k, v in json.loads(outcomes_file.read_text()).items()}
    return NotebookRun(name, run["returncode"], run["output"], fresh, outcomes, run["seconds"])


def run_warnings(run: NotebookRun, patterns: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Warning key -> where it was seen (a cell's outputs, or the nbval run's own output)."""
    where: dict[str, list[str]] = {}
    cells = code_cells(run.fresh) if run.fresh else []
    for number, cell in enumerate(cells):
        for key in find_warnings(output_text(cell["outputs"]), patterns):
            where.setdefault(key, []).append(f"{run.name} cell {number}")
    for key in find_warnings(run.output, patterns):
        where.setdefault(key, []).append(f"{run.name} (nbval run output)")
    return where


def failure_text(run: NotebookRun, number: int) -> str:
    """The last lines of why a cell failed: its error output if it raised, else nbval's message."""
    if run.fresh:
        cell = code_cells(run.fresh)[number]
        errors = [o for o in cell["outputs"] if o.get("output_type") == "error"]
        if errors:
            return last_lines(output_text(errors))
    return last_lines(run.outcomes[number].get("message", ""))


def raised(cell: dict) -> bool:
    return any(o.get("output_type") == "error" for o in cell["outputs"])


def notebook_section(
    stored: dict, canary: NotebookRun, pinned: NotebookRun | None, patterns: list[tuple[str, str]]
) -> str:
    """Markdown for one notebook: each cell that raised (its error's last lines), each compared
    cell whose output changed (a diff), each other failure (nbval's message, last lines)."""
    lines = [f"### {canary.name}", ""]
    if canary.fresh is None:
        lines += ["No cell ran. The end of the nbval run:", "", "```", last_lines(canary.output)]
        return "\n".join([*lines, "```", ""])
    changes = {c.number: c for c in changed_cells(stored, canary.fresh, patterns)}
    pinned_changes = (
        {c.number for c in changed_cells(stored, pinned.fresh, patterns)}
        if pinned and pinned.fresh
        else set()
    )
    pinned_failed = set(pinned.failed) if pinned else set()
    fresh_cells = code_cells(canary.fresh)
    if not changes and not canary.failed:
        lines.append("Every compared output is as stored.")
        if not canary.passed:
            lines += ["", "But the run failed:", "", "```", last_lines(canary.output), "```"]
        return "\n".join([*lines, ""])
    for number in sorted(set(changes) | set(canary.failed)):
        source = join(code_cells(stored)[number]["source"]).strip().splitlines() or [""]
        count = code_cells(stored)[number].get("execution_count")
        title = f"**Cell {number}** (`In [{count}]`: `{trimmed(source[0], 80)}`)"
        if raised(fresh_cells[number]):
            also = " (it fails with the pins too)" if number in pinned_failed else ""
            lines += [f"{title} raised{also}:", "", "```", failure_text(canary, number), "```", ""]
        elif number in changes:
            also = " (it differs with the pins too)" if number in pinned_changes else ""
            if SETUP_CHECK in "\n".join(source):
                also += f" (expected while anything moved: `{SETUP_CHECK}` compares with the pins)"
            lines += [f"{title}: output changed{also}", "", "```diff"]
            lines += [diff(changes[number].old, changes[number].new), "```", ""]
        else:
            also = " (it fails with the pins too)" if number in pinned_failed else ""
            lines += [f"{title} failed{also}:", "", "```", failure_text(canary, number), "```", ""]
    not_run = [n for n, c in enumerate(fresh_cells) if c["metadata"].get("canary") == "not run"]
    if not_run:
        lines += [f"Cells not reached after the failure: {len(not_run)}.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the report


@dataclasses.dataclass
class Results:
    """Everything the report is made of."""

    day: str
    seconds: float
    python: str
    direct_file: str
    pins: dict[str, str]
    newest: dict[str, str | None]
    installed: dict[str, str]
    pinned_installed: dict[str, str]
    notes: dict[str, str]
    stored: dict[str, dict]
    canary: dict[str, NotebookRun | None]
    pinned: dict[str, NotebookRun | None]
    standards: dict[str, str]
    """"canary" / "pins" -> the summary of the standards tests' run."""
    offline: bool
    patterns: list[tuple[str, str]]
    covers: str = ""
    working_copy_note: str = ""


def make_report(r: Results) -> str:
    """The Markdown report."""
    names = list(r.stored)
    moved = [n for n, v in r.pins.items() if r.installed.get(normalize(n), "not installed") != v]
    canary_pass = [n for n in names if r.canary.get(n) and r.canary[n].passed]
    pinned_pass = [n for n in names if r.pinned.get(n) and r.pinned[n].passed]
    with_pins = bool(r.pinned)
    pinned_warnings: set[str] = set()
    canary_warnings: dict[str, list[str]] = {}
    for n in names:
        pinned_warnings |= set(run_warnings(r.pinned[n], r.patterns)) if r.pinned.get(n) else set()
        stored_text = "\n".join(output_text(c["outputs"]) for c in code_cells(r.stored[n]))
        pinned_warnings |= set(find_warnings(stored_text, r.patterns))
        if r.canary.get(n):
            for key, where in run_warnings(r.canary[n], r.patterns).items():
                canary_warnings.setdefault(key, []).extend(where)
    for key in find_warnings(r.standards.get("pins", ""), r.patterns):
        pinned_warnings.add(key)
    for key in find_warnings(r.standards.get("canary", ""), r.patterns):
        canary_warnings.setdefault(key, []).append("tests/test_notebook_standards.py run")
    fresh_warnings = new_warnings(canary_warnings, pinned_warnings)
    changed_total = sum(
        len(changed_cells(r.stored[n], r.canary[n].fresh, r.patterns))
        for n in names
        if r.canary.get(n) and r.canary[n].fresh
    )
    failed_total = sum(len(r.canary[n].failed) for n in names if r.canary.get(n))
    minutes = f"{r.seconds / 60:.0f} min" if r.seconds >= 90 else f"{r.seconds:.0f} s"
    out = [
        *FRONT_MATTER,
        f"# Upgrade canary, {r.day}",
        "",
        "Made by `python tools/canary.py` (tools/canary.py says how): the course's direct "
        f"packages ({r.direct_file}) at their newest installable releases, Python {r.python}, "
        f"every notebook alone in a scratch folder under strict nbval "
        f"({'offline' if r.offline else 'with the network on'}), compared with the stored "
        + ("outputs and with a run of the pinned environment." if with_pins else "outputs.")
        + f" Run time: {minutes}.",
        "",
    ]
    if r.covers:
        out += [f"**Coverage: {r.covers}**", ""]
    out += [
        "## Summary",
        "",
        f"- Direct packages that moved: {len(moved)} of {len(r.pins)}"
        + (f" ({', '.join(moved)})" if moved else "")
        + ".",
        f"- Notebooks that pass strict nbval with the newest packages: "
        f"{len(canary_pass)} of {len(names)}"
        + (f" (with the pins: {len(pinned_pass)} of {len(names)})." if with_pins else "."),
        f"- Compared cells whose output changed: {changed_total}; cells that failed: "
        f"{failed_total}.",
        f"- New warnings (not given with the pins): {len(fresh_warnings)} (warnings seen: "
        f"{len(canary_warnings)} with the newest packages, {len(pinned_warnings)} with the pins "
        "or in the stored outputs).",
        f"- tests/test_notebook_standards.py with the newest packages: "
        f"{summary_line(r.standards.get('canary', ''))}"
        + (f" (with the pins: {summary_line(r.standards.get('pins', ''))})." if with_pins else "."),
    ]
    if r.working_copy_note:
        out.append(f"- {r.working_copy_note}")
    out += [
        "",
        "## Packages",
        "",
        package_table(r.pins, r.newest, r.installed, r.notes),
        "",
    ]
    if r.pinned_installed:
        out += [
            "Dependencies (not pinned by the course) that differ between the two environments:",
            "",
            indirect_table(r.pinned_installed, r.installed, r.pins),
            "",
        ]
    out += ["## Notebooks", ""]
    out += [
        "| Notebook | With the pins | Newest | Changed cells | Failed cells | Time |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        run, base = r.canary.get(n), r.pinned.get(n)
        status = verdict(run)
        base_status = verdict(base) if with_pins else "not run"
        changes = (
            len(changed_cells(r.stored[n], run.fresh, r.patterns)) if run and run.fresh else "-"
        )
        failed = len(run.failed) if run else "-"
        seconds = f"{run.seconds:.0f} s" if run else "-"
        out.append(f"| {n} | {base_status} | {status} | {changes} | {failed} | {seconds} |")
    out.append("")
    for n in names:
        run = r.canary.get(n)
        if run is None:
            out += [f"### {n}", "", "Not run.", ""]
        else:
            out.append(notebook_section(r.stored[n], run, r.pinned.get(n), r.patterns))
    out += ["## New warnings", ""]
    if not fresh_warnings:
        out.append("None: every warning of the canary's runs also comes with the pins.")
    for key, where in fresh_warnings:
        places = sorted(set(where))
        shown = ", ".join(places[:4]) + (f" and {len(places) - 4} more" if len(places) > 4 else "")
        out.append(f"- `{trimmed(key, 240)}` ({shown})")
    out += ["", "## Standards tests with the newest packages", "", "```"]
    out += [last_lines(r.standards.get("canary", "not run"), 25), "```", ""]
    return "\n".join(out)


def verdict(run: NotebookRun | None) -> str:
    if run is None:
        return "not run"
    if run.passed:
        return "passes"
    return f"fails ({len(run.failed)} cells)" if run.failed else f"fails (exit {run.returncode})"


def summary_line(output: str) -> str:
    """pytest's last summary line (``12 passed in 3.1s``), or a note that it did not run."""
    lines = [line.strip("= ") for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "not run"


# --------------------------------------------------------------------------- nbval plugin
# Loaded with -p canary inside the nbval runs: it loads the course's figure plugin too, and
# records what each cell printed, then writes <notebook>.fresh.ipynb and .outcomes.json.

pytest_plugins = ["nbval_figures"]
_NOTEBOOKS: dict[str, dict] = {}
"""Notebook file name -> the notebook nbval read (its stored outputs)."""
_OUTPUTS: dict[str, dict[int, list]] = {}
"""Notebook file name -> code cell number -> the outputs this run gave."""
_OUTCOMES: dict[str, dict[int, dict]] = {}
"""Notebook file name -> code cell number -> {"outcome": ..., "message": ...}."""


def pytest_runtest_teardown(item, nextitem):
    if not (hasattr(item, "test_outputs") and hasattr(item, "cell_num")):
        return
    name = Path(str(item.fspath)).name
    _NOTEBOOKS.setdefault(name, item.parent.nb)
    if item.test_outputs is None:  # skipped, or failed before it ran
        return
    outputs = json.loads(json.dumps(item.test_outputs))
    for output in outputs:
        for mime in ("image/png", "image/jpeg"):
            if mime in output.get("data", {}):
                output["data"][mime] = f"<{len(output['data'][mime])} characters>"
    _OUTPUTS.setdefault(name, {})[item.cell_num] = outputs


def pytest_runtest_makereport(item, call):
    """Record each cell's outcome (and nbval's message when it fails); pytest's own report is
    made as usual (this returns None)."""
    if not (hasattr(item, "test_outputs") and hasattr(item, "cell_num")):
        return None
    outcomes = _OUTCOMES.setdefault(Path(str(item.fspath)).name, {})
    if call.excinfo is None:
        if call.when == "call":
            outcomes.setdefault(item.cell_num, {"outcome": "passed", "message": ""})
        return None
    if call.excinfo.typename == "Skipped":
        outcomes[item.cell_num] = {"outcome": "skipped", "message": ""}
        return None
    message = ANSI.sub("", str(item.repr_failure(call.excinfo)))
    outcomes[item.cell_num] = {"outcome": "failed", "message": message[-6000:]}
    return None


def pytest_sessionfinish(session, exitstatus):
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return
    for name in set(_NOTEBOOKS) | set(_OUTCOMES):
        stem = Path(name).stem
        outcomes = _OUTCOMES.get(name, {})
        (Path(folder) / f"{stem}.outcomes.json").write_text(json.dumps(outcomes))
        if name not in _NOTEBOOKS or not _OUTPUTS.get(name):
            continue
        fresh = json.loads(json.dumps(_NOTEBOOKS[name]))
        for number, cell in enumerate(code_cells(fresh)):
            if number in _OUTPUTS[name]:
                cell["outputs"] = _OUTPUTS[name][number]
            else:
                cell["outputs"] = []
                cell["metadata"]["canary"] = "not run"
        (Path(folder) / f"{stem}.fresh.ipynb").write_text(json.dumps(fresh, indent=1))


# --------------------------------------------------------------------------- the worker


def installed_packages() -> dict[str, str]:
    """Normalized name -> version of every distribution of this interpreter."""
    from importlib.metadata import distributions

    return {normalize(d.metadata["Name"]): d.version for d in distributions()}


def worker(record: Path, names: list[str]) -> int:
    """Run in the environment under test (the snapshot's tools/canary.py): the standards tests,
    then each notebook alone under strict nbval with tests/notebook_runs.py's own functions."""
    sys.path.insert(0, str(ROOT / "tests"))
    import notebook_runs

    notebook_runs.FIGURES_PLUGIN = PLUGIN  # this module, which loads nbval_figures itself
    record.mkdir(parents=True, exist_ok=True)
    (record / "packages.json").write_text(json.dumps(installed_packages()))
    standards = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"]
        + ["tests/test_notebook_standards.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    (record / "standards.txt").write_text(standards.stdout[-20000:] + standards.stderr[-5000:])
    offline = notebook_runs.offline_prefix() is not None
    (record / "offline.json").write_text(json.dumps(offline))
    notebooks = [nb for nb in notebook_runs.NOTEBOOKS if not names or nb.stem in names]
    for notebook in notebooks:
        with tempfile.TemporaryDirectory(prefix=f"canary-{notebook.stem}-") as tmp:
            [copy] = notebook_runs.copy_notebooks(Path(tmp), [notebook])
            os.environ[RECORD_ENV] = str(record)
            start = time.monotonic()
            result = notebook_runs.run_nbval(Path(tmp), [copy], offline=offline)
            seconds = time.monotonic() - start
            run = {
                "returncode": result.returncode,
                "output": notebook_runs.report(result),
                "seconds": seconds,
            }
            (record / f"{notebook.stem}.run.json").write_text(json.dumps(run))
            print(f"{notebook.name}: exit {result.returncode} in {seconds:.0f} s", flush=True)
    return 0


# --------------------------------------------------------------------------- building


def capture(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def snapshot(source: Path, target: Path) -> Path:
    """Copy the working copy's files (tracked and untracked, not ignored) to ``target``."""
    listed = capture(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source)
    if listed.returncode == 0:
        files = [f for f in listed.stdout.split("\0") if f]
    else:
        files = [str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
    for name in files:
        path = source / name
        if path.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name)
    return target


def python_version(python: str) -> str:
    found = capture([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    if found.returncode != 0:
        raise CanaryError(f"cannot run {python}: {found.stderr.strip()}")
    return found.stdout.strip()


def index_versions(name: str, python: str) -> list[str]:
    """The releases on the index for this Python, newest first (``pip index versions``)."""
    found = capture(
        [sys.executable, "-m", "pip", "index", "versions", name, "--python-version", python]
    )
    return parse_versions(found.stdout)


def unsatisfiable(requirement: str, python: str, env: dict[str, str]) -> str | None:
    """Why uv cannot resolve ``requirement`` alone for this Python, or None if it can."""
    compiled = capture(
        ["uv", "pip", "compile", "-q", "--no-header", "--python-version", python, "-"],
        input=requirement,
        env=env,
    )
    if compiled.returncode == 0:
        return None
    reasons = [line.strip() for line in compiled.stderr.splitlines() if "cause:" in line]
    reason = reasons[0].removeprefix("cause: ") if reasons else last_lines(compiled.stderr, 2)
    return reason.rstrip(".")


def newest_installable(
    name: str, pin: str, versions: list[str], python: str, env: dict[str, str]
) -> tuple[str | None, list[str]]:
    """The newest release of ``name`` that uv can install (alone), never older than the pin,
    and why each newer one cannot be installed."""
    refused = []
    for candidate in versions[:MAX_TRIES]:
        reason = unsatisfiable(f"{name}=={candidate}", python, env)
        if reason is None:
            return candidate, refused
        refused.append(f"{candidate} cannot be installed: {reason}")
        if candidate == pin:
            break
    return None, refused


def build_environment(
    venv: Path, python: str, version: str, pins: dict[str, str], course: Path
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Create the canary's environment; return the newest releases and notes per package.

    Each package is asked for as ``name>=pin,<=newest installable``: the resolver then takes
    the newest releases that go together, and never goes back before a pin (unpinned, it would
    rather install an MLflow of 2022 than hold back pyarrow)."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(venv)}
    if not shutil.which("uv"):
        raise CanaryError("uv is not on PATH (pip install uv)")
    made = capture(["uv", "venv", "-q", "--python", python, str(venv)], env=env)
    if made.returncode != 0:
        raise CanaryError(f"uv venv failed:\n{made.stderr}")
    newest: dict[str, str | None] = {}
    notes: dict[str, str] = {}
    requirements = []
    for name, pin in pins.items():
        key = normalize(name)
        versions = index_versions(name, version)
        newest[key] = versions[0] if versions else None
        chosen, refused = newest_installable(name, pin, versions, version, env)
        if refused:
            fallback = f"the newest that can is {chosen}" if chosen else "none newer than the pin"
            notes[key] = "; ".join([*refused, fallback])
        requirements.append(f"{name}>={pin},<={chosen}" if chosen else f"{name}>={pin}")
    print(f"installing {len(requirements)} packages with uv", flush=True)
    install = capture(["uv", "pip", "install", *requirements, "-e", str(course)], env=env)
    if install.returncode != 0:
        raise CanaryError(f"uv pip install {' '.join(requirements)} failed:\n{install.stderr}")
    return newest, notes


def required_by(venv_python: Path, name: str) -> str:
    """Which installed packages require ``name`` (uv pip show), for a held-back package."""
    shown = capture(["uv", "pip", "show", "--python", str(venv_python), name])
    found = re.search(r"^Required-by: (.*)$", shown.stdout, re.MULTILINE)
    return found.group(1).strip() if found else ""


def start_worker(python: Path | str, course: Path, record: Path, names: list[str]):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(course / "tools"), str(course), env.get("PYTHONPATH")])
    )
    env.pop("VIRTUAL_ENV", None)
    log = open(record.with_suffix(".log"), "w")  # closed by canary() when the worker ends
    command = [str(python), str(course / "tools" / "canary.py"), "--worker", str(record), *names]
    return subprocess.Popen(command, cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT), log


def read_record(record: Path, names: list[str]) -> tuple[dict, dict, str, bool]:
    runs = {n: load_run(record, n) for n in names}
    packages_file = record / "packages.json"
    packages = json.loads(packages_file.read_text()) if packages_file.is_file() else {}
    standards_file = record / "standards.txt"
    standards = standards_file.read_text() if standards_file.is_file() else ""
    offline_file = record / "offline.json"
    offline = json.loads(offline_file.read_text()) if offline_file.is_file() else False
    return runs, packages, standards, offline


def notebooks_digest(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.ipynb"))}


def canary(args: argparse.Namespace) -> Path:
    start = time.monotonic()
    before = notebooks_digest(ROOT / "notebooks")
    scratch = Path(tempfile.mkdtemp(prefix="course-canary-"))
    try:
        course = snapshot(ROOT, scratch / "course")
        direct_file = direct_list_file(course)
        pins = parse_direct(direct_file.read_text(encoding="utf-8"))
        if not pins:
            raise CanaryError(f"no name==version line in {direct_file.name}")
        all_notebooks = sorted((course / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        chosen = [nb for nb in all_notebooks if not args.notebooks or nb.stem in args.notebooks]
        if not chosen:
            raise CanaryError(f"no notebook matches {args.notebooks}")
        names = [nb.stem for nb in chosen] if args.notebooks else []
        python = args.python or sys.executable
        version = python_version(python)
        print(f"building the canary's environment (Python {version}) in {scratch}", flush=True)
        newest, notes = build_environment(scratch / "venv", python, version, pins, course)
        venv_python = scratch / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
        print("running the standards tests and the notebooks", flush=True)
        workers = {"canary": start_worker(venv_python, course, scratch / "canary", names)}
        if not args.no_baseline:
            workers["pins"] = start_worker(sys.executable, course, scratch / "pins", names)
        for label, (process, log) in workers.items():
            process.wait()
            log.close()
            if process.returncode != 0:
                raise CanaryError(
                    f"the {label} run failed:\n{(scratch / f'{label}.log').read_text()[-3000:]}"
                )
        notebook_names = [nb.name for nb in chosen]
        canary_runs, installed, standards, offline = read_record(scratch / "canary", notebook_names)
        if not any(canary_runs.values()):
            raise CanaryError("the canary's run recorded no notebook")
        pinned_runs, pinned_installed, pinned_standards = {}, {}, ""
        if not args.no_baseline:
            pinned_runs, pinned_installed, pinned_standards, _ = read_record(
                scratch / "pins", notebook_names
            )
        for name, pin in pins.items():
            key = normalize(name)
            have, latest = installed.get(key), newest.get(key)
            if have and latest and have != latest and key not in notes:
                users = required_by(venv_python, name)
                notes[key] = f"{latest} is held back by the other packages' requirements" + (
                    f" (required by: {users})" if users else ""
                )
            if pinned_installed and pinned_installed.get(key) != pin:
                extra = f"the pinned run had {pinned_installed.get(key, 'none')}"
                notes[key] = "; ".join(filter(None, [notes.get(key), extra]))
        covers = ""
        if len(chosen) < len(all_notebooks):
            covers = f"only {', '.join(nb.stem for nb in chosen)} (--notebooks)"
        if args.no_baseline:
            covers = "; ".join(filter(None, [covers, "no run with the pins (--no-baseline)"]))
        after = notebooks_digest(ROOT / "notebooks")
        results = Results(
            day=date.today().isoformat(),
            seconds=time.monotonic() - start,
            python=version,
            direct_file=direct_file.name,
            pins=pins,
            newest=newest,
            installed=installed,
            pinned_installed=pinned_installed,
            notes=notes,
            stored={nb.name: json.loads(nb.read_text(encoding="utf-8")) for nb in chosen},
            canary=canary_runs,
            pinned=pinned_runs,
            standards={"canary": standards, "pins": pinned_standards},
            offline=offline,
            patterns=sanitize_patterns(course / "tests" / "nbval_sanitize.cfg"),
            covers=covers,
            working_copy_note=(
                "The course's notebooks were left untouched."
                if after == before
                else "WARNING: the notebooks changed during the run."
            ),
        )
        report = make_report(results)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report, encoding="utf-8")
        return args.out
    finally:
        if args.keep_env:
            print(f"kept the scratch folder: {scratch}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Upgrade canary: run the course's notebooks (strict nbval) and standards tests with "
            "the newest releases of its direct packages, and report what changed. Exits 0 when "
            "it wrote a report (drift is reported, never a failure), 2 when it could not run."
        )
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "canary-report.md",
        help="where to write the Markdown report (default: %(default)s)",
    )
    parser.add_argument(
        "--python",
        help="the interpreter of the canary's environment (default: the one running this script)",
    )
    parser.add_argument(
        "--keep-env",
        action="store_true",
        help="keep the scratch folder (environment, runs' records) and print where it is",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the run with the pinned environment (faster; every warning then counts as new)",
    )
    parser.add_argument(
        "--notebooks", nargs="+", metavar="NAME", help="only these notebooks (e.g. 03_start_run)"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.names)
    try:
        out = canary(args)
    except (CanaryError, OSError) as error:  # OSError: a program that cannot be started
        print(f"canary could not run: {error}", file=sys.stderr)
        return 2
    print(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
