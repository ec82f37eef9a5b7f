"""`breeze patches check-prefixes`: a patch that breaks the import is caught even if a later one repairs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from teams_breeze import patches, prefixes
from teams_breeze.gitutil import git

AUTHOR = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@invalid",
          "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@invalid"}


def add_patch(tree: Path, path: str, old: str, new: str, name: str) -> None:
    target = tree / path
    text = target.read_text()
    target.write_text(text.replace(old, new, 1) if old else text + new)
    git(tree, "commit", "-q", "-a", "-m",
        f"{name}\n\nWhy.\n\nPatch-Name: {name}\nUpstream-Status: Pending\nOrigin: vendor\nForwarded: no\n"
        "Tests: tests/breeze/test_prefixes.py\n", env=AUTHOR)


@pytest.fixture
def project_with_venv(project):
    project.build.mkdir()
    project.venv.symlink_to(Path(sys.prefix), target_is_directory=True)
    return project


def core_prefix_problems(project, tmp_path, *changes: tuple[str, str, str, str]) -> list[str]:
    """check-prefixes of the core series with patches (path, old, new, name) appended."""
    dist = project.fork.dist("airflow")
    patches.apply(project, dist)
    for path, old, new, name in changes:
        add_patch(project.work_tree(dist), path, old, new, name)
    patches.export(project, dist)
    return prefixes.check_dist(project, dist, tmp_path / "prefixes")


def test_core_prefix_that_does_not_import_is_reported(project_with_venv, tmp_path):
    broken = "\nraise ImportError('broken by teams-break')\n"

    problems = core_prefix_problems(project_with_venv, tmp_path, ("airflow/exceptions.py", "", broken, "teams-break"),
                                    ("airflow/exceptions.py", broken, "", "teams-repair"))

    assert len(problems) == 1
    assert problems[0].startswith("airflow up to teams-break does not import")
    assert "broken by teams-break" in problems[0]


def test_core_prefix_that_shows_a_team_secret_is_reported(project_with_venv, tmp_path):
    hidden = "            teams_config.hide_team_values(config_sources, display_source)\n"
    shown = "            pass  # teams-leak\n"

    problems = core_prefix_problems(project_with_venv, tmp_path, ("airflow/configuration.py", hidden, shown, "teams-leak"),
                                    ("airflow/configuration.py", shown, hidden, "teams-unleak"))

    assert problems == ["airflow up to teams-leak shows a team's secret in `airflow config list` or as_dict()"]


def test_provider_module_touched_by_a_patch_is_imported_from_the_tree(project_with_venv, tmp_path):
    project = project_with_venv
    dist = project.fork.dist("providers/celery")
    patches.apply(project, dist)
    tree = project.work_tree(dist)
    module = "src/airflow/providers/celery/executors/default_celery.py"
    add_patch(tree, module, "", "\nTEAMS_MARKER = 1\n", "celery-fine")
    add_patch(tree, module, "", "\nimport airflow.no_such_module\n", "celery-broken")
    patches.export(project, dist)

    problems = prefixes.check_dist(project, dist, tmp_path / "prefixes")

    assert len(problems) == 1
    assert problems[0].startswith("providers/celery up to celery-broken does not import")
    assert "airflow.no_such_module" in problems[0]
