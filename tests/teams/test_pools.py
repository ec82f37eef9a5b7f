"""Which pools a team's tasks may use, and the team's default pool (patch teams-pools), in process."""

from __future__ import annotations

import pendulum
import pytest

from airflow.exceptions import AirflowException
from airflow.models.dag import DAG
from airflow.operators.empty import EmptyOperator
from airflow.teams import parsing, pools

TEAMS = {"team_a": [{"name": "a", "class": "LocalExecutor"}], "team_b": [{"name": "b", "class": "LocalExecutor"}]}


@pytest.mark.parametrize(("pool", "owner"), [
    ("default_pool", None), ("shared", None), ("team_a:mine", None), ("team_b:theirs", "team_b"),
])
def test_a_team_may_use_its_own_and_shared_pools(pool, owner):
    assert pools.pool_owner_outside(pool, {"team_a"}) == owner


def dag_of(team: str, **task_pools: str | None) -> DAG:
    with parsing.parsing_for(team):
        dag = DAG("pooled", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
        for task_id, pool in task_pools.items():
            EmptyOperator(task_id=task_id, pool=pool, dag=dag)
    return dag


def test_the_teams_default_pool_replaces_default_pool_for_its_tasks_only(multi_team, monkeypatch):
    multi_team(TEAMS)
    monkeypatch.setenv("AIRFLOW__TEAM_A___CORE__DEFAULT_POOL", "team_a:default")
    team_a, team_b = dag_of("team_a", plain=None, shared="shared"), dag_of("team_b", plain=None)

    pools.use_team_pools(team_a, "team_a")
    pools.use_team_pools(team_b, "team_b")

    assert {task.task_id: task.pool for task in team_a.tasks} == {"plain": "team_a:default", "shared": "shared"}
    assert team_b.get_task("plain").pool == "default_pool"


def test_a_task_in_another_teams_pool_is_refused_naming_both_teams(multi_team):
    multi_team(TEAMS)

    with pytest.raises(pools.TeamPoolError, match=r"Task 'fill' of DAG 'team_a:pooled' \(team 'team_a'\) may not use "
                                                  r"pool 'team_b:reserved' of team 'team_b'"):
        pools.use_team_pools(dag_of("team_a", fill="team_b:reserved"), "team_a")


def test_without_multi_team_pools_are_unchanged_and_a_colon_is_refused_as_upstream():
    dag = DAG("pooled", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
    EmptyOperator(task_id="any", pool="other_pool", dag=dag)

    pools.use_team_pools(dag, None)

    assert dag.get_task("any").pool == "other_pool"
    with pytest.raises(AirflowException, match="has to be made of alphanumeric characters"):
        EmptyOperator(task_id="colon", pool="team_b:reserved", dag=dag)


def test_a_team_pool_name_needs_a_valid_team_and_name(multi_team):
    multi_team(TEAMS)
    with pytest.raises(pools.TeamPoolError, match=r"Pool 'a b:x' has an invalid team prefix 'a b'"):
        dag_of("team_a", bad="a b:x")
    with pytest.raises(AirflowException, match="has to be made of alphanumeric characters"):
        dag_of("team_a", bad="team_a:x:y")
