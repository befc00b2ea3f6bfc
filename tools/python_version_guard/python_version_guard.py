"""A build backend that stops ``pip install -r requirements.txt`` on too old a Python.

The lock, requirements.txt, lists this folder's source archive (``tools/dist/``, built by
tools/lock.py) with the marker ``python_version < "3.11"``, so pip builds
it only where the course's pins cannot install, and importing this module fails with a
message naming the fix. Some installers (uv) read the metadata of every local requirement
whatever its marker; on a supported Python this backend then describes an empty package that
the marker keeps out of the environment.
"""

import sys
from pathlib import Path

MIN_PYTHON = (3, 11)
NAME, VERSION = "course_python_version_guard", "1.0"

if sys.version_info < MIN_PYTHON:
    found = f"{sys.version_info.major}.{sys.version_info.minor}"
    raise SystemExit(
        f"\n    This course needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer; this is "
        f"Python {found}.\n    Install Python 3.11, 3.12 or 3.13, create the environment again "
        "with it, and rerun the install command.\n"
    )


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = Path(metadata_directory) / f"{NAME}-{VERSION}.dist-info"
    dist_info.mkdir(parents=True)
    metadata = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
    (dist_info / "METADATA").write_text(metadata)
    return dist_info.name
