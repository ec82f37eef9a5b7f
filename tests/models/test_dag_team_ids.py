"""dag_id rules in both modes (patch teams-dag-parsing): upstream's rule without multi-team, one team prefix with it."""

from __future__ import annotations

import pendulum
import pytest

from airflow.exceptions import AirflowException
from airflow.models.dag import DAG
from airflow.teams import parsing
from airflow.teams.parsing import DagTeamMismatchError

TEAMS = {"team_a": [{"name": "a", "class": "LocalExecutor"}], "team_b": [{"name": "b", "class": "LocalExecutor"}]}
START = pendulum.datetime(2024, 1, 1)


@pytest.mark.parametrize("dag_id", ["team_a:etl", "etl:x", ":etl", "etl:"])
def test_without_multi_team_a_colon_is_rejected_exactly_as_upstream(dag_id):
    with pytest.raises(AirflowException, match="has to be made of alphanumeric characters, dashes, dots and underscores"):
        DAG(dag_id, schedule=None, start_date=START)


def test_without_multi_team_plain_ids_are_unchanged_even_while_a_team_is_parsing():
    with parsing.parsing_for("team_a"):
        dag = DAG("etl", schedule=None, start_date=START)

    assert dag.dag_id == "etl"


def test_parsing_for_a_team_adds_its_prefix(multi_team):
    multi_team(TEAMS)

    with parsing.parsing_for("team_a"):
        plain = DAG("etl", schedule=None, start_date=START)
        prefixed = DAG("team_a:other", schedule=None, start_date=START)

    assert plain.dag_id == "team_a:etl"
    assert prefixed.dag_id == "team_a:other"
    assert plain.safe_dag_id == "team_a:etl"


def test_a_dag_claiming_another_team_is_refused(multi_team):
    multi_team(TEAMS)

    with parsing.parsing_for("team_a"), pytest.raises(DagTeamMismatchError, match="claims team 'team_b'"):
        DAG("team_b:etl", schedule=None, start_date=START)


@pytest.mark.parametrize(
    "dag_id, message",
    [("team_a:team_b:etl", "more than one team prefix"), ("ab:etl", "invalid team prefix 'ab'"),
     ("team_a:bad id", "alphanumeric")],
)
def test_invalid_team_ids_are_refused_in_multi_team_mode(multi_team, dag_id, message):
    multi_team(TEAMS)

    with pytest.raises(AirflowException, match=message):
        DAG(dag_id, schedule=None, start_date=START)


def test_team_qualified_ids_load_outside_any_team_for_the_scheduler_and_webserver(multi_team):
    multi_team(TEAMS)

    assert DAG("team_b:etl", schedule=None, start_date=START).dag_id == "team_b:etl"
