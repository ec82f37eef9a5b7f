"""What DAG authors use, run by isolated components: a dag-processor and LocalExecutor task processes
without database credentials, everything through a real `airflow internal-api`, SLA misses included
(deferrable operators and the triggerer: test_isolated_components.py).

One deployment for the module; each test triggers its own DAG and checks its rows, logs and the marks
its callbacks leave (files in ``marks/``, written by whichever process ran the callback)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

HEADER = """
    import pathlib
    from datetime import timedelta

    import pendulum
    from airflow import DAG, Dataset
    from airflow.decorators import task
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import BranchPythonOperator, PythonOperator

    MARKS = pathlib.Path({marks!r})
    START = pendulum.datetime(2024, 1, 1)

    def mark(kind):
        def callback(context):
            name = context["ti"].task_id if kind.startswith("task_") else context["dag"].dag_id
            (MARKS / f"{{kind}}.{{name}}").write_text(str(context.get("reason") or ""))
        return callback
"""

CALLBACKS = """
    def fail_first_try(ti):
        if ti.try_number == 1:
            raise RuntimeError("first try fails")

    def always_fail():
        raise RuntimeError("this task fails")

    with DAG("callbacks", schedule=None, start_date=START, on_failure_callback=mark("dag_failure")):
        PythonOperator(task_id="flaky", python_callable=fail_first_try, retries=1,
                       retry_delay=timedelta(seconds=1), on_retry_callback=mark("task_retry"),
                       on_success_callback=mark("task_success"))
        PythonOperator(task_id="doomed", python_callable=always_fail, on_failure_callback=mark("task_failure"))
"""

FLOW = """
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sensors.external_task import ExternalTaskSensor
    from airflow.sensors.python import PythonSensor

    ORDERS = Dataset("file:///shared/orders")

    def poke_twice():
        poked = MARKS / "poked"
        if poked.exists():
            return True
        poked.touch()
        return False

    with DAG("flow", schedule=None, start_date=START, on_success_callback=mark("dag_success")):
        @task
        def double(x):
            return 2 * x

        @task
        def total(values):
            assert sorted(values) == [2, 4, 6], values

        total(double.expand(x=[1, 2, 3]))

        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "chosen")
        branch >> [PythonOperator(task_id="chosen", python_callable=lambda: None),
                   PythonOperator(task_id="not_chosen", python_callable=lambda: None)]

        # (with 1 s the rescheduled try can race the LocalExecutor's report of the first under load: upstream)
        PythonSensor(task_id="rescheduled", python_callable=poke_twice, mode="reschedule", poke_interval=10)

        produce = PythonOperator(task_id="produce", python_callable=lambda: None, outlets=[ORDERS])
        produce >> TriggerDagRunOperator(
            task_id="trigger", trigger_dag_id="triggered", conf={"sent_by": "flow"},
            logical_date="{{ logical_date }}", wait_for_completion=True, poke_interval=2,
        ) >> TriggerDagRunOperator(  # the run exists: it is cleared and runs again
            task_id="retrigger", trigger_dag_id="triggered", logical_date="{{ logical_date }}",
            reset_dag_run=True, wait_for_completion=True, poke_interval=2)

    with DAG("triggered", schedule=None, start_date=START):
        def read_conf(dag_run):
            assert dag_run.conf == {"sent_by": "flow"}, dag_run.conf

        PythonOperator(task_id="read_conf", python_callable=read_conf)
        ExternalTaskSensor(task_id="wait_for_produce", external_dag_id="flow", external_task_id="produce",
                           mode="reschedule", poke_interval=5, timeout=120)

    with DAG("consumer", schedule=[ORDERS], start_date=START):
        PythonOperator(task_id="consume", python_callable=lambda triggering_dataset_events: print(
            "events:", {uri: len(events) for uri, events in triggering_dataset_events.items()}))
"""

# Runs every 20 s from the module's start; its task's 1 s SLA is missed by the runs after the latest success.
SLA = """
    def sla_missed(dag, task_list, blocking_task_list, slas, blocking_tis):
        (MARKS / "sla_miss.sla").write_text(task_list)

    with DAG("sla", schedule=timedelta(seconds=20), start_date=START, catchup=False, sla_miss_callback=sla_missed):
        PythonOperator(task_id="quick", python_callable=lambda: None, sla=timedelta(seconds=1))
