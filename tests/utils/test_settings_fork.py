"""A forked child leaves the parent's pooled database connections open (patch forked-child-keeps-parent-db-connections)."""

from __future__ import annotations

import multiprocessing

import pytest
import sqlalchemy

from airflow import settings
from airflow.executors.local_executor import LocalWorker


@pytest.fixture
def one_pooled_connection(postgres_database, monkeypatch):
    """settings.engine with one pooled connection and no pre-ping, which would replace a closed one unseen."""
    engine = sqlalchemy.create_engine(postgres_database, pool_size=1, max_overflow=0, pool_pre_ping=False)
    monkeypatch.setattr(settings, "engine", engine)
    yield
    engine.dispose()


def backend_pid() -> int:
    with settings.engine.connect() as connection:
        return connection.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar()


@pytest.mark.usefixtures("one_pooled_connection")
def test_a_local_executor_worker_starting_leaves_the_schedulers_pooled_connection_open():
    pooled = backend_pid()  # checked in again, so the worker's copy of the pool holds it too
    # LocalWorkerBase.run disposes the engine in the child, as every LocalExecutor worker does.
    worker = LocalWorker(multiprocessing.Queue(), key=None, command=None)
    worker.start()
    worker.join(timeout=60)
    assert worker.exitcode == 0

    # Closed by the child, the connection would fail: "server closed the connection unexpectedly".
    assert backend_pid() == pooled
