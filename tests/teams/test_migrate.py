"""``airflow teams migrate`` on a database with history made by vanilla Airflow 2.11.2: the dry run says what
would change, --apply moves ``etl`` into team_a (``team_a:etl``) with its runs, task instances, XComs,
serialized DAG and permissions, --reverse restores the exact rows, the REST API and the UI's grid show the
old run under the new id and the team's dag-processor takes the DAG over after its last run (patch teams-migrate)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import requests

from tests.migrations.test_teams_tables import run, vanilla_airflow
from tests.test_utils.deployment import local_executors

pytestmark = pytest.mark.e2e

ETL = """
    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    with DAG("etl", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1), catchup=True):
        PythonOperator(task_id="extract", python_callable=lambda: "rows of etl")
"""
WATCHER = """
    import pendulum
    from airflow import DAG
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator

    with DAG("watcher", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        TriggerDagRunOperator(task_id="kick_etl", trigger_dag_id="etl")
"""
# Every row of every table but the audit log (which the commands themselves write to), as JSON.
TABLES = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
          "AND table_type = 'BASE TABLE' AND table_name <> 'log' ORDER BY 1")


def snapshot(deployment) -> dict[str, list[str]]:
    return {table: sorted(row for (row,) in deployment.rows(f'SELECT row_to_json(t)::jsonb::text FROM "{table}" t'))
            for (table,) in deployment.rows(TABLES)}


def dag_id_values(deployment) -> set[str]:
    columns = deployment.rows("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema "
                              "= 'public' AND (column_name = 'dag_id' OR column_name LIKE '%\\_dag\\_id' ESCAPE '\\')")
    return {value for table, column in columns
            for (value,) in deployment.rows(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')}


@pytest.fixture
def vanilla_made(make_deployment, tmp_path):
    """A single-team deployment whose database vanilla 2.11.2 made, with a backfilled run of etl; then the
    fork's teams. Vanilla's LocalExecutor starts `airflow tasks run`: vanilla's, first on the PATH."""
    vanilla = vanilla_airflow()
    deployment = make_deployment(name="vanilla-made")
    sales = deployment.dags / "sales"
    sales.mkdir()
    (sales / "etl.py").write_text(textwrap.dedent(ETL))
    deployment.write_dag(None, "watcher.py", WATCHER)
    path = deployment.env["PATH"]
    deployment.env["PATH"] = str(Path(vanilla).parent) + os.pathsep + path
    run(deployment, vanilla, "db", "migrate")
    run(deployment, vanilla, "dags", "reserialize")
    run(deployment, vanilla, "dags", "backfill", "etl", "-s", "2024-01-01", "-e", "2024-01-01")
    run(deployment, vanilla, "sync-perm", "--include-dags")
    run(deployment, vanilla, "users", "create", "--username", "admin", "--password", "admin", "--role", "Admin",
        "--email", "admin@example.invalid", "--firstname", "a", "--lastname", "b")
    deployment.env["PATH"] = path
    # the same database under the fork in multi-team mode: team_a's folder is the folder etl lives in
    deployment.env.update(AIRFLOW__CORE__MULTI_TEAM="True",
                          AIRFLOW__CORE__EXECUTOR=json.dumps(local_executors("team_a")),
                          AIRFLOW__TEAM_A___CORE__DAGS_FOLDER=str(sales))
    deployment.migrate()
    return deployment


def migrate(deployment, *arguments: str, check: bool = True):
    return deployment.airflow("teams", "migrate", *arguments, check=check)


def test_a_vanilla_made_history_moves_into_a_team_and_back_exactly(vanilla_made, tmp_path):
    deployment = vanilla_made
    before = snapshot(deployment)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"team_a": ["etl"]}))

    dry = migrate(deployment, "--plan", str(plan))

    assert "etl -> team_a:etl" in dry.stdout
    for column in ("dag_run.dag_id", "task_instance.dag_id", "xcom.dag_id", "serialized_dag.dag_id", "dag.dag_id"):
        assert f"  {column}: 1 row(s)" in dry.stdout, dry.stdout
    assert "  DAG permissions (ab_view_menu): 2" in dry.stdout  # DAG:etl and DAG Run:etl
    assert "Task 'kick_etl' of watcher triggers 'etl', now 'team_a:etl': change the id in its DAG file." in dry.stdout
    assert dry.stderr.strip().splitlines()[-1] == "1 DAG(s) would be renamed (dry run: add --apply)."
    assert snapshot(deployment) == before

    applied = migrate(deployment, "--by-folder", "--apply")  # the same DAG: etl's file is in team_a's folder

    assert applied.stderr.strip().splitlines()[-1] == "1 DAG(s) renamed in one transaction."
    assert "etl" not in dag_id_values(deployment) and "team_a:etl" in dag_id_values(deployment)
    assert deployment.rows("SELECT task_id, run_id FROM task_instance WHERE dag_id = 'team_a:etl'") == [
        ("extract", deployment.scalar("SELECT run_id FROM dag_run WHERE dag_id = 'team_a:etl'"))]
    assert deployment.scalar("SELECT convert_from(value, 'UTF8') FROM xcom WHERE dag_id = 'team_a:etl'") \
        == '"rows of etl"'
    assert deployment.scalar("SELECT data->'dag'->>'_dag_id' FROM serialized_dag WHERE dag_id = 'team_a:etl'") \
        == "team_a:etl"
    assert deployment.rows("SELECT name FROM ab_view_menu WHERE name LIKE '%etl' ORDER BY 1") == [
        ("DAG Run:team_a:etl",), ("DAG:team_a:etl",)]
    (audit,) = deployment.rows("SELECT extra FROM log WHERE event = 'teams.migrate'")
    assert json.loads(audit[0])["renames"] == {"etl": "team_a:etl"}

    migrate(deployment, "--plan", str(plan), "--reverse", "--apply")

    assert snapshot(deployment) == before

    # once more, and the old run shows under its new id in the REST API (the webserver writes rows too)
    migrate(deployment, "--plan", str(plan), "--apply")
    deployment.start_webserver(AIRFLOW__API__AUTH_BACKENDS="airflow.api.auth.backend.basic_auth")
    deployment.wait_for_webserver()
    runs = requests.get(f"{deployment.url}/api/v1/dags/team_a:etl/dagRuns", auth=("admin", "admin"), timeout=30)
    assert runs.status_code == 200, runs.text
    assert [run["state"] for run in runs.json()["dag_runs"]] == ["success"]
    grid = deployment.login("admin", "admin").get(f"{deployment.url}/object/grid_data",
                                                   params={"dag_id": "team_a:etl"})  # the UI's grid view
    assert grid.status_code == 200, grid.text
    assert [run["run_id"] for run in grid.json()["dag_runs"]] == [runs.json()["dag_runs"][0]["dag_run_id"]]

    # team_a's dag-processor takes etl over under its new id: etl catches up from 2024-01-01 and vanilla
    # backfilled that day, so its next run is 2024-01-02, not its start date again
    deployment.start("dag-processor-team_a", "dag-processor", "--team", "team_a")
    deployment.wait_for(lambda: deployment.scalar(
        "SELECT last_parsed_time > (SELECT max(dttm) FROM log WHERE event = 'teams.migrate') FROM dag "
        "WHERE dag_id = 'team_a:etl'"), "team_a's dag-processor to parse etl.py again")
    assert deployment.scalar("SELECT next_dagrun::date::text FROM dag WHERE dag_id = 'team_a:etl'") == "2024-01-02"
    assert deployment.rows("SELECT dag_id, is_active FROM dag WHERE dag_id LIKE '%etl'") == [("team_a:etl", True)]


