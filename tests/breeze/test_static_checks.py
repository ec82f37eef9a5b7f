"""The patches' own modules pass the sdist's ruff configuration, as upstream's static checks would
require (ruff check and ruff format on the materialised core tree)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from teams_breeze.gitutil import git_text

REPO_ROOT = Path(__file__).resolve().parents[2]
TREE = REPO_ROOT / "work" / "airflow"
RUFF = str(Path(sys.executable).parent / "ruff")
# New files of the series; hooks in upstream files are kept to upstream's formatting by review.
NEW_MODULES = ["airflow/teams"]  # the fork's migrations included (airflow/teams/migrations)


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    assert (TREE / "airflow" / "teams").is_dir(), "`./breeze testing tests` materialises work/airflow first"
    return subprocess.run([RUFF, *args, *NEW_MODULES], cwd=TREE, capture_output=True, text=True, timeout=120)


def test_new_modules_pass_ruff_check():
    result = ruff("check", "--no-cache", "--output-format", "concise")

    assert result.returncode == 0, result.stdout + result.stderr


def test_new_modules_are_ruff_formatted():
    result = ruff("format", "--no-cache", "--check")

    assert result.returncode == 0, result.stdout + result.stderr


def _findings(root: Path, files: list[str]) -> dict[str, int]:
    """ruff check findings and format differences per file, with the tree's own configuration."""
    checked = subprocess.run([RUFF, "check", "--no-cache", "--output-format", "concise", *files], cwd=root,
                             capture_output=True, text=True, timeout=120).stdout
    formatted = subprocess.run([RUFF, "format", "--no-cache", "--check", *files], cwd=root,
                               capture_output=True, text=True, timeout=120).stdout
    counts = {name: 0 for name in files}
    for name in files:
        counts[name] = checked.count(f"{name}:") + formatted.count(f"Would reformat: {name}\n")
    return counts


def test_hooks_in_upstream_files_add_no_ruff_findings(tmp_path):
    """Upstream's own files already have findings with this ruff (e.g. TC006); the hooks add none."""
    changed = git_text(TREE, "diff", "--name-only", "--diff-filter=M", "base", "HEAD", "--", "*.py").split()
    upstream_files = [name for name in changed if not name.startswith("airflow/teams/")]
    base = tmp_path / "base"
    for name in [*upstream_files, "pyproject.toml"]:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(git_text(TREE, "show", f"base:{name}") + "\n")

    before, after = _findings(base, upstream_files), _findings(TREE, upstream_files)

    assert len(upstream_files) > 20
    assert {name: count for name, count in after.items() if count > before[name]} == {}
