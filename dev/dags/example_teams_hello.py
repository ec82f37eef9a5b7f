"""A small single-team DAG for ``./breeze start-airflow``: a Bash task, then a Python task.

The end-to-end test (tests/breeze/test_start_airflow.py) unpauses and triggers it and expects both
tasks to succeed within seconds.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator


def _greet(**context) -> str:
    message = f"Hello from {context['dag'].dag_id}, run {context['run_id']}"
    print(message)
    return message


with DAG(
    dag_id="example_teams_hello",
    description="Single-team smoke test: bash, then python",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    tags=["example", "teams"],
) as dag:
    say_hello = BashOperator(task_id="say_hello", bash_command='echo "hello from $(hostname)"')
    greet = PythonOperator(task_id="greet", python_callable=_greet)

    say_hello >> greet
