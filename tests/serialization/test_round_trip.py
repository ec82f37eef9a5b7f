"""A deserialized DAG serializes to what it was deserialized from (patch isolated-dag-serialization-round-trip):
what the internal API writes for an isolated dag-processor is what the dag-processor serialized."""

from __future__ import annotations

import copy

import pendulum


def test_a_deserialized_dag_serializes_to_the_same_document():
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.bash import BashOperator
    from airflow.sensors.external_task import ExternalTaskMarker
    from airflow.serialization.serialized_objects import SerializedDAG
    from airflow.utils.task_group import TaskGroup

    with DAG("round_trip", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
        with TaskGroup("group"):
            ExternalTaskMarker(task_id="mark", external_dag_id="other", external_task_id="t", recursion_depth=3)
            BashOperator(task_id="bash", bash_command="echo {{ ds }}")

        @task
        def decorated():
            pass

        decorated()

    first = SerializedDAG.to_dict(dag)
    sent = copy.deepcopy(first)  # from_dict adds defaults to the document it reads
    again = SerializedDAG.to_dict(SerializedDAG.from_dict(first))

    tasks = {t["__var"]["task_id"]: t["__var"] for t in again["dag"]["tasks"]}
    assert tasks["group.mark"]["recursion_depth"] == 3
    assert tasks["decorated"]["_operator_name"] == "@task"
    for sent_task, written_task in zip(sent["dag"]["tasks"], again["dag"]["tasks"], strict=True):
        assert written_task["__var"] == sent_task["__var"]
    assert SerializedDAG.from_dict(again).get_task("group.mark").recursion_depth == 3
