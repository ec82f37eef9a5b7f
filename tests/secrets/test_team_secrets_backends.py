"""Each team's tasks read Connections and Variables from that team's own backends only (patch teams-secrets).

Real scheduler, one real Celery worker and dag-processor per team, each given only its own team's
secrets configuration: a LocalFilesystemBackend per team plus AIRFLOW_CONN_*/AIRFLOW_VAR_* variables,
with the same ids holding different values in the two teams.
"""

from __future__ import annotations

import json

import pytest

from tests.test_utils.celery import celery_executor, start_worker, use_team_redis

pytestmark = pytest.mark.e2e

READING_DAG = """
    import json
    import pathlib
    import pendulum
    from airflow import DAG
    from airflow.hooks.base import BaseHook
    from airflow.models import Variable
    from airflow.operators.bash import BashOperator
    from airflow.operators.python import PythonOperator

    MARKERS = pathlib.Path({markers!r})

    def read(dag):
        try:
            Variable.set("written_by_task", "x")
            write = "stored"
        except Exception as err:
            write = f"{{type(err).__name__}}: {{err}}"
        seen = {{
            "var_file": Variable.get("var_y"),
            "conn_file": BaseHook.get_connection("conn_x").host,
            "var_env": Variable.get("var_env"),
            "conn_env": BaseHook.get_connection("conn_env").host,
            "db_only": Variable.get("db_only", default_var="MISSING"),
            "write": write,
        }}
        (MARKERS / dag.dag_id.replace(":", "-")).write_text(json.dumps(seen))

    with DAG("reads", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        PythonOperator(task_id="read", python_callable=read)
        BashOperator(task_id="templated", bash_command=(
            "echo '{{{{ var.value.var_y }}}} {{{{ conn.conn_x.host }}}}' > "
            + str(MARKERS / "{{{{ dag.dag_id | replace(':', '-') }}}}.templated")
        ))
"""


def team_secrets(tmp_path, team: str, suffix: str) -> dict[str, str]:
    """Only this team's process gets this: its filesystem backend and its environment variables."""
    folder = tmp_path / f"secrets-{team}"
    folder.mkdir()
    (folder / "variables.json").write_text(json.dumps({"var_y": f"var-from-{suffix}-file"}))
    (folder / "connections.json").write_text(json.dumps({"conn_x": f"http://{suffix}-file-host"}))
    prefix = f"AIRFLOW__{team.upper()}___SECRETS__"
    return {
        f"{prefix}BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
        f"{prefix}BACKEND_KWARGS": json.dumps({
            "variables_file_path": str(folder / "variables.json"),
            "connections_file_path": str(folder / "connections.json"),
        }),
        "AIRFLOW_VAR_VAR_ENV": f"var-from-{suffix}-env",
        "AIRFLOW_CONN_CONN_ENV": f"http://{suffix}-env-host",
    }


@pytest.mark.db_isolation
def test_each_team_reads_its_own_connections_and_variables_and_never_the_database(
    make_deployment, redis_servers, tmp_path
):
    markers = tmp_path / "markers"
    markers.mkdir()
    deployment = make_deployment({"team_a": [celery_executor("a_celery")], "team_b": [celery_executor("b_celery")]},
                                 celery__worker_prefetch_multiplier="1")
    use_team_redis(deployment, "team_a", redis_servers["a"])
    use_team_redis(deployment, "team_b", redis_servers["b"])
    for team in ("team_a", "team_b"):
        deployment.write_dag(team, "reads.py", READING_DAG.format(markers=str(markers)))
    deployment.migrate()
    with deployment._engine.begin() as connection:  # a value only the metadata DB holds
        connection.exec_driver_sql("INSERT INTO variable (key, val, is_encrypted) VALUES ('db_only', 'db', false)")
    secrets = {"team_a": team_secrets(tmp_path, "team_a", "a"), "team_b": team_secrets(tmp_path, "team_b", "b")}
    for team in ("team_a", "team_b"):
        start_worker(deployment, f"worker_{team}", team, env=secrets[team])
        deployment.start(f"dag-processor-{team}", "dag-processor", "--team", team, env=secrets[team])
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 2, "DAGs")

    for team in ("team_a", "team_b"):
        deployment.airflow("dags", "trigger", f"{team}:reads")

    assert deployment.wait_for_dag_run("team_a:reads") == "success"
    assert deployment.wait_for_dag_run("team_b:reads") == "success"
    for team, suffix in (("team_a", "a"), ("team_b", "b")):
        seen = json.loads((markers / f"{team}-reads").read_text())
        assert seen["var_file"] == f"var-from-{suffix}-file"
        assert seen["conn_file"] == f"{suffix}-file-host"
        assert seen["var_env"] == f"var-from-{suffix}-env"
        assert seen["conn_env"] == f"{suffix}-env-host"
        assert seen["db_only"] == "MISSING"
        assert seen["write"].startswith("MetastoreSecretsDisabledError: Cannot store Variable 'written_by_task'")
        templated = (markers / f"{team}-reads.templated").read_text().strip()
        assert templated == f"var-from-{suffix}-file {suffix}-file-host"
    assert deployment.rows("SELECT key FROM variable") == [("db_only",)]
    assert deployment.scalar("SELECT count(*) FROM connection") == 0
