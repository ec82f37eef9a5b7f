"""`airflow internal-api` is a supported command, and isolated components check their configuration at start
(patches internal-api-supported, teams-internal-api)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW = str(Path(sys.executable).parent / "airflow")
ISOLATED = {"AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION": "True"}
MULTI_TEAM = {"AIRFLOW__CORE__MULTI_TEAM": "True",
              "AIRFLOW__CORE__EXECUTOR": '{"team_a": [{"name": "a", "class": "LocalExecutor"}]}'}


def environment(**env: str) -> dict[str, str]:
    """This process's environment without the AIP-44 flag, with ``env``."""
    return {k: v for k, v in os.environ.items() if k != "AIRFLOW_ENABLE_AIP_44"} | env


def airflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIRFLOW, *args], capture_output=True, text=True, timeout=120, env=environment(**env))


def test_internal_api_is_a_command_without_any_feature_flag():
    result = airflow("internal-api", "--help")

    assert result.returncode == 0, result.stderr
    assert "--workers" in result.stdout


@pytest.mark.parametrize(("url", "problem"), [
    (None, "[core] internal_api_url is not set"),
    ("127.0.0.1:9080", "[core] internal_api_url is '127.0.0.1:9080'; it must be an http:// or https:// URL"),
])
@pytest.mark.parametrize("command", [("dag-processor",), ("triggerer",), ("tasks", "run", "x", "t", "r")],
                         ids=lambda command: command[0])
def test_an_isolated_component_without_a_usable_url_stops_with_one_line(command, url, problem):
    env = ISOLATED | ({"AIRFLOW__CORE__INTERNAL_API_URL": url} if url else {})

    assert_stops_with_one_line(airflow(*command, **env), "Invalid configuration: ", problem)


def assert_stops_with_one_line(result: subprocess.CompletedProcess[str], start: str, *parts: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(start) and all(part in last for part in parts), result.stderr


# In multi-team mode each team's components use their team's own URL and key; global values do not count.
GLOBAL = {"AIRFLOW__CORE__INTERNAL_API_URL": "http://127.0.0.1:9", "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY": "g"}
TEAM_KEY = {"AIRFLOW__TEAM_A___CORE__INTERNAL_API_SECRET_KEY": "a-key"}


@pytest.mark.parametrize(("team_env", "problem"), [
    ({}, "team 'team_a' has no [core] internal_api_secret_key of its own"),
    (TEAM_KEY, "team 'team_a' has no [core] internal_api_url of its own"),
    (TEAM_KEY | {"AIRFLOW__TEAM_A___CORE__INTERNAL_API_URL": "127.0.0.1:9080"},
     "[core] internal_api_url of team 'team_a' is '127.0.0.1:9080'"),
], ids=["no-key", "no-url", "bad-url"])
@pytest.mark.parametrize("command", [("dag-processor", "--team", "team_a"), ("triggerer", "--team", "team_a"),
                                     ("tasks", "run", "team_a:x", "t", "r")], ids=lambda command: command[0])
def test_a_team_component_without_its_teams_url_and_key_stops_with_one_line(command, team_env, problem):
    result = airflow(*command, **ISOLATED | MULTI_TEAM | GLOBAL | team_env)

    assert_stops_with_one_line(result, "Invalid configuration: ", problem)


TWO_TEAMS = {"AIRFLOW__CORE__MULTI_TEAM": "True", "AIRFLOW__CORE__EXECUTOR": (
    '{"team_a": [{"name": "a", "class": "LocalExecutor"}], "team_b": [{"name": "b", "class": "LocalExecutor"}]}')}


@pytest.mark.parametrize(("args", "env", "message"), [
    ((), MULTI_TEAM | TEAM_KEY, "In multi-team mode (`[core] multi_team = True`) every internal-api serves one team: "
                                "start it as `airflow internal-api --team <team>`. Configured teams: team_a."),
    (("--team", "team_z"), MULTI_TEAM | TEAM_KEY, "Unknown team 'team_z': [core] executor configures the teams team_a."),
    (("--team", "team_a"), MULTI_TEAM | GLOBAL, "Invalid configuration: team 'team_a' has no "
                                                "[core] internal_api_secret_key of its own"),
    (("--team", "team_a"), {}, "airflow internal-api --team needs [core] multi_team = True."),
    (("--team", "team_a"), TWO_TEAMS | TEAM_KEY | {"AIRFLOW__TEAM_B___CORE__INTERNAL_API_PREVIOUS_SECRET_KEY": "a-key"},
     "Invalid configuration: teams 'team_a' and 'team_b' share an internal API key"),
], ids=["no-team", "unknown-team", "no-team-key", "single-team", "shared-key"])
def test_a_team_internal_api_with_a_wrong_team_or_no_key_stops_with_one_line(args, env, message):
    result = airflow("internal-api", "--port", "9", *args, **ISOLATED | env)

    assert_stops_with_one_line(result, "", message)


def test_trusted_components_do_not_need_the_url():
    result = airflow("teams", "list", **ISOLATED)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("of_a_team", [False, True], ids=["single-team", "team-url"])
def test_an_isolated_component_that_cannot_reach_the_internal_api_says_which_url_and_retries(tmp_path, of_a_team):
    from teams_breeze.services import free_port, poll, stop_process_group

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    log = tmp_path / "triggerer.log"
    isolated = ISOLATED | {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "none://"}
    if of_a_team:
        isolated |= MULTI_TEAM | GLOBAL | TEAM_KEY | {"AIRFLOW__TEAM_A___CORE__INTERNAL_API_URL": url}
    else:
        isolated |= {"AIRFLOW__CORE__INTERNAL_API_URL": url}
    command = [AIRFLOW, "triggerer", *(["--team", "team_a"] if of_a_team else [])]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=environment(**isolated), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        retried = poll(lambda: "(attempt 2 of 10)" in log.read_text(), 60, 0.5)
    finally:
        stop_process_group(process, grace=5)

    assert retried, log.read_text()[-3000:]
    assert re.search(rf"Internal API {re.escape(url)}/internal_api/v1/rpcapi unreachable for airflow\.\S+ "
                     r"\(attempt 1 of 10\): .*Connection refused.*; retrying in 1s\.", log.read_text())
