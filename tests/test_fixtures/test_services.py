"""The harness gives each worker its own Airflow home and real PostgreSQL / Redis servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def test_each_worker_has_its_own_airflow_home_and_sqlite_db(airflow_home):
    from airflow.configuration import conf

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    assert airflow_home.name.startswith(f"airflow-teams-tests-{worker}-")
    assert os.environ["AIRFLOW_HOME"] == str(airflow_home)
    assert conf.get("database", "sql_alchemy_conn") == f"sqlite:///{airflow_home / 'airflow.db'}"


@pytest.mark.db_test
def test_db_test_marker_gives_a_migrated_sqlite_db():
    from airflow.models import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        assert session.get_bind().dialect.name == "sqlite"
        assert session.query(DagModel).count() == 0


@pytest.mark.backend("postgres")
def test_postgres_backend_marker_runs_the_test_on_a_real_postgresql():
    from airflow.models import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        assert session.get_bind().dialect.name == "postgresql"
        assert "PostgreSQL" in session.execute(sqlalchemy.text("SELECT version()")).scalar()
        session.add(DagModel(dag_id="written_to_postgres"))
    with create_session() as session:
        assert [d.dag_id for d in session.query(DagModel)] == ["written_to_postgres"]


def test_postgresql_takes_no_connection_without_its_password_over_tcp_or_its_unix_socket(postgres_server,
                                                                                       monkeypatch):
    import psycopg2

    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    tcp_and_socket = ("127.0.0.1", str(postgres_server.data_dir))  # the socket is in the data directory
    for host in tcp_and_socket:
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            psycopg2.connect(host=host, port=postgres_server.port, user="postgres", dbname="postgres")
    for host in tcp_and_socket:
        psycopg2.connect(host=host, port=postgres_server.port, user="postgres", dbname="postgres",
                         password=postgres_server.password).close()


def test_standalone_dag_processor_runs_on_the_postgres_fixture(postgres_database, tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "hello.py").write_text(textwrap.dedent("""
        import pendulum
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator

        with DAG("fixture_hello", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
            EmptyOperator(task_id="noop")
    """))
    env = os.environ | {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_database,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)

    result = subprocess.run([AIRFLOW, "dag-processor", "--num-runs", "1"], env=env, capture_output=True,
                            text=True, timeout=240)

    assert result.returncode == 0, result.stderr[-3000:]
    engine = sqlalchemy.create_engine(postgres_database)
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text("SELECT dag_id FROM serialized_dag")).scalars().all()
    engine.dispose()
    assert rows == ["fixture_hello"]


def test_standalone_dag_processor_refuses_sqlite_which_is_why_the_fixture_exists(tmp_path):
    env = os.environ | {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)

    result = subprocess.run([AIRFLOW, "dag-processor", "--num-runs", "1"], env=env, capture_output=True,
                            text=True, timeout=120)

    assert result.returncode != 0
    assert "sqlite" in (result.stdout + result.stderr).lower()


def test_redis_fixture_is_a_real_server_that_can_be_restarted(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url())
    client.set("key", "value")
    assert client.get("key") == b"value"

    redis_server.stop()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", redis_server.port)) != 0
    redis_server.start()

    assert redis.Redis.from_url(redis_server.url()).ping()


def test_the_isolation_guard_reports_what_an_isolated_process_logged_of_its_own_database_access(tmp_path):
    from airflow.settings import TracebackSession

    from tests.test_utils.deployment import Deployment

    with pytest.raises(RuntimeError) as raised:  # what Airflow raises when isolated code uses a session
        TracebackSession().execute
    deployment = Deployment(tmp_path, "postgresql://nobody@127.0.0.1:1/unused")
    deployment.isolated = True
    deployment.isolated_processes.add("dag-processor")
    (deployment.logs / "dag-processor.log").write_text("INFO - parsed\n")
    (deployment.logs / "scheduler.log").write_text(f"ERROR - {raised.value}\n")  # the scheduler has access
    deployment.assert_no_direct_database_access()

    task_log = deployment.home / "logs" / "dag_id=d" / "run_id=r" / "task_id=t" / "attempt=1.log"
    task_log.parent.mkdir(parents=True)
    task_log.write_text(f"ERROR - Task failed: {raised.value}\n")
    with pytest.raises(AssertionError, match=r"task_id=t/attempt=1.log: ERROR - Task failed: TracebackSession object"):
        deployment.assert_no_direct_database_access()
