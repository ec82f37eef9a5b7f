"""Adoption of a team executor's tasks after a scheduler restart (patch adopt-tasks-with-the-executors-celery-app)."""

from __future__ import annotations

import pendulum

from tests.test_utils.celery import celery_executor


def test_adopted_tasks_are_read_from_the_executors_own_result_backend(multi_team, redis_servers):
    from celery import current_app

    from airflow.executors.executor_loader import ExecutorLoader
    from airflow.models.dag import DAG
    from airflow.models.taskinstance import TaskInstance
    from airflow.operators.empty import EmptyOperator
    from airflow.teams import parsing

    multi_team({team: [celery_executor(f"{team}_celery", broker_url=redis_servers[team].url(0),
                                       result_backend=redis_servers[team].url(1))]
                for team in ("team_a", "team_b")})
    executors = ExecutorLoader.init_executors()
    # Each executor has its own Celery app; Celery's current (default) app is one of them, or another.
    adopting = next(e for e in executors if e.celery_app is not current_app._get_current_object())
    team = adopting.team_name
    # The task started while no scheduler ran: its state is in its team's result backend only.
    adopting.celery_app.backend.store_result("celery-task-id", None, "STARTED")
    with parsing.parsing_for(team):
        dag = DAG("adopt", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
    ti = TaskInstance(EmptyOperator(task_id="t", dag=dag), run_id="before_restart")
    ti.external_executor_id = "celery-task-id"

    not_adopted = adopting.try_adopt_task_instances([ti])

    assert not_adopted == []
    [result] = adopting.workloads.values()
    assert result.state == "STARTED"  # read from its team's result backend, not the default app's
