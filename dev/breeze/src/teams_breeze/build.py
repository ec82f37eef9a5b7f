"""Patched wheels (``<version>+teams.N``) built from the work trees with each sdist's pinned backend."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from teams_breeze import build_constraints, environment
from teams_breeze.console import BreezeError, info, step
from teams_breeze.gitutil import git, git_text
from teams_breeze.project import Dist, Project


# Timestamps inside every wheel (hatchling and flit-core honour it): same inputs, same bytes.
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest a zip file can say


def source_identity(project: Project) -> str:
    """Short hash of the sources the wheels are built from: every work tree's files as they are on disk.

    It names the content, not how the fork's changes are stored (own tree or patches), so moving code
    between the two leaves the wheels byte-identical. Every work tree must be materialised.
    """
    digest = hashlib.sha256()
    for dist in project.fork.dists:
        if not (project.work_tree(dist) / ".git").is_dir():
            raise BreezeError(f"work/{dist.series} is not materialised; the git_version names every tree's sources")
        digest.update(f"{dist.name}=={dist.version}:{_snapshot(project.work_tree(dist))}\n".encode())
    return digest.hexdigest()[:12]


def git_version(project: Project) -> str:
    """What ``airflow/git_version`` holds: shown by the UI footer, ``/api/v1/version`` and ``airflow info``."""
    return f"{project.fork.local_version}.source-{source_identity(project)}"


def local_version(project: Project, dist: Dist) -> str:
    return f"{dist.version}+{project.fork.local_version}"


def wheel_prefix(dist: Dist) -> str:
    return re.sub(r"[-_.]+", "_", dist.name).lower() + "-"


def _snapshot(tree: Path) -> str:
    """Git tree id of the work tree's files as they are on disk, untracked ones included."""
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        if (tree / ".git" / "index").exists():
            shutil.copy(tree / ".git" / "index", index)
        env = {"GIT_INDEX_FILE": str(index)}
        git(tree, "add", "--all", env=env)
        return git_text(tree, "write-tree", env=env)


def _stamp(source: Path, dist: Dist, version: str, git_version: str | None) -> None:
    replacements = {
        "PKG-INFO": (rf"(?m)^Version: {re.escape(dist.version)}$", f"Version: {version}"),
        "pyproject.toml": (rf'(?m)^version = "{re.escape(dist.version)}"$', f'version = "{version}"'),
    }
    for name, (pattern, replacement) in replacements.items():
        path = source / name
        if path.exists():
            path.write_text(re.sub(pattern, replacement, path.read_text()))
    for init in source.glob("**/airflow/**/__init__.py"):
        text = init.read_text()
        stamped = re.sub(rf'(?m)^__version__ = "{re.escape(dist.version)}"$', f'__version__ = "{version}"', text)
        if stamped != text:
            init.write_text(stamped)
    if git_version is not None:
        (source / "airflow" / "git_version").write_text(git_version)


def build_wheel(project: Project, dist: Dist) -> Path:
    """Build ``dist``'s wheel from its work tree unless an identical one is already in ``dist/``."""
    tree = project.work_tree(dist)
    version = local_version(project, dist)
    stamp_git_version = git_version(project) if dist.is_core else None
    snapshot = _snapshot(tree)
    backend_pins = build_constraints.for_dist(project, dist)
    key = hashlib.sha256(
        f"{version}\n{stamp_git_version}\n{snapshot}\n{backend_pins.read_text()}".encode()
    ).hexdigest()
    stamps = project.build / "stamps"
    stamp_file = stamps / f"{dist.name}.json"
    if stamp_file.exists():
        recorded = json.loads(stamp_file.read_text())
        wheel = project.dist_dir / recorded["wheel"]
        if recorded["key"] == key and wheel.exists():
            return wheel
    with step(f"Building {dist.name} {version}"), tempfile.TemporaryDirectory(prefix="breeze-build-") as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        archive = git(tree, "archive", "--format=tar", snapshot).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(source, filter="data")
        _stamp(source, dist, version, stamp_git_version)
        out = Path(tmp) / "out"
        result = subprocess.run(
            [environment.uv(), "build", "--quiet", "--wheel", "--python", project.fork.python,
             "--build-constraints", str(backend_pins), "--out-dir", str(out), str(source)],
            capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )
        built = sorted(out.glob("*.whl"))
        if result.returncode != 0 or len(built) != 1:
            raise BreezeError(f"building {dist.name} failed:\n{result.stdout}\n{result.stderr}")
        wheel = built[0]
        if f"-{version}-" not in wheel.name:
            raise BreezeError(f"{wheel.name} does not carry the version {version}")
        project.dist_dir.mkdir(exist_ok=True)
        for old in project.dist_dir.glob(f"{wheel_prefix(dist)}*.whl"):
            old.unlink()
        target = project.dist_dir / wheel.name
        shutil.move(wheel, target)
        info(f"    {target.relative_to(project.root)}")
    stamps.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(json.dumps({"key": key, "wheel": target.name}))
    return target
