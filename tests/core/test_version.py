"""The installed build carries the fork's version label and series identity."""

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


def test_git_version_identifies_the_series():
    from airflow.utils.platform import get_airflow_git_version

    assert get_airflow_git_version() == build.git_version(REPO)
    assert build.series_identity(REPO) in get_airflow_git_version()


def test_series_identity_changes_with_any_patch_byte(tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(REPO.root, copy, ignore=shutil.ignore_patterns(".build", "work", "dist", ".git", "tests"))
    before = build.series_identity(Project(copy))
    patch = next((copy / "airflow").glob("*.patch"))
    patch.write_bytes(patch.read_bytes() + b"\n")

    assert build.series_identity(Project(copy)) != before
