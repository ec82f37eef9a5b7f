"""team_a's DAG of attacks: its parse, its task and its trigger each try every way across (attacks.py)."""

from __future__ import annotations

import datetime

from team_a import attacks

from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.utils.dag_parsing_context import get_parsing_context

if get_parsing_context().dag_id is None:  # the dag-processor's parse, not a task's
    attacks.record("dag-processor")

with DAG(
    dag_id="attack",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    is_paused_upon_creation=False,
) as dag:
    PythonOperator(task_id="in_task", python_callable=lambda: attacks.record("task")) >> attacks.DeferToAttackTrigger(
        task_id="in_trigger"
    )
