"""Celery per team: a real scheduler, a real Redis broker per team, real `airflow celery worker --team`."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.test_utils.celery import celery_executor, start_worker, use_team_redis

pytestmark = pytest.mark.e2e

# Every task records which worker ran it: WORKER is set per worker process.
RECORDING_DAG = """
    import os
    import pathlib
    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    def record(dag, task, run_id):
        name = f"{{dag.dag_id}}.{{task.task_id}}.{{run_id}}".replace(":", "-")
        (pathlib.Path({markers!r}) / name).write_text(os.environ["WORKER"])

    with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        {tasks}
"""


def task_line(task_id: str, executor: str | None = None) -> str:
    executor_arg = f", executor={executor!r}" if executor else ""
    return f"PythonOperator(task_id={task_id!r}, python_callable=record{executor_arg})"


def test_the_celery_command_group_appears_once_with_several_celery_executors(make_deployment):
    deployment = make_deployment({"team_a": [celery_executor("a_one"), celery_executor("a_two")],
                                  "team_b": [celery_executor("b_one")]})

    commands = deployment.airflow("--help").stdout

    assert [line.split()[0] for line in commands.splitlines() if line.strip().startswith("celery ")] == ["celery"]


def make_celery_deployment(make_deployment, redis_servers, teams: dict):
    deployment = make_deployment(teams, celery__worker_prefetch_multiplier="1", celery__sync_parallelism="1")
    use_team_redis(deployment, "team_a", redis_servers["a"])
    use_team_redis(deployment, "team_b", redis_servers["b"])
    deployment.migrate()
    return deployment


def start_team_components(deployment, teams=("team_a", "team_b")):
    for team in teams:
        deployment.start(f"dag-processor-{team}", "dag-processor", "--team", team)
    deployment.start("scheduler", "scheduler")


def two_teams_with_workers(make_deployment, redis_servers, markers):
    """team_a and team_b, one CeleryExecutor, worker, dag-processor and recording DAG `etl` each."""
    markers.mkdir()
    deployment = make_celery_deployment(make_deployment, redis_servers, {
        "team_a": [celery_executor("a_celery")], "team_b": [celery_executor("b_celery")],
    })
    for team in ("team_a", "team_b"):
        deployment.write_dag(team, "etl.py", RECORDING_DAG.format(markers=str(markers), tasks=task_line("work")))
    start_worker(deployment, "worker_a", "team_a")
    start_worker(deployment, "worker_b", "team_b")
    start_team_components(deployment)
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 2, "DAGs")
    return deployment


def markers_of(markers) -> dict[str, str]:
    return {path.name: path.read_text() for path in markers.iterdir()}


def test_each_teams_dag_runs_on_its_own_worker_and_broker(make_deployment, redis_servers, tmp_path):
    markers = tmp_path / "markers"
    deployment = two_teams_with_workers(make_deployment, redis_servers, markers)

    deployment.airflow("dags", "trigger", "team_a:etl", "--run-id", "r1")
    deployment.airflow("dags", "trigger", "team_b:etl", "--run-id", "r1")

    assert deployment.wait_for_dag_run("team_a:etl") == "success"
    assert deployment.wait_for_dag_run("team_b:etl") == "success"
    assert markers_of(markers) == {"team_a-etl.work.r1": "worker_a", "team_b-etl.work.r1": "worker_b"}
    # Each team's Celery messages went through its own Redis only.
    import redis

    keys_a = {k.decode() for k in redis.Redis.from_url(redis_servers["a"].url(1)).keys("celery-task-meta-*")}
    keys_b = {k.decode() for k in redis.Redis.from_url(redis_servers["b"].url(1)).keys("celery-task-meta-*")}
    ids = dict(deployment.rows("SELECT dag_id, external_executor_id FROM task_instance"))
    assert keys_a == {f"celery-task-meta-{ids['team_a:etl']}"}
    assert keys_b == {f"celery-task-meta-{ids['team_b:etl']}"}


def test_a_worker_of_team_b_refuses_a_task_of_team_a(make_deployment, redis_servers, tmp_path):
    deployment = make_celery_deployment(make_deployment, redis_servers, {
        "team_a": [celery_executor("a_celery")], "team_b": [celery_executor("b_celery")],
    })
    start_worker(deployment, "worker_b", "team_b")
    send = textwrap.dedent("""
        from airflow.executors.base_executor import ExecutorConf
        from airflow.providers.celery.executors.celery_executor_utils import create_celery_app

        app = create_celery_app(ExecutorConf("team_b"))
        command = ["airflow", "tasks", "run", "team_a:etl", "work", "manual_1", "--local"]
        result = app.tasks["execute_command"].apply_async(args=[command], queue="default")
        result.get(timeout=60, propagate=False)
        print(result.state)
    """)

    outcome = subprocess.run([sys.executable, "-c", send], env=deployment.env, capture_output=True, text=True,
                             timeout=120)

    assert outcome.stdout.strip().splitlines()[-1] == "FAILURE", outcome.stderr[-3000:]
    log = deployment.log_of("worker_b")
    assert "Refusing DAG 'team_a:etl' (team 'team_a'): this process serves team 'team_b' only." in log
    assert "Running <TaskInstance" not in log
    assert not (deployment.home / "logs" / "dag_id=team_a:etl").exists()


def test_two_celery_executors_of_one_team_are_routed_by_executor(make_deployment, redis_servers, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    second_broker = redis_servers["a2"]
    deployment = make_celery_deployment(make_deployment, redis_servers, {
        "team_a": [
            celery_executor("a_main"),
            celery_executor("a_gpu", broker_url=second_broker.url(0), result_backend=second_broker.url(1)),
        ],
        "team_b": [celery_executor("b_celery")],
    })
    tasks = "\n        ".join([task_line("default"), task_line("on_gpu", "a_gpu"), task_line("by_name", "a_main")])
    deployment.write_dag("team_a", "etl.py", RECORDING_DAG.format(markers=str(markers), tasks=tasks))
    deployment.write_dag("team_a", "foreign.py", RECORDING_DAG.format(
        markers=str(markers), tasks=task_line("steal", "b_celery")))
    start_worker(deployment, "worker_main", "team_a")
    start_worker(deployment, "worker_gpu", "team_a", env={"AIRFLOW__TEAM_A___CELERY__BROKER_URL": second_broker.url(0)})
    start_team_components(deployment, teams=("team_a",))
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 1, "the DAG")

    deployment.airflow("dags", "trigger", "team_a:etl", "--run-id", "r1")

    assert deployment.wait_for_dag_run("team_a:etl") == "success"
    assert markers_of(markers) == {
        "team_a-etl.default.r1": "worker_main",
        "team_a-etl.by_name.r1": "worker_main",
        "team_a-etl.on_gpu.r1": "worker_gpu",
    }
    error = deployment.scalar("SELECT stacktrace FROM import_error")
    assert "Task steal: Executor 'b_celery' belongs to team 'team_b', not to team 'team_a'" in error


def test_a_teams_broker_outage_does_not_stop_the_other_team(make_deployment, redis_servers, tmp_path):
    markers = tmp_path / "markers"
    deployment = two_teams_with_workers(make_deployment, redis_servers, markers)
    deployment.airflow("dags", "trigger", "team_a:etl", "--run-id", "before")
    assert deployment.wait_for_dag_run("team_a:etl") == "success"

    redis_servers["a"].stop()
    deployment.airflow("dags", "trigger", "team_a:etl", "--run-id", "during")
    for run in ("b1", "b2"):
        deployment.airflow("dags", "trigger", "team_b:etl", "--run-id", run)
    runs_b = lambda: deployment.rows(  # noqa: E731
        "SELECT run_id FROM dag_run WHERE dag_id = 'team_b:etl' AND state = 'success' ORDER BY run_id")
    deployment.wait_for(lambda: runs_b() == [("b1",), ("b2",)], "team B's runs while A's broker is down")
    state_during = deployment.scalar("SELECT state FROM dag_run WHERE run_id = 'during'")

    redis_servers["a"].start()
    deployment.wait_for(
        lambda: deployment.scalar("SELECT state FROM dag_run WHERE run_id = 'during'") == "success",
        "team A's run after its broker is back", timeout=180,
    )

    assert state_during == "running"
    assert markers_of(markers)["team_a-etl.work.during"] == "worker_a"
    assert deployment.scalar("SELECT count(*) FROM task_instance WHERE state <> 'success'") == 0
    assert "Broker of team team_a unreachable" in deployment.log_of("scheduler")


def test_celery_stop_and_flower_keep_working_in_multi_team_mode(make_deployment, redis_servers, tmp_path):
    import psutil
    import requests

    from teams_breeze.services import free_port

    deployment = make_celery_deployment(make_deployment, redis_servers, {
        "team_a": [celery_executor("a_celery")], "team_b": [celery_executor("b_celery")],
    })
    pid_file, stdout = tmp_path / "worker.pid", tmp_path / "worker.out"
    # `celery stop` stops daemonized workers, which write the pid file.
    deployment.airflow("celery", "worker", "--team", "team_a", "--daemon", "--pid", str(pid_file),
                       "--stdout", str(stdout), "--stderr", str(tmp_path / "worker.err"),
                       env={"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())})
    deployment.wait_for(lambda: pid_file.exists() and "ready." in (tmp_path / "worker.err").read_text()
                        + stdout.read_text(), "the daemonized worker")
    worker = psutil.Process(int(pid_file.read_text().strip()))

    deployment.airflow("celery", "stop", "--pid", str(pid_file))

    _, alive = psutil.wait_procs([worker], timeout=60)
    assert alive == []
    port = free_port()
    # Flower uses the global [celery] configuration: point it at a team's broker.
    deployment.start("flower", "celery", "flower", "--port", str(port),
                     env={"AIRFLOW__CELERY__BROKER_URL": redis_servers["a"].url(0)})

    def flower_answers():
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    deployment.wait_for(flower_answers, "flower")
