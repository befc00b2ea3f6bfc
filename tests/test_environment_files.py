"""requirements.in is the one list of direct packages; requirements.txt, its lock, is what
environment.yml, the README, the workflows and CI install, and all it installs."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import lock  # noqa: E402  (tools/lock.py: how the lock is made and read)

ROOT = Path(__file__).resolve().parents[1]
GUARD = ROOT / "tools" / "python_version_guard"
REQUIRED = {
    "mlflow",
    "jupyterlab",
    "scikit-learn",
    "pandas",
    "pyarrow",
    "matplotlib",
    "nbval",
    "pytest",
    "ipywidgets",
}


def requirement_lines() -> list[str]:
    """The direct packages' lines of requirements.in, without comments."""
    lines = (ROOT / "requirements.in").read_text().splitlines()
    return [line.split(" #")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_every_direct_requirement_is_pinned_exactly():
    for line in requirement_lines():
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.]*", line), line


def test_the_direct_packages_cover_the_course():
    names = {line.split("==")[0].lower() for line in requirement_lines()}
    assert REQUIRED <= names


def locked_requirements() -> list[str]:
    """The lock's requirements, each joined onto one line (a line ends with ``\\``)."""
    text = (ROOT / "requirements.txt").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]


def test_the_lock_holds_every_direct_pin_and_pins_everything_with_hashes():
    locked = lock.pins((ROOT / "requirements.txt").read_text())
    for line in requirement_lines():
        name, version = line.split("==")
        assert locked.get(canonicalize_name(name)) == {version}, f"{line}: python tools/lock.py"
    requirements = locked_requirements()
    assert len(requirements) > 150, "every package, not only the direct ones"
    for requirement in requirements[1:]:
        assert re.match(r"[A-Za-z0-9._-]+==\S+ ", requirement), requirement
        assert "--hash=sha256:" in requirement, requirement
    assert "-e ." not in requirements, "an editable install cannot carry a hash"


def test_the_guard_comes_first_built_from_its_sources_with_its_hash():
    archive = lock.build_guard_archive()
    assert lock.GUARD_ARCHIVE.read_bytes() == archive, "rebuild it: python tools/lock.py"
    digest = hashlib.sha256(archive).hexdigest()
    path = lock.GUARD_ARCHIVE.relative_to(ROOT).as_posix()
    first = locked_requirements()[0]
    assert first.startswith(f"./{path} ; python_version < ") and digest in first


def test_this_environment_holds_nothing_the_lock_does_not_pin():
    """What the tests run in was installed from the lock: each distribution in it is one the
    lock pins for this platform and Python, at that version (the course's own package aside)."""
    pinned: dict[str, str] = {}
    for requirement in locked_requirements()[1:]:
        spec = requirement.split(" --hash")[0]
        name_version, _, marker = spec.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, version = name_version.strip().split("==")
        pinned[canonicalize_name(name)] = version
    course = canonicalize_name(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    )
    unpinned = []
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name != course and pinned.get(name) != dist.version:
            unpinned.append(f"{name}=={dist.version} (the lock: {pinned.get(name)})")
    assert unpinned == [], "install with: pip install -r requirements.txt"


def test_environment_yml_installs_exactly_requirements_txt():
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert spec["channels"] == ["conda-forge"]
    conda_packages = [d for d in spec["dependencies"] if isinstance(d, str)]
    pip_sections = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    assert sorted(conda_packages) == ["pip", "python=3.11"], (
        "packages belong in requirements.txt, so pip and conda learners get the same ones"
    )
    assert pip_sections == [["-r requirements.txt"]]
    assert "pip install --no-deps -e ." in (ROOT / "environment.yml").read_text()


def test_readme_and_ci_use_the_same_install_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in (
        "pip install -r requirements.txt",
        "uv pip install -r requirements.txt",
        "pip install --no-deps -e .",
        "uv pip install --no-deps -e .",
        "python -m pytest",
    ):
        assert command in readme, command
        assert command in ci, command
    assert "conda env create -f environment.yml" in readme


def supported_pythons_in_ci() -> list[str]:
    ci = (ROOT / ".ci" / "run").read_text()
    return re.search(r"SUPPORTED_PYTHONS=\(([^)]*)\)", ci).group(1).split()


def test_readme_pyproject_setup_check_guard_and_ci_agree_on_python_versions():
    from helpers.env import MIN_PYTHON

    oldest = f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={oldest}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")
    supported = supported_pythons_in_ci()
    assert supported[0] == oldest and len(supported) == 3
    readme = (ROOT / "README.md").read_text()
    assert f"Python {supported[0]}, {supported[1]} or {supported[2]}" in readme
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert f"python={oldest}" in spec["dependencies"]
    guard = (GUARD / "python_version_guard.py").read_text()
    assert f"MIN_PYTHON = {MIN_PYTHON}" in guard
    assert lock.OLDEST_PYTHON == oldest
    assert f'; python_version < "{oldest}"' in locked_requirements()[0]  # first of all


def old_python() -> str | None:
    """A Python older than the course's oldest, with pip, to try the install on (pyenv's)."""
    for version in ("3.10", "3.9"):
        found = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")).glob(
            f"versions/{version}.*/bin/python3"))  # fmt: skip
        if found or shutil.which(f"python{version}"):
            return str(found[-1]) if found else shutil.which(f"python{version}")
    return None


def test_the_install_on_an_old_python_says_which_python_to_use(tmp_path):
    python = old_python()
    if python is None:
        pytest.skip("no Python 3.10 or 3.9 here to try the install on (pyenv install 3.10)")
    # --no-index: the guard stops pip before it looks for any package, so no network is needed.
    result = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--no-index", "-r", "requirements.txt"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode != 0
    assert "This course needs Python 3.11 or newer" in result.stdout + result.stderr


def test_the_guard_builds_nothing_on_a_supported_python(tmp_path):
    """On a supported Python the guard is an empty package that the marker keeps out."""
    sys.path.insert(0, str(GUARD))
    try:
        import python_version_guard as guard
    finally:
        sys.path.remove(str(GUARD))
    assert guard.get_requires_for_build_wheel() == []
    name = guard.prepare_metadata_for_build_wheel(str(tmp_path))
    assert (tmp_path / name / "METADATA").read_text().startswith("Metadata-Version")


def test_the_modules_own_homework_scripts_find_hyperopt():
    """The module's hpo.py and 2022's register_model.py import hyperopt: the lock has it, and
    those imports (and a seeded search as hpo.py runs it) work with no warning."""
    code = (
        "import numpy as np\n"
        "from hyperopt import STATUS_OK, Trials, fmin, hp, space_eval, tpe\n"
        "from hyperopt.pyll import scope\n"
        "space = {'max_depth': scope.int(hp.quniform('max_depth', 1, 20, 1))}\n"
        "best = fmin(lambda p: {'loss': p['max_depth'], 'status': STATUS_OK}, space,\n"
        "            algo=tpe.suggest, max_evals=5, trials=Trials(),\n"
        "            rstate=np.random.default_rng(42), show_progressbar=False)\n"
        "print(space_eval(space, best)['max_depth'] >= 1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\n", "")
