"""A team's idle triggerer and dag-processor do their housekeeping every 30 s (patch teams-idle-housekeeping):
cleaning unused triggers and purging inactive DAGs' warnings; a triggerer fetches no trigger rows when none
is new."""

from __future__ import annotations

import pytest

from airflow.jobs.triggerer_job_runner import TriggerRunner
from airflow.models.trigger import Trigger
from airflow.teams import idle_pacing, process_team


class Clock:
    now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(idle_pacing.time, "monotonic", clock.monotonic)
    for step in (idle_pacing.CLEAN_UNUSED_TRIGGERS, idle_pacing.PURGE_INACTIVE_DAG_WARNINGS):
        monkeypatch.setattr(step, "done_at", None)
    return clock


@pytest.mark.parametrize("step", [idle_pacing.CLEAN_UNUSED_TRIGGERS, idle_pacing.PURGE_INACTIVE_DAG_WARNINGS])
def test_a_teams_component_does_it_every_30_seconds(clock, step):
    process_team.serve("team_a")  # as `airflow triggerer --team team_a` / `dag-processor --team team_a`

    assert step.due()  # the first loop does it
    clock.now += 29
    assert not step.due()
    clock.now += 1
    assert step.due()


def test_a_component_of_no_team_does_it_every_loop(clock):
    assert [idle_pacing.CLEAN_UNUSED_TRIGGERS.due() for _ in range(3)] == [True, True, True]


def test_no_new_trigger_no_fetch(monkeypatch):
    def fetch(ids):
        raise AssertionError(f"fetched {ids}")

    monkeypatch.setattr(Trigger, "bulk_fetch", fetch)

    TriggerRunner().update_triggers(set())  # upstream fetched (an internal API call when isolated)
