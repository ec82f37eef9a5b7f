"""The producers of the cross-team example, in the first team's folder (``team_a:produce_orders``, ...).

``./breeze start-airflow --teams team_a,team_b`` copies this file into the first team's new folder, with
the second team's name in ``CONSUMER_TEAMS``. Consent takes both ends: the producing DAG names the other
teams its events may reach (``allow_consuming_by_teams``), the consuming DAG the other teams that may
trigger it (``allow_triggering_by_teams``). The second team's DAGs (``example_teams_orders_consumers.py``):

- ``produce_orders`` updates ``s3://shared/orders`` and admits the second team: its ``consume_orders``
  (which allows this team) runs, ``consume_orders_private`` (which allows no other team) refuses it;
- ``produce_forecast`` updates ``s3://shared/forecast`` and admits no other team: the second team's
  ``consume_forecast`` allows this team, but the producer refuses it.

Each refusal is logged in this task's log (with database access isolation in this team's internal API
log), counted as ``teams.trigger_denied`` and written to the consumer's audit log; a refusal by the
producer also to the producing DAG's.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.datasets import Dataset
from airflow.operators.bash import BashOperator

CONSUMER_TEAMS = ["team_b"]  # start-airflow --teams writes the second team here


def _producer(dag_id: str, dataset: Dataset, consumers: list[str] | None, description: str) -> DAG:
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        catchup=False,
        is_paused_upon_creation=False,
        allow_consuming_by_teams=consumers,
        tags=["example", "teams", "datasets"],
    ) as dag:
        BashOperator(task_id="write", bash_command=f'echo "{dataset.uri} written"', outlets=[dataset])
    return dag


produce_orders = _producer(
    "produce_orders", Dataset("s3://shared/orders"), CONSUMER_TEAMS,
    f"Updates the shared dataset s3://shared/orders; its events may reach team(s) {', '.join(CONSUMER_TEAMS)}",
)
produce_forecast = _producer(
    "produce_forecast", Dataset("s3://shared/forecast"), None,
    "Updates the shared dataset s3://shared/forecast; its events reach no other team",
)
