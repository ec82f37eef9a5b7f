"""The worker's SQLite metadata database, shared by the database tests of one pytest worker."""

from __future__ import annotations


def delete_dags() -> None:
    """Delete the DAGs, runs and task instances a test wrote, so the next test of the worker starts without them."""
    from airflow.models import DagModel, DagRun, TaskInstance
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        for model in (TaskInstance, DagRun, SerializedDagModel, DagModel):
            session.query(model).delete()
