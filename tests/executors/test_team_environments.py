"""A team's own environment (``airflow.teams.environments``, ``[core] team_environment`` per team): the
team's LocalExecutor starts its tasks as new interpreters of that environment, never as forks of the
scheduler, and the isolated task fork server is that environment's interpreter too."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from airflow.teams import environments
from airflow.teams.local_workers import IdleLeavingWorker
from airflow.teams.task_fork_server import ForkServerClient
from airflow.utils.state import TaskInstanceState

COMMAND = ["airflow", "tasks", "run", "team_a:d", "t", "run", "--local"]


@pytest.fixture
def team_environment(tmp_path: Path, monkeypatch) -> Path:
    """team_a's environment: a bin/python that records its arguments, then runs the real interpreter."""
    folder = tmp_path / "team_a-env"
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    monkeypatch.setenv("AIRFLOW__TEAM_A___CORE__TEAM_ENVIRONMENT", str(folder))
    return folder


def calls(folder: Path) -> list[str]:
    path = folder.parent / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_a_team_with_an_environment_runs_its_tasks_with_its_python(team_environment):
    assert environments.of_team("team_a") == team_environment
    assert environments.python("team_a") == str(team_environment / "bin" / "python")
    assert environments.task_command("team_a", COMMAND) == [
        str(team_environment / "bin" / "python"), "-m", "airflow", *COMMAND[1:]]
    assert environments.describe("team_a") == str(team_environment)
    # Another team, and no team: Airflow's own environment, the command as upstream runs it.
    assert environments.of_team("team_b") is None
    assert environments.of_team(None) is None
    assert environments.python("team_b") == sys.executable
    assert environments.task_command("team_b", COMMAND) == COMMAND
    assert environments.describe("team_b") == "airflow's own"


def test_a_missing_environment_is_said_in_teams_list(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__TEAM_A___CORE__TEAM_ENVIRONMENT", str(tmp_path / "gone"))
    assert environments.describe("team_a") == f"{tmp_path / 'gone'} (missing: no bin/python)"


@pytest.mark.parametrize("exit_code, state", [(0, TaskInstanceState.SUCCESS), (3, TaskInstanceState.FAILED)])
def test_the_team_worker_starts_the_task_from_the_team_environment_not_a_fork(
    team_environment, tmp_path, monkeypatch, exit_code, state
):
    """Without isolation upstream forks the scheduler for a task; a fork could not import the team's libraries."""
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("the scheduler was forked for a team-environment task"))
    (team_environment / "bin" / "python").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\nexit {exit_code}\n')
    worker = IdleLeavingWorker(None, None, idle_seconds=1, team="team_a")

    assert worker._execute_work_in_fork(COMMAND) == state
    assert calls(team_environment) == ["-m airflow tasks run team_a:d t run --local"]


def test_the_isolated_task_fork_server_is_the_team_environments_interpreter(team_environment):
    server = ForkServerClient(environments.python("team_a"))
    try:
        assert server.run(["airflow", "version"], dict(os.environ)) == 0
    finally:
        server.close()
    assert calls(team_environment)[0].startswith("-m airflow.teams.task_fork_server ")
