"""The team a process serves: set once by its command, inherited by every process it starts."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

from airflow.teams import process_team

PRINT_SERVED = "from airflow.teams import process_team; print(process_team.serving_team())"


def test_a_teams_process_starts_children_that_serve_the_same_team():
    process_team.serve("team_a")  # as `airflow dag-processor --team team_a` does at start

    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a new interpreter, nothing forked
        assert pool.apply(process_team.serving_team) == "team_a"
    executed = subprocess.run([sys.executable, "-c", PRINT_SERVED], capture_output=True, text=True, check=True)
    assert executed.stdout.strip() == "team_a"  # as gunicorn's workers of `internal-api --team team_a`


def test_a_shared_components_children_serve_no_team():
    process_team.stop_serving()

    executed = subprocess.run([sys.executable, "-c", PRINT_SERVED], capture_output=True, text=True, check=True)
    assert executed.stdout.strip() == "None"


def test_a_child_of_a_teams_process_cannot_serve_another_team():
    process_team.serve("team_a")
    refuse = "from airflow.teams import process_team; process_team.serve('team_b')"

    executed = subprocess.run([sys.executable, "-c", refuse], capture_output=True, text=True)
    assert executed.returncode == 1
    assert "ForeignTeamError: This process serves team 'team_a'; it cannot serve team 'team_b'" in executed.stderr
