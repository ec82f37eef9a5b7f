"""The team-name rule and team-qualified dag ids (airflow.teams.ids)."""

from __future__ import annotations

import pytest

from airflow.exceptions import AirflowException
from airflow.teams import ids


@pytest.mark.parametrize("name", ["abc", "team_a", "team-marketing-1", "A" * 50, "T42"])
def test_valid_team_names(name):
    assert ids.team_name_problem(name) is None


@pytest.mark.parametrize(
    "name, problem",
    [
        ("ab", "3 to 50 characters"),
        ("a" * 51, "3 to 50 characters"),
        ("team a", "3 to 50 characters"),
        ("team:a", "3 to 50 characters"),
        ("team.a", "3 to 50 characters"),
        ("équipe", "3 to 50 characters"),
        ("team_a\n", "3 to 50 characters"),
        (None, "3 to 50 characters"),
        ("DAG", "reserved"),
    ],
)
def test_invalid_team_names_say_why(name, problem):
    assert problem in ids.team_name_problem(name)


def test_split_and_qualify():
    assert ids.split("team_a:etl") == ("team_a", "etl")
    assert ids.split("etl") == (None, "etl")
    assert ids.team_of("team_a:etl") == "team_a"
    assert ids.team_of("etl") is None
    assert ids.qualify("team_a", "etl") == "team_a:etl"
    assert ids.qualify("team_a", "team_a:etl") == "team_a:etl"
    assert ids.qualify("team_a", "team_b:etl") == "team_b:etl"


def test_team_dag_id_rule():
    ids.validate_team_dag_id("team_a:etl.daily-v2")

    with pytest.raises(ids.TeamIdError, match="has no team"):
        ids.validate_team_dag_id("etl")
    with pytest.raises(ids.TeamIdError, match="invalid team prefix 'ab'"):
        ids.validate_team_dag_id("ab:etl")
    with pytest.raises(ids.TeamIdError, match="more than one team prefix"):
        ids.validate_team_dag_id("team_a:team_b:etl")
    with pytest.raises(AirflowException, match="alphanumeric characters"):
        ids.validate_team_dag_id("team_a:etl daily")
    with pytest.raises(AirflowException, match="less than"):
        ids.validate_team_dag_id("team_a:" + "x" * 250)
