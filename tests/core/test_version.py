"""The installed build carries the fork's version label and the identity of its sources."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from teams_breeze import build
from teams_breeze.project import Project

REPO = Project(Path(__file__).resolve().parents[2])


def test_airflow_version_prints_the_local_version_label():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "version"], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == f"2.11.2+{REPO.fork.local_version}"
    assert REPO.fork.local_version.startswith("teams.")


def test_every_pinned_distribution_is_installed_from_our_build():
    for dist in REPO.fork.dists:
        assert importlib.metadata.version(dist.name) == f"{dist.version}+{REPO.fork.local_version}"


def test_git_version_identifies_the_sources():
    from airflow.utils.platform import get_airflow_git_version

    assert get_airflow_git_version() == build.git_version(REPO)
    assert build.source_identity(REPO) in get_airflow_git_version()


def test_source_identity_changes_with_any_source_byte_and_only_with_them(tmp_path):
    import shutil
    import subprocess

    copy = tmp_path / "copy"
    shutil.copytree(REPO.root, copy, ignore=shutil.ignore_patterns(".build", "work", "dist", ".git", "tests"))
    project = Project(copy)
    for dist in project.fork.dists:
        tree = project.work_tree(dist)
        tree.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(tree)], check=True)
        (tree / "module.py").write_text(f"NAME = {dist.name!r}\n")
    before = build.source_identity(project)
    patch = next((copy / "airflow").glob("*.patch"))
    patch.write_bytes(patch.read_bytes() + b"\n")
    assert build.source_identity(project) == before, "the patch files are not the sources the wheel is built from"

    (project.work_tree(project.fork.dists[-1]) / "module.py").write_text("NAME = 'changed'\n")
    assert build.source_identity(project) != before
