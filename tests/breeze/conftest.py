from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from teams_breeze.project import Project

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A copy of this checkout's pins, constraints, series and own trees in a temporary root, sharing the download cache."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy(REPO_ROOT / "fork.toml", root / "fork.toml")
    shutil.copytree(REPO_ROOT / "constraints", root / "constraints")
    source = Project(REPO_ROOT)
    for dist in source.fork.dists:
        shutil.copytree(source.series_dir(dist), root / dist.series)
        if dist.own_tree:
            shutil.copytree(source.own_tree(dist), root / dist.own_tree,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The patches' Tests: trailers name files below tests/.
    shutil.copytree(REPO_ROOT / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    monkeypatch.setenv("BREEZE_CACHE", str(source.cache))
    return Project(root)