"""

WARNED = """
    with DAG("warned", schedule=None, start_date=START):
        EmptyOperator(task_id="in_a_missing_pool", pool="no_such_pool")
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server):
    from tests.test_utils.deployment import Deployment

    root = tmp_path_factory.mktemp("author-features")
    database = postgres_server.create_database(f"e2e_features_{root.name.replace('-', '_')}")
    deployment = Deployment(root, database, None, isolated=True, scheduler__min_file_process_interval="1")
    deployment.marks = root / "marks"
    deployment.marks.mkdir()
    header = HEADER.format(marks=str(deployment.marks))
    for name, body in (("callbacks", CALLBACKS), ("flow", FLOW), ("warned", WARNED), ("sla", SLA)):
        deployment.write_dag(None, f"{name}.py", header + body)
    deployment.migrate()
    deployment.start("dag-processor", "dag-processor")
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 6, "the DAGs")
    yield deployment
    deployment.stop_all()


def states(deployment, dag_id: str) -> dict[str, str]:
    rows = deployment.rows("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = :d", d=dag_id)
    return {task_id if map_index < 0 else f"{task_id}[{map_index}]": state for task_id, map_index, state in rows}


def test_retries_and_task_and_dag_callbacks(deployment):
    deployment.airflow("dags", "trigger", "callbacks")

    assert deployment.wait_for_dag_run("callbacks") == "failed"
    assert states(deployment, "callbacks") == {"flaky": "success", "doomed": "failed"}
    assert deployment.scalar("SELECT try_number FROM task_instance WHERE task_id = 'flaky'") == 2
    # The task callbacks ran in the task processes, the DAG's in the dag-processor.
    deployment.wait_for(lambda: (deployment.marks / "dag_failure.callbacks").exists(), "the DAG's failure callback")
    assert {"task_retry.flaky", "task_success.flaky", "task_failure.doomed"} <= {p.name for p in deployment.marks.iterdir()}
    assert "Marking task as UP_FOR_RETRY" in deployment.task_logs("callbacks", "flaky", attempt="1")
    assert (deployment.marks / "dag_failure.callbacks").read_text() == "task_failure"  # the callback's reason


def test_mapping_branching_sensors_triggering_and_datasets(deployment):
    deployment.airflow("dags", "trigger", "flow")

    assert deployment.wait_for_dag_run("flow", timeout=240) == "success"
    assert states(deployment, "flow") == {
        "double[0]": "success", "double[1]": "success", "double[2]": "success", "total": "success",
        "branch": "success", "chosen": "success", "not_chosen": "skipped",
        "rescheduled": "success", "produce": "success", "trigger": "success", "retrigger": "success"}
    assert deployment.scalar("SELECT count(*) FROM task_reschedule WHERE task_id = 'rescheduled'") >= 1
    assert states(deployment, "triggered") == {"read_conf": "success", "wait_for_produce": "success"}
    # reset_dag_run cleared the triggered run (through the internal API): its tasks ran a second time
    assert deployment.rows("SELECT DISTINCT try_number FROM task_instance WHERE dag_id = 'triggered'") == [(2,)]
    assert deployment.wait_for_dag_run("consumer") == "success"
    assert deployment.scalar("SELECT count(*) FROM dataset_event") == 1
    assert "events: {'file:///shared/orders': 1}" in deployment.task_logs("consumer", "consume")
    deployment.wait_for(lambda: (deployment.marks / "dag_success.flow").exists(), "the DAG's success callback")

    # Clearing the mapped task and what depends on it runs them again, through the same isolated path.
    deployment.airflow("tasks", "clear", "flow", "--task-regex", "^double$", "--downstream", "--yes")
    deployment.wait_for(lambda: deployment.rows(
        "SELECT DISTINCT try_number, state FROM task_instance WHERE dag_id = 'flow' AND task_id IN ('double', 'total')"
    ) == [(2, "success")], "the cleared tasks' second try")
    assert deployment.wait_for_dag_run("flow") == "success"
    assert states(deployment, "flow")["produce"] == "success"
    assert deployment.scalar("SELECT try_number FROM task_instance WHERE dag_id = 'flow' AND task_id = 'produce'") == 1


def test_dag_warnings(deployment):
    warning = deployment.wait_for(
        lambda: deployment.scalar("SELECT message FROM dag_warning WHERE dag_id = 'warned'"), "the DAG warning")
    assert "no_such_pool" in warning


def test_sla_misses_are_recorded_and_reach_the_dag_s_callback(deployment):
    mark = deployment.marks / "sla_miss.sla"
    deployment.wait_for(mark.exists, "the SLA miss callback (run by the dag-processor)", timeout=180)

    assert mark.read_text().startswith("quick on ")
    # recorded by the internal API, marked as notified once the callback ran
    assert deployment.scalar("SELECT count(*) FROM sla_miss WHERE dag_id = 'sla' AND notification_sent") >= 1
    assert "Running SLA Checks for sla (through the internal API)" in "\n".join(
        path.read_text() for path in (deployment.home / "logs" / "scheduler").rglob("sla.py.log"))
