"""A team's triggerer takes its triggers with one internal API call per loop (patch
teams-triggerer-one-call-per-loop), at most every 5 s while it runs no trigger; a triggerer of no team keeps
upstream's two calls. A team's idle triggerer wakes only for that poll and does not watch its empty event
loop for blocking triggers (patch teams-triggerer-idle-loop)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from types import SimpleNamespace

import pytest
import requests

from airflow.api_internal.internal_api_call import InternalApiConfig
from airflow.jobs.triggerer_job_runner import TriggererJobRunner, TriggerRunner
from airflow.models.trigger import Trigger
from airflow.serialization.serialized_objects import BaseSerialization
from airflow.teams import idle_pacing, process_team


class Runner:
    """What load_triggers uses of a TriggererJobRunner."""

    def __init__(self, running: dict | None = None):
        self.job = SimpleNamespace(id=42)
        self.capacity, self.health_check_threshold = 1000, 30.0
        self.trigger_runner = SimpleNamespace(
            update_triggers=lambda ids: self.loaded.append(ids), triggers=running or {}, to_create=deque(),
            events=deque(), failed_triggers=deque(), stop=False,
        )
        self.loaded: list[set[int]] = []


@pytest.fixture
def clock(monkeypatch):
    """The monotonic clock of the idle pacing, moved by hand; the idle triggerer poll not yet made."""
    now = [1000.0]
    monkeypatch.setattr(idle_pacing.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(idle_pacing.IDLE_TRIGGERER_POLL, "done_at", None)
    return now


@pytest.fixture
def calls(multi_team, monkeypatch):
    """The internal API calls this process makes, each answered with the trigger ids [7, 8]."""
    multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}]})
    monkeypatch.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_URL", "http://team-a:9080")
    monkeypatch.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_SECRET_KEY", "team-a-key")
    monkeypatch.setattr(InternalApiConfig, "_use_internal_api", True)
    made = []

    def post(url, data, headers, timeout):
        made.append((url, json.loads(data)["method"]))
        answer = BaseSerialization.serialize([7, 8] if "assign" in made[-1][1] or "ids" in made[-1][1] else None)
        return SimpleNamespace(status_code=200, content=json.dumps(answer).encode())

    monkeypatch.setattr(requests, "post", post)
    return made


def test_a_teams_triggerer_loads_its_triggers_with_one_call(calls, clock):
    process_team.serve("team_a")
    runner = Runner()

    TriggererJobRunner.load_triggers(runner)

    assert calls == [("http://team-a:9080/internal_api/v1/rpcapi", "airflow.teams.trigger_loading.assign_and_list")]
    assert runner.loaded == [{7, 8}]


def test_a_triggerer_of_no_team_keeps_upstreams_two_queries(monkeypatch):
    made = []
    monkeypatch.setattr(Trigger, "assign_unassigned", lambda *args: made.append(("assign", *args)))
    monkeypatch.setattr(Trigger, "ids_for_triggerer", lambda *args: made.append(("ids", *args)) or [3])
    runner = Runner()

    TriggererJobRunner.load_triggers(runner)

    assert made == [("assign", 42, 1000, 30.0), ("ids", 42)]
    assert runner.loaded == [{3}]


def test_an_idle_teams_triggerer_asks_at_most_every_5_seconds(calls, clock):
    process_team.serve("team_a")
    runner = Runner()

    TriggererJobRunner.load_triggers(runner)
    clock[0] += 4.9
    TriggererJobRunner.load_triggers(runner)
    assert len(calls) == 1 and runner.loaded == [{7, 8}]

    clock[0] += 0.2
    TriggererJobRunner.load_triggers(runner)
    assert len(calls) == 2 and runner.loaded == [{7, 8}, {7, 8}]


def test_a_teams_triggerer_running_triggers_asks_every_loop(calls, clock):
    process_team.serve("team_a")
    runner = Runner(running={7: object()})

    for _ in range(3):
        TriggererJobRunner.load_triggers(runner)

    assert len(calls) == 3


@pytest.mark.parametrize(("team", "running", "pending", "seconds"), [
    ("team_a", {}, {}, 5.0),
    ("team_a", {7: object()}, {}, 1.0),
    ("team_a", {}, {"to_create": (7, object())}, 1.0),
    ("team_a", {}, {"events": (7, "event")}, 1.0),  # handed over in the next second, as upstream's
    ("team_a", {}, {"failed_triggers": (7, None)}, 1.0),
    (None, {}, {}, 1.0),
], ids=["idle team", "running", "to create", "event", "failure", "no team"])
def test_a_teams_idle_triggerer_loop_sleeps_until_its_next_poll(team, running, pending, seconds):
    if team:
        process_team.serve(team)
    runner = Runner(running=running)
    for queue, item in pending.items():
        getattr(runner.trigger_runner, queue).append(item)

    assert idle_pacing.triggerer_loop_seconds(runner.trigger_runner) == seconds


def watchdog_sleeps(runner, monkeypatch, until_sleeps: int, on_sleep=None) -> list[float]:
    """The sleeps TriggerRunner.block_watchdog asks for, until it asked for ``until_sleeps``."""
    asked = []

    async def sleep(seconds):
        asked.append(seconds)
        if on_sleep:
            on_sleep(len(asked))
        runner.stop = len(asked) >= until_sleeps

    monkeypatch.setattr(asyncio, "sleep", sleep)
    asyncio.run(TriggerRunner.block_watchdog(runner))
    return asked


def test_a_teams_idle_triggerer_watches_for_blocking_triggers_only_once_one_runs(monkeypatch):
    process_team.serve("team_a")
    runner = Runner().trigger_runner

    def a_trigger_arrives(sleeps):
        if sleeps == 3:
            runner.triggers[7] = object()

    assert watchdog_sleeps(runner, monkeypatch, 5, a_trigger_arrives) == [1.0, 1.0, 1.0, 0.1, 0.1]


def test_a_triggerer_of_no_team_watches_its_event_loop_ten_times_a_second(monkeypatch):
    runner = Runner().trigger_runner

    assert watchdog_sleeps(runner, monkeypatch, 3) == [0.1, 0.1, 0.1]
