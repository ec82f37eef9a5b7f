"""Every file the series touches passes ruff as upstream's static checks would require: the new modules
are clean (ruff check and ruff format), and the hooks add no finding to an upstream file. The providers
live in upstream's monorepo, whose ruff configuration is the core sdist's pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from teams_breeze.gitutil import git_text

REPO_ROOT = Path(__file__).resolve().parents[2]
CORE = REPO_ROOT / "work" / "airflow"
TREES = [CORE, REPO_ROOT / "work" / "providers" / "celery", REPO_ROOT / "work" / "providers" / "cncf-kubernetes"]
RUFF = str(Path(sys.executable).parent / "ruff")
CONFIG = ["--config", str(CORE / "pyproject.toml")]


def changed(tree: Path, diff_filter: str) -> list[str]:
    assert (CORE / "airflow" / "teams").is_dir(), "`./breeze testing tests` materialises the work trees first"
    names = git_text(tree, "diff", "--name-only", f"--diff-filter={diff_filter}", "base", "HEAD", "--", "*.py")
    return names.split()


def ruff(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RUFF, *args[:1], *CONFIG, "--no-cache", *args[1:]], cwd=root, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("tree", TREES, ids=lambda tree: tree.name)
def test_new_modules_pass_ruff_check_and_format(tree):
    new = changed(tree, "A")
    assert new, f"{tree.name}: the series adds its logic in new modules"

    checked = ruff(tree, "check", "--output-format", "concise", *new)
    formatted = ruff(tree, "format", "--check", *new)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def _findings(root: Path, files: list[str]) -> dict[str, int]:
    """ruff check findings and format differences per file."""
    checked = ruff(root, "check", "--output-format", "concise", *files).stdout
    formatted = ruff(root, "format", "--check", *files).stdout
    return {name: checked.count(f"{name}:") + formatted.count(f"Would reformat: {name}\n") for name in files}


@pytest.mark.parametrize("tree", TREES, ids=lambda tree: tree.name)
def test_hooks_in_upstream_files_add_no_ruff_findings(tree, tmp_path):
    """Upstream's own files already have findings with this ruff (e.g. TC006); the hooks add none."""
    upstream_files = changed(tree, "M")
    base = tmp_path / "base"
    for name in upstream_files:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(git_text(tree, "show", f"base:{name}") + "\n")

    before, after = _findings(base, upstream_files), _findings(tree, upstream_files)

    assert len(upstream_files) > (20 if tree == CORE else 2)
    assert {name: count for name, count in after.items() if count > before[name]} == {}
