"""Dag-processors, triggerers and task processes without database credentials: everything goes through a
real `airflow internal-api` (patches internal-api-supported, internal-api-user-model, isolated-dag-processor,
isolated-task-execution, isolated-triggerer).

PostgreSQL asks TCP clients for a password; the isolated processes never see it, and a task proves it
by trying to connect."""

from __future__ import annotations

import re

import pytest
import requests

from tests.test_utils.deployment import local_executors

pytestmark = pytest.mark.e2e

AUTHOR_DAG = """
    import os
    import pendulum
    from airflow import DAG
    from airflow.configuration import conf
    from airflow.operators.bash import BashOperator
    from airflow.operators.python import PythonOperator

    def push():
        return "pushed"

    def pull(ti):
        assert ti.xcom_pull(task_ids="push") == "pushed"

    def probe():
        import psycopg2

        # (printed as booleans and names: the log masks the database setting's value)
        print("database setting is the isolation marker:", conf.get("database", "sql_alchemy_conn") == "none://")
        print("variables naming postgresql:", [key for key, value in os.environ.items() if "postgresql" in value])
        print("teams of the team variables:", sorted({{key.split("___")[0] for key in os.environ if "___" in key}}))
        import psutil
        print("started by a task fork server:",
              any("airflow task fork server" in " ".join(p.cmdline()) for p in psutil.Process().parents()))
        try:
            psycopg2.connect(host="127.0.0.1", port={port}, user="postgres", dbname="postgres", connect_timeout=5)
        except psycopg2.OperationalError as err:
            print("no database:", " ".join(str(err).split()))
        else:
            raise AssertionError("the task connected to the database")

    with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        PythonOperator(task_id="push", python_callable=push) >> PythonOperator(task_id="pull", python_callable=pull)
        BashOperator(task_id="templated", bash_command="echo run={{{{ run_id }}}}")
        PythonOperator(task_id="probe", python_callable=probe)
"""

