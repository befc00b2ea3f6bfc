"""A setup check: is every package the course pins installed, at the pinned version?

Notebook 00 runs :func:`check_environment`. A learner reads one line per package,
``[ OK ]`` or ``[FAIL]``, and knows at a glance whether setup worked. The list is the course's
direct packages, ``requirements.in``, whose pins the lock ``requirements.txt`` (what the
install command installs) holds too: tests/test_environment_files.py checks that.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.in"
MIN_PYTHON = (3, 11)
"""The oldest Python the pins install on (pyproject.toml's requires-python says the same)."""
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def pinned_requirements(path: Path = REQUIREMENTS) -> dict[str, str]:
    """Package name -> exact version, for every ``name==version`` line of a requirements file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"No requirements file at {path}. The helpers must be installed from the course "
            "folder: run  pip install -r requirements.txt  there."
        )
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def installed_version(package: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def check_environment(path: Path = REQUIREMENTS) -> bool:
    """Print ``[ OK ]`` or ``[FAIL]`` for Python and each pinned package; True if all OK."""
    python_ok = sys.version_info[:2] >= MIN_PYTHON
    oldest = f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}"
    # On success the line names no version at all, so the stored output of notebook 00 is
    # the same on every supported Python; on failure it names this one and the one needed.
    this = f"{sys.version_info.major}.{sys.version_info.minor}"
    shown = "(supported by the course)" if python_ok else this
    lines = [_line(python_ok, "python", shown, f"Python {oldest} or newer")]
    all_ok = python_ok
    for package, wanted in pinned_requirements(path).items():
        found = installed_version(package)
        ok = found == wanted
        all_ok &= ok
        lines.append(_line(ok, package, found or "not installed", wanted))
    print("\n".join(lines))
    if not python_ok:
        print(
            f"\nFix: install Python {oldest}, 3.12 or 3.13, then create the course environment "
            "again with it (see the README's quick start)."
        )
    elif not all_ok:
        print("\nFix: from the course folder run  pip install -r requirements.txt")
    return all_ok


def _line(ok: bool, package: str, found: str, wanted: str) -> str:
    mark = "[ OK ]" if ok else "[FAIL]"
    detail = "" if ok else f"  (the course needs {wanted})"
    return f"{mark} {package} {found}{detail}"