@pytest.mark.parametrize(("arguments", "line"), [
    ((), "airflow teams migrate takes --plan FILE or --by-folder (one of them)."),
    (("--plan", "/nonexistent.json"), "Cannot read the plan /nonexistent.json: [Errno 2] No such file or directory: "
                                      "'/nonexistent.json'"),
])
def test_wrong_arguments_stop_in_one_line(make_deployment, arguments, line):
    result = migrate(make_deployment(local_executors("team_a")), *arguments, check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == line


def test_an_unknown_dag_a_taken_id_and_a_live_scheduler_are_refused(vanilla_made, tmp_path):
    deployment = vanilla_made
    before = snapshot(deployment)

    def refused(plan: dict, *extra: str) -> str:
        path = tmp_path / "plan.json"
        path.write_text(json.dumps(plan))
        result = migrate(deployment, "--plan", str(path), "--apply", *extra, check=False)
        assert result.returncode == 1, result.stdout
        return result.stderr.strip().splitlines()[-1]

    assert refused({"team_a": ["nope"]}) == ("'nope' of team 'team_a' names no DAG to move (a team-less DAG, or "
                                             "its file or folder).")
    assert refused({"team_z": ["etl"]}) == "The plan names teams that are not configured: team_z."
    deployment.rows("INSERT INTO dag (dag_id, is_paused, is_subdag, is_active, has_task_concurrency_limits, "
                    "max_active_tasks, max_consecutive_failed_dag_runs) VALUES "
                    "('team_a:watcher', false, false, true, false, 16, 0) RETURNING dag_id")
    assert refused({"team_a": ["watcher"]}) == ("These DAG ids exist already: team_a:watcher; delete them or leave "
                                                "them out.")
    deployment.rows("DELETE FROM dag WHERE dag_id = 'team_a:watcher' RETURNING dag_id")
    long = "x" * 245  # a valid id that team_a's prefix would make longer than the 250 characters of a DAG id
    deployment.rows("INSERT INTO dag (dag_id, is_paused, is_subdag, is_active, has_task_concurrency_limits, "
                    "max_active_tasks, max_consecutive_failed_dag_runs) VALUES "
                    f"('{long}', false, false, true, false, 16, 0) RETURNING dag_id")
    assert refused({"team_a": [long]}).startswith(f"DAG '{long}' cannot move into team 'team_a': ")
    deployment.rows(f"DELETE FROM dag WHERE dag_id = '{long}' RETURNING dag_id")
    assert snapshot(deployment) == before
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar(
        "SELECT count(*) FROM job WHERE job_type = 'SchedulerJob' AND state = 'running'"), "the scheduler's job")
    assert refused({"team_a": ["etl"]}).startswith("A scheduler is alive (on ")
    assert deployment.scalar("SELECT count(*) FROM dag_run WHERE dag_id = 'team_a:etl'") == 0
