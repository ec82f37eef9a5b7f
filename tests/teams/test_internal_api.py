"""Each team's own internal API URL and key (airflow.teams.internal_api, patch teams-internal-api)."""

from __future__ import annotations

import time

import jwt
import pytest
from flask import Flask

from airflow.teams import internal_api, process_team
from airflow.teams.config import TeamsConfigError

TEAMS = {"team_a": [{"name": "a", "class": "LocalExecutor"}], "team_b": [{"name": "b", "class": "LocalExecutor"}]}


@pytest.fixture
def teams(multi_team, monkeypatch):
    multi_team(TEAMS)
    monkeypatch.setenv("AIRFLOW__CORE__INTERNAL_API_SECRET_KEY", "global-key")
    monkeypatch.setenv("AIRFLOW__CORE__INTERNAL_API_URL", "http://global:9080")
    process_team.stop_serving()
    return monkeypatch


def test_a_team_signs_with_its_own_key_in_each_of_its_forms(teams):
    teams.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_SECRET_KEY", "a-key")
    teams.setenv("AIRFLOW__TEAM_B___CORE__INTERNAL_API_SECRET_KEY_CMD", "printf b-key-from-a-command")

    assert internal_api.api_key("team_a") == "a-key"
    assert internal_api.api_key("team_b") == "b-key-from-a-command"


def test_a_team_without_its_own_key_or_url_does_not_fall_back_to_the_global_one(teams):
    with pytest.raises(TeamsConfigError, match=r"team 'team_a' has no \[core\] internal_api_secret_key of its own "
                                                r"\(it signs the team's calls\). Set "
                                                r"AIRFLOW__TEAM_A___CORE__INTERNAL_API_SECRET_KEY or \[team_a=core\]"):
        internal_api.api_key("team_a")
    with pytest.raises(TeamsConfigError, match=r"team 'team_a' has no \[core\] internal_api_url of its own"):
        internal_api.endpoint("team_a")


@pytest.mark.parametrize(("url", "endpoint"), [
    ("http://internal-api-a:9080", "http://internal-api-a:9080/internal_api/v1/rpcapi"),
    ("https://a.example/", "https://a.example/internal_api/v1/rpcapi"),
    ("https://a.example/custom/rpc", "https://a.example/custom/rpc"),
])
def test_a_team_calls_its_own_url(teams, url, endpoint):
    teams.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_URL", url)

    assert internal_api.endpoint("team_a") == endpoint


def test_a_call_names_the_team_this_process_serves_and_goes_to_its_internal_api(teams):
    from airflow.api_internal.internal_api_call import InternalApiConfig

    teams.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_SECRET_KEY", "a-key")
    teams.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_URL", "http://a:9080")
    with pytest.raises(TeamsConfigError, match="only a component of one team"):
        internal_api.client_signing("airflow.jobs.job.Job._kill")

    process_team.serve("team_a")

    assert internal_api.client_signing("airflow.jobs.job.Job._kill") == (
        "a-key", {"method": "airflow.jobs.job.Job._kill", "team": "team_a"})
    assert InternalApiConfig.get_internal_api_endpoint() == "http://a:9080/internal_api/v1/rpcapi"


def test_an_internal_api_of_no_team_refuses_every_call_in_multi_team_mode(teams):
    """E.g. the webserver's (``[webserver] run_internal_api``): it would check no team and no policy."""
    refused = internal_api.refuse("any token", {"method": "airflow.jobs.job.Job._kill"})

    assert refused.status_code == 403
    assert b"only `airflow internal-api --team` serves calls" in refused.get_data()


def token(secret: str, team: str = "team_a", method: str = "airflow.jobs.job.Job._kill") -> str:
    now = int(time.time())
    claims = {"aud": "api", "iat": now, "nbf": now, "exp": now + 30, "team": team, "method": method}
    return jwt.encode(claims, secret, algorithm="HS512")


def test_while_a_key_rotates_the_internal_api_takes_tokens_of_the_new_and_the_previous_key(teams):
    teams.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_SECRET_KEY", "new-key")
    teams.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_PREVIOUS_SECRET_KEY_CMD", "printf old-key")
    process_team.serve("team_a")
    body = {"method": "airflow.jobs.job.Job._kill"}

    verified = {}
    for key in ("new-key", "old-key", "another-key"):
        with Flask(__name__).app_context():
            verified[key] = (internal_api.refuse(token(key), body), internal_api.server_key())

    assert verified["new-key"] == (None, "new-key")
    assert verified["old-key"] == (None, "old-key")  # upstream's check then verifies with the same key
    refused, _ = verified["another-key"]
    assert refused.status_code == 403
    assert b"the token is not one signed with the key of team 'team_a'" in refused.get_data()
    assert internal_api.client_signing("airflow.jobs.job.Job._kill")[0] == "new-key"  # components sign with the new


@pytest.mark.parametrize("shared", ["AIRFLOW__TEAM_B___CORE__INTERNAL_API_SECRET_KEY",
                                    "AIRFLOW__TEAM_B___CORE__INTERNAL_API_PREVIOUS_SECRET_KEY"])
def test_a_key_that_another_team_has_as_well_is_refused(teams, shared):
    teams.setenv("AIRFLOW__TEAM_A___CORE__INTERNAL_API_SECRET_KEY", "a-key")
    teams.setenv(shared, "a-key")

    with pytest.raises(TeamsConfigError, match="teams 'team_a' and 'team_b' share an internal API key"):
        internal_api.check_keys_are_the_teams_own("team_a")
    teams.setenv(shared, "b-key")
    internal_api.check_keys_are_the_teams_own("team_a")