DEFERRED_DAG = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sensors.date_time import DateTimeSensorAsync

    with DAG("deferred", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        # always in the future when the task starts, so the task always defers
        in_3s = "{{ (macros.datetime.utcnow() + macros.timedelta(seconds=3)).isoformat() }}"
        DateTimeSensorAsync(task_id="wait", target_time=in_3s) >> EmptyOperator(task_id="after")
        # waits deferred: the triggerer counts the triggered run's states through the internal API
        TriggerDagRunOperator(task_id="trigger", trigger_dag_id="target", wait_for_completion=True,
                              deferrable=True, poke_interval=2)

    with DAG("target", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="noop")
"""

CLAIMS_OTHER_TEAM = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("team_b:planted", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="noop")
"""


def environ_of(process) -> str:
    with open(f"/proc/{process.pid}/environ", "rb") as environ:
        return environ.read().decode(errors="replace")


def run_and_check_the_author_dag(deployment, postgres_server, dag_id: str) -> None:
    deployment.airflow("dags", "trigger", dag_id)

    assert deployment.wait_for_dag_run(dag_id) == "success"
    states = dict(deployment.rows("SELECT task_id, state FROM task_instance WHERE dag_id = :d", d=dag_id))
    assert states == dict.fromkeys(("push", "pull", "templated", "probe"), "success")
    rendered = deployment.scalar("SELECT rendered_fields::text FROM rendered_task_instance_fields "
                                 "WHERE dag_id = :d AND task_id = 'templated'", d=dag_id)
    assert re.search(r"run=manual__", rendered)
    probe_log = deployment.task_logs(dag_id, "probe")
    assert "database setting is the isolation marker: True" in probe_log
    assert "variables naming postgresql: []" in probe_log
    assert re.search(r"no database: .*(password authentication failed|no password supplied)", probe_log)
    assert postgres_server.password not in probe_log
    # The isolated components' database work went through the internal API (a line of its access log each).
    team = dag_id.partition(":")[0] if ":" in dag_id else None
    assert deployment.log_of(deployment.internal_api(team)).count('"POST /internal_api/v1/rpcapi') > 20


def test_a_single_team_dag_processor_triggerer_and_local_tasks_work_without_database_credentials(
    make_deployment, postgres_server
):
    deployment = make_deployment(None, name="single")
    deployment.write_dag(None, "author.py", AUTHOR_DAG.format(dag_id="author", port=postgres_server.port))
    deployment.write_dag(None, "deferred.py", DEFERRED_DAG)
    deployment.migrate()
    deployment.isolate()

    processor = deployment.start("dag-processor", "dag-processor")
    triggerer = deployment.start("triggerer", "triggerer")
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 3, "the DAGs")

    assert all(postgres_server.password not in environ_of(process) for process in (processor, triggerer))
    assert "DB isolation mode. Using internal_api when running dag-processor" in deployment.log_of("dag-processor")
    assert "DB isolation mode. Using internal_api when running triggerer" in deployment.log_of("triggerer")
    run_and_check_the_author_dag(deployment, postgres_server, "author")
    assert "started by a task fork server: False" in deployment.task_logs("author", "probe")  # a new interpreter
    # The sensor only finishes through its trigger: the isolated triggerer ran it and submitted the event.
    deployment.airflow("dags", "trigger", "deferred")
    assert deployment.wait_for_dag_run("deferred") == "success"
    assert re.search(r"trigger deferred/\S+/wait/-1/1 \(ID \d+\) completed", deployment.log_of("triggerer"))
    assert re.search(r"trigger deferred/\S+/trigger/-1/1 \(ID \d+\) completed", deployment.log_of("triggerer"))
    assert deployment.scalar("SELECT state FROM dag_run WHERE dag_id = 'target'") == "success"
    assert "Traceback (most recent call last)" not in deployment.log_of("triggerer")
    # A call with a forged token gets its 403 and reason, not a 500 (patch internal-api-problem-responses).
    forged = requests.post(deployment.env["AIRFLOW__CORE__INTERNAL_API_URL"] + "/internal_api/v1/rpcapi",
                           json={"jsonrpc": "2.0", "method": "airflow.jobs.job.Job._kill", "params": {}},
                           headers={"Accept": "application/json", "Authorization": "forged"})
    assert forged.status_code == 403 and "Unable to authenticate" in forged.text, forged.text


def test_team_dag_processors_and_tasks_work_without_database_credentials(make_deployment, postgres_server):
    # Each team's tasks get only their own team's variables (here a harmless option of each team).
    # core__internal_api_access_log: a line per call (a team's internal API logs refused calls only), counted below
    deployment = make_deployment(local_executors("team_a", "team_b"), name="teams", core__internal_api_access_log="all",
                                 team_a___probe__marker="a", team_b___probe__marker="b")
    deployment.write_dag("team_a", "author.py", AUTHOR_DAG.format(dag_id="author", port=postgres_server.port))
    deployment.write_dag("team_a", "claims_b.py", CLAIMS_OTHER_TEAM)
    deployment.write_dag("team_b", "author.py", AUTHOR_DAG.format(dag_id="author", port=postgres_server.port))
    deployment.migrate()
    deployment.isolate()

    processors = [deployment.start(f"dag-processor-{team}", "dag-processor", "--team", team)
                  for team in ("team_a", "team_b")]
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 2, "both DAGs")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM import_error"), "the import error")

    assert all(postgres_server.password not in environ_of(process) for process in processors)
    (error,) = deployment.rows("SELECT filename, stacktrace FROM import_error")
    assert error[0].endswith("team_a/claims_b.py") and "claims team 'team_b'" in error[1]
    assert deployment.scalar("SELECT count(*) FROM dag WHERE dag_id = 'team_b:planted'") == 0
    run_and_check_the_author_dag(deployment, postgres_server, "team_a:author")
    probe_log = deployment.task_logs("team_a:author", "probe")
    assert "teams of the team variables: ['AIRFLOW__TEAM_A']" in probe_log
    # A team's LocalExecutor worker forks its isolated tasks from its task fork server (teams.task_fork_server).
    assert "started by a task fork server: True" in probe_log
