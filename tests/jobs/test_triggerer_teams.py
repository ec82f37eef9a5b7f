"""`airflow triggerer --team`: each team's deferred tasks are resumed only by its own triggerer."""

from __future__ import annotations

import psutil
import pytest
import requests

from airflow.utils.jwt_signer import JWTSigner
from teams_breeze.services import free_port
from tests.test_utils.deployment import local_executors

pytestmark = pytest.mark.e2e

DEFERRING_DAG = """
    import datetime
    import pendulum
    from airflow import DAG
    from airflow.sensors.time_delta import TimeDeltaSensorAsync

    with DAG("waits", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        TimeDeltaSensorAsync(task_id="wait", delta=datetime.timedelta(seconds=15))
"""


def start_triggerer(deployment, team: str, log_server_port: int | None = None) -> int:
    known = {row[0] for row in deployment.rows("SELECT id FROM job WHERE job_type = 'TriggererJob'")}
    deployment.start(f"triggerer-{team}", "triggerer", "--team", team,
                     env={"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_server_port or free_port())})
    new = deployment.wait_for(
        lambda: {row[0] for row in deployment.rows("SELECT id FROM job WHERE job_type = 'TriggererJob'")} - known,
        f"the triggerer of {team}",
    )
    return new.pop()


def get_log(port: int, filename: str, key: str | None) -> requests.Response:
    headers = {}
    if key is not None:
        signer = JWTSigner(secret_key=key, expiration_time_in_seconds=30, audience="task-instance-logs")
        headers["Authorization"] = signer.generate_signed_token({"filename": filename})
    return requests.get(f"http://127.0.0.1:{port}/log/{filename}", headers=headers, timeout=30)


def trigger_of(deployment, dag_id: str):
    return deployment.rows(
        "SELECT t.id, t.triggerer_id FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
        "WHERE ti.dag_id = :dag_id", dag_id=dag_id,
    )


@pytest.mark.db_isolation
def test_each_team_triggerer_runs_only_its_teams_triggers(make_deployment):
    deployment = make_deployment(local_executors("team_a", "team_b"))
    deployment.write_dag("team_a", "waits.py", DEFERRING_DAG)
    deployment.write_dag("team_b", "waits.py", DEFERRING_DAG)
    deployment.migrate()
    for team in ("team_a", "team_b"):
        deployment.start(f"dag-processor-{team}", "dag-processor", "--team", team)
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 2, "DAGs")
    triggerer_b = start_triggerer(deployment, "team_b")

    deployment.airflow("dags", "trigger", "team_a:waits")
    deployment.airflow("dags", "trigger", "team_b:waits")

    assert deployment.wait_for_dag_run("team_b:waits") == "success"
    # Team B's triggerer ran B's trigger and left A's alone: A's task is still deferred, unassigned.
    deployment.wait_for(lambda: trigger_of(deployment, "team_a:waits"), "team A's trigger")
    [(_, assigned)] = trigger_of(deployment, "team_a:waits")
    assert assigned is None
    assert deployment.scalar("SELECT state FROM task_instance WHERE dag_id = 'team_a:waits'") == "deferred"
    assert "team_a:waits" not in deployment.log_of("triggerer-team_b")
    assert "team_b:waits" in deployment.log_of("triggerer-team_b")

    log_server_port = free_port()
    triggerer_a = start_triggerer(deployment, "team_a", log_server_port)

    assert deployment.wait_for_dag_run("team_a:waits") == "success"
    assert triggerer_a != triggerer_b
    assert "team_a:waits" in deployment.log_of("triggerer-team_a")
    assert "team_b:waits" not in deployment.log_of("triggerer-team_a")

    # Team A's triggerer serves its trigger logs itself, from a thread: no log-server processes beside it.
    assert psutil.Process(deployment.processes["triggerer-team_a"].pid).children() == []
    assert f"Team team_a: the triggerer serves its logs on port {log_server_port}" in deployment.log_of(
        "triggerer-team_a")
    logs = deployment.home / "logs"
    [trigger_log] = [path.relative_to(logs).as_posix() for path in logs.rglob(f"*.trigger.{triggerer_a}.log")]
    served = get_log(log_server_port, trigger_log, deployment.env["AIRFLOW__WEBSERVER__SECRET_KEY"])
    assert served.status_code == 200 and served.content == (logs / trigger_log).read_bytes() != b""
    assert get_log(log_server_port, trigger_log, key=None).status_code == 403
    assert get_log(log_server_port, trigger_log, key="not-the-key").status_code == 403


def test_triggerer_needs_a_known_team_in_multi_team_mode(make_deployment):
    deployment = make_deployment(local_executors("team_a"))
    deployment.migrate()

    without = deployment.airflow("triggerer", check=False, timeout=60)
    unknown = deployment.airflow("triggerer", "--team", "team_x", check=False, timeout=60)

    assert without.returncode != 0 and "airflow triggerer --team <team>" in without.stderr
    assert unknown.returncode != 0 and "Unknown team 'team_x'" in unknown.stderr


def test_triggerer_team_is_refused_without_multi_team(make_deployment):
    deployment = make_deployment()
    deployment.migrate()

    result = deployment.airflow("triggerer", "--team", "team_a", check=False, timeout=60)

    assert result.returncode != 0 and "--team needs [core] multi_team = True" in result.stderr
