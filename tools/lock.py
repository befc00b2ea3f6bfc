"""Make ``requirements.txt``, the lock of every package the course installs, from
``requirements.in``, the course's direct packages (the list a person edits).

Why a lock: pinning only the direct packages lets the ~190 others float, so a learner next
year would get other versions of numpy, SciPy, SQLAlchemy... and outputs that differ from
the stored ones. The lock pins every distribution, for Linux, macOS and Windows on every
supported Python, with the hashes of its files, so an install is the same everywhere and
a tampered file is refused.

    python tools/lock.py            # after editing requirements.in (needs PyPI, and uv)
    python tools/lock.py --check    # is requirements.txt the lock of requirements.in?

It runs ``uv pip compile --universal --generate-hashes`` and puts the Python version guard
first: a small source archive (``tools/dist/``, built here from
``tools/python_version_guard/``, byte for byte the same each time) that pip builds only on
Python older than the course supports, where it stops the install with a clear message.
The course's own package is not in the lock (an editable install cannot carry a hash): the
README installs it after, with ``pip install --no-deps -e .``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECT = ROOT / "requirements.in"
LOCK = ROOT / "requirements.txt"
GUARD_SOURCE = ROOT / "tools" / "python_version_guard"
GUARD_ARCHIVE = ROOT / "tools" / "dist" / "course_python_version_guard-1.0.tar.gz"
OLDEST_PYTHON = "3.11"
COMMAND = "python tools/lock.py"
HEADER = f"""\
# The lock: every package the course installs, pinned, with the hashes of its files, for
# Linux, macOS and Windows on Python 3.11, 3.12 and 3.13. Do not edit it: edit
# requirements.in (the course's direct packages), then run  {COMMAND}
# Install it with  pip install -r requirements.txt  then the course's helpers with
# pip install --no-deps -e .  (an editable install cannot carry a hash, so it comes after).
"""


def build_guard_archive(source: Path = GUARD_SOURCE) -> bytes:
    """The guard's source archive, the same bytes every time (fixed order, times, owner).

    Why reproducible: its hash is in the lock, and a test rebuilds it to prove the archive
    in the repository is made of the guard's sources as they are.
    """
    base = GUARD_ARCHIVE.name.removesuffix(".tar.gz")
    files = {
        "PKG-INFO": b"Metadata-Version: 2.1\nName: course_python_version_guard\nVersion: 1.0\n",
        "pyproject.toml": (source / "pyproject.toml").read_bytes(),
        "python_version_guard.py": (source / "python_version_guard.py").read_bytes(),
    }
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as zipped:
        zipped.write(tar_bytes.getvalue())
    return packed.getvalue()


def guard_line(archive: bytes) -> str:
    """The lock's first line: the guard archive, for old Pythons only, with its hash."""
    relative = GUARD_ARCHIVE.relative_to(ROOT).as_posix()
    digest = hashlib.sha256(archive).hexdigest()
    return (
        f'./{relative} ; python_version < "{OLDEST_PYTHON}" \\\n'
        f"    --hash=sha256:{digest}\n"
        "    # stops the install on Python 3.10 or older with a message (tools/lock.py)\n"
    )


def compile_lock(direct: Path = DIRECT) -> str:
    """The lock's text: header, guard, then what ``uv pip compile`` resolves (needs PyPI)."""
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("tools/lock.py needs uv: pip install uv")
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "requirements.txt"
        if LOCK.is_file():  # uv keeps the versions of an existing output: one pin moves alone
            output.write_text(LOCK.read_text())
        subprocess.run(
            [uv, "pip", "compile", str(direct.relative_to(ROOT)), "--universal",
             "--generate-hashes", "--python-version", OLDEST_PYTHON, "--no-header",
             "--quiet", "--output-file", str(output)],
            cwd=ROOT, check=True,
        )  # fmt: skip
        resolved = output.read_text()
    return HEADER + guard_line(build_guard_archive()) + resolved


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(text: str) -> dict[str, set[str]]:
    """Package name (normalised) -> the versions a requirements text pins for it.

    A lock may pin two versions of one package, each for some Pythons (numpy drops old
    Pythons before the course does): hence a set.
    """
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            found.setdefault(name, set()).add(match.group(2))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true",
        help="compare requirements.txt with a fresh lock of requirements.in; change nothing",
    )  # fmt: skip
    options = parser.parse_args(argv)
    archive = build_guard_archive()
    fresh = compile_lock()
    if options.check:
        same = LOCK.read_text() == fresh and GUARD_ARCHIVE.read_bytes() == archive
        print("requirements.txt is the lock of requirements.in" if same else
              f"requirements.txt is out of date: run  {COMMAND}")  # fmt: skip
        return 0 if same else 1
    GUARD_ARCHIVE.parent.mkdir(exist_ok=True)
    GUARD_ARCHIVE.write_bytes(archive)
    LOCK.write_text(fresh)
    print(f"Wrote {LOCK.name}: {len(pins(fresh))} packages, locked with hashes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
