"""`airflow info` names the build (patch info-shows-git-version)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from teams_breeze import build
from teams_breeze.project import Project

REPO = Project(Path(__file__).resolve().parents[3])


def test_info_shows_version_and_source_identity():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "info", "--output", "plain"],
        capture_output=True, text=True, check=True,
    )
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines() if line.strip().count(" ") >= 1)

    assert fields["version"].strip() == f"2.11.2+{REPO.fork.local_version}"
    assert fields["git_version"].strip() == build.git_version(REPO)
