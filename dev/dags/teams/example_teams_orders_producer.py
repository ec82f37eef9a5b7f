"""The producer of the cross-team example, in the first team's folder (``team_a:produce_orders``).

``./breeze start-airflow --teams team_a,team_b`` copies this file into the first team's new folder. Its
task updates the shared dataset ``s3://shared/orders``. Two DAGs of the second team consume it
(``example_teams_orders_consumers.py``): ``consume_orders`` allows this team to trigger it and runs,
``consume_orders_private`` allows no other team and is refused (logged in this task's log, with database
access isolation in this team's internal API log, and counted as ``teams.trigger_denied``).
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.datasets import Dataset
from airflow.operators.bash import BashOperator

ORDERS = Dataset("s3://shared/orders")

with DAG(
    dag_id="produce_orders",
    description="Updates the shared dataset s3://shared/orders (consumed by another team)",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["example", "teams", "datasets"],
) as dag:
    BashOperator(task_id="write_orders", bash_command='echo "orders written"', outlets=[ORDERS])
