"""docs/architecture.md lists every hook site: each upstream file a patch touches has its row."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_OF_SERIES = re.compile(r"^(?:src/)?airflow/(?:providers/(?:cncf/kubernetes|celery|fab)/)?")


def touched_upstream_files() -> set[str]:
    files = set()
    for patch in [*REPO_ROOT.glob("airflow/*.patch"), *REPO_ROOT.glob("providers/*/*.patch")]:
        for path in re.findall(r"^diff --git a/(\S+) b/", patch.read_text(), re.MULTILINE):
            files.add(PACKAGE_OF_SERIES.sub("", path))
    return files


def test_every_upstream_file_a_patch_touches_has_a_row_in_the_hook_table():
    table = (REPO_ROOT / "docs" / "architecture.md").read_text().split("## 3. Hook sites", 1)[1].split("## 4.", 1)[0]
    rows = set(re.findall(r"^\| (?:\w+ )?`([^`]+)` \|", table, re.MULTILINE))

    assert touched_upstream_files() - rows == set()
    assert len(rows) > 80
