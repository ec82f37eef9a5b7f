"""A team's first DAG: ``./breeze start-airflow --teams`` copies this file into every new team folder.

In a team's folder its id becomes ``<team>:example_teams_hello``. Both tasks read the team's own
variable ``greeting`` and connection ``team_db`` from the team's secrets backend
(``AIRFLOW_HOME/secrets/<team>/variables.json`` and ``connections.json``): every team has the same ids
with different values, and each team's task logs show its own. The connection's password is masked
(``***``) in the log.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator


def _greet(**context) -> str:
    from airflow.hooks.base import BaseHook
    from airflow.models import Variable

    greeting = Variable.get("greeting")
    connection = BaseHook.get_connection("team_db")
    print(f"{context['dag'].dag_id}: variable greeting = {greeting!r}")
    print(
        f"{context['dag'].dag_id}: connection team_db = {connection.conn_type}://{connection.login}:"
        f"{connection.password}@{connection.host}:{connection.port}/{connection.schema}"
    )
    return greeting


with DAG(
    dag_id="example_teams_hello",
    description="Reads the team's own variable and connection: bash (a template), then python",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["example", "teams"],
) as dag:
    say_hello = BashOperator(
        task_id="say_hello",
        bash_command='echo "greeting: {{ var.value.greeting }} (team_db host: {{ conn.team_db.host }})"',
    )
    greet = PythonOperator(task_id="greet", python_callable=_greet)

    say_hello >> greet
