"""The consumers of the cross-team example, in the second team's folder (``team_b:consume_orders``, ...).

``./breeze start-airflow --teams team_a,team_b`` copies this file into the second team's new folder, with
the first team's name in ``PRODUCER_TEAMS``. The first team's ``produce_orders`` updates the shared
dataset ``s3://shared/orders`` and admits this team (``allow_consuming_by_teams``); its
``produce_forecast`` updates ``s3://shared/forecast`` and admits no other team:

- ``consume_orders`` lists the producer's team in ``allow_triggering_by_teams``: each event of
  ``produce_orders`` triggers a run;
- ``consume_orders_private`` allows no other team: the event does not trigger it;
- ``consume_forecast`` allows the producer's team, but the producer does not admit this one: refused too.

A refusal is logged (``... may not trigger team_b:consume_orders_private: ...``) where the event is
recorded (the producer's task log; with database access isolation its team's internal API log), counted
as ``teams.trigger_denied``, and written to the audit log of the consuming DAG (and, when the producer
refused, of the producing DAG); the Datasets page lists it.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.datasets import Dataset
from airflow.operators.python import PythonOperator

ORDERS = Dataset("s3://shared/orders")
FORECAST = Dataset("s3://shared/forecast")
PRODUCER_TEAMS = ["team_a"]  # start-airflow --teams writes the first team here


def _read_orders(**context) -> None:
    for uri, events in context["triggering_dataset_events"].items():
        for event in events:  # the event names the producing DAG, task and run (source_dag_id=...)
            print(f"{context['dag'].dag_id}: {uri} updated: {event}")


def _consumer(dag_id: str, description: str, allow: list[str] | None, dataset: Dataset = ORDERS) -> DAG:
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=[dataset],
        start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        catchup=False,
        is_paused_upon_creation=False,
        allow_triggering_by_teams=allow,
        tags=["example", "teams", "datasets"],
    ) as dag:
        PythonOperator(task_id="read_orders", python_callable=_read_orders)
    return dag


consume_orders = _consumer(
    "consume_orders", f"Triggered by s3://shared/orders, also from team(s) {', '.join(PRODUCER_TEAMS)}",
    PRODUCER_TEAMS,
)
consume_orders_private = _consumer(
    "consume_orders_private", "Scheduled on s3://shared/orders, but no other team may trigger it", None,
)
consume_forecast = _consumer(
    "consume_forecast", f"Allows team(s) {', '.join(PRODUCER_TEAMS)}, whose producer does not admit this team",
    PRODUCER_TEAMS, FORECAST,
)
