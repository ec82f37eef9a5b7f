"""Values the chart refuses, each with a message that names the value and what is wrong.

chart/values.schema.json refuses what a JSON schema can express (Helm validates it before rendering);
the rest (a team listed twice, names that differ only in case or in '_' versus '-', a key shared by two
teams, options the chart sets itself) is refused by the chart's `airflow-teams.validate` template,
since JSON Schema cannot compare the items of a list with each other.
"""

from __future__ import annotations

import pytest

from tests.chart.chart_objects import render, render_error

TEAM = {"name": "team_a", "executor": "celery"}
SCHEMA = "values don't meet the specifications of the schema"


def team(**changes):
    return {**TEAM, **changes}


@pytest.mark.parametrize("teams, message", [
    ([team(colour="blue")], "at '/teams/0': additional properties 'colour' not allowed"),
    ([team(celery={"brokerURL": "redis://x"})], "at '/teams/0/celery': additional properties 'brokerURL' not allowed"),
    ([team(internalApi={"key": "x"})], "at '/teams/0/internalApi': additional properties 'key' not allowed"),
    ([{"name": "team_a"}], "at '/teams/0': missing property 'executor'"),
    ([team(executor="local")], "at '/teams/0/executor': value must be one of 'celery', 'kubernetes'"),
    ([], "at '/teams': minItems: got 0, want 1"),
], ids=["unknown-key", "unknown-celery-key", "unknown-internal-api-key", "no-executor", "bad-executor", "no-team"])
def test_the_schema_refuses_unknown_keys_and_bad_executors(teams, message):
    error = render_error({"teams": teams})
    assert SCHEMA in error and message in error, error


@pytest.mark.parametrize("name", [
    "ab",            # the fork's rule: 3 to 50 characters
    "a" * 51,
    "team a",        # letters, digits, '_' or '-'
    "team.a",
    "team:a",
    "équipe",
])
def test_the_schema_refuses_names_outside_the_forks_rule(name):
    error = render_error({"teams": [team(name=name)]})
    assert f"at '/teams/0/name': '{name}' does not match pattern" in error, error


def test_the_schema_refuses_the_reserved_name_dag():
    error = render_error({"teams": [team(name="DAG")]})
    assert "at '/teams/0/name': value must be 'any team name but DAG (reserved" in error, error
    render({"teams": [team(name="DAGS")], "createUserJob": {"enabled": False}})  # only DAG itself


@pytest.mark.parametrize("name", ["_ab", "ab-", "-team"])
def test_names_must_start_and_end_with_a_letter_or_digit_since_they_name_kubernetes_objects(name):
    """Stricter than the fork (which accepts these): documented in values.yaml and docs/helm.md."""
    assert f"'{name}' does not match pattern" in render_error({"teams": [team(name=name)]})


def test_the_schema_refuses_a_double_underscore_as_the_fork_does():
    """The fork refuses team names with '__' (their AIRFLOW__<TEAM>___ variables would be ambiguous)."""
    assert "at '/teams/0/name'" in render_error({"teams": [team(name="team__a")]})


@pytest.mark.parametrize("names", [("team_a", "team_a"), ("team_a", "TEAM_A"), ("team_a", "team-a")])
def test_a_team_listed_twice_is_refused(names):
    error = render_error({"teams": [team(name=names[0]), team(name=names[1])]})
    if names[0] == names[1]:
        assert 'teams: team "team_a" is listed twice; each team appears once in teams.' in error, error
    else:
        assert f'teams: teams "{names[0]}" and "{names[1]}" differ only in case or in \'_\' versus \'-\'' in error, error


@pytest.mark.parametrize("celery, message", [
    ({"redis": {"enabled": False}},
     "at '/teams/0/celery': 'anyOf' failed\n  - at '/teams/0/celery': missing property 'brokerUrl'\n"
     "  - at '/teams/0/celery': missing property 'existingSecret'"),
    ({"redis": {"enabled": False}, "brokerUrl": "redis://broker:6379/0"},
     "at '/teams/0/celery': properties 'resultBackend' required, if 'brokerUrl' exists"),
], ids=["no-broker", "broker-without-result-backend"])
def test_a_celery_team_without_its_broker_is_refused(celery, message):
    error = render_error({"teams": [team(celery=celery)]})
    assert SCHEMA in error and message in error, error


def test_a_broker_of_ones_own_is_accepted():
    for celery in ({"redis": {"enabled": False}, "existingSecret": "team-a-broker"},
                   {"brokerUrl": "redis://b:6379/0", "resultBackend": "redis://b:6379/1"}):
        rendered = render({"teams": [team(celery=celery)]})
        assert not [o for o in rendered.objects if o["metadata"]["name"].endswith("-team-a-redis")]


@pytest.mark.parametrize("values, message", [
    ({"teams": [team(executor="kubernetes", celery={})]},
     'teams: team "team_a" has executor kubernetes but celery settings'),
    ({"teams": [team(kubernetes={"namespace": "x"})]}, 'teams: team "team_a" has executor celery but kubernetes settings'),
    ({"teams": [team(internalApi={"secretKey": "k" * 32}), team(name="team_b", internalApi={"previousSecretKey": "k" * 32})]},
     'teams: teams "team_a" and "team_b" share an internal API key'),
    ({"teams": [TEAM], "config": {"core": {"executor": "LocalExecutor"}}},
     "config.core.executor is set by the chart (see values.yaml); remove it from config."),
    ({"teams": [TEAM], "config": {"database": {"sql_alchemy_conn": "sqlite://"}}},
     "config.database.sql_alchemy_conn is set by the chart"),
    ({"teams": [TEAM], "postgresql": {"enabled": False}},
     "database: with postgresql.enabled false, set database.url or database.existingSecret"),
    ({"teams": [team(kubernetes={"namespace": "Team_A"}, executor="kubernetes")]},
     "at '/teams/0/kubernetes/namespace': 'Team_A' does not match pattern"),
    ({"teams": [TEAM], "bogus": 1}, "at '': additional properties 'bogus' not allowed"),
], ids=["kubernetes-with-celery", "celery-with-kubernetes", "shared-key", "owned-option", "owned-database-option",
        "no-database", "bad-namespace", "unknown-top-level-key"])
def test_other_refusals(values, message):
    error = render_error(values)
    assert message in error, error
