"""
The fork's own tables (airflow/teams/tables.py) on PostgreSQL: their migration chain, and that with
multi_team off the fork's database is vanilla 2.11.2's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_utils.deployment import AIRFLOW, local_executors

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_HEAD = "5f2621c13b39"  # upstream 2.11.2's newest migration
TEAMS_HEAD = "5e0a7c3b9d14"  # teams_dag_consumers, teams_dataset_event_consumer (teams-dataset-producer-consent)
SCHEMA_QUERIES = (
    "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default "
    "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "SELECT table_name, constraint_name, constraint_type FROM information_schema.table_constraints "
    "WHERE table_schema = 'public' ORDER BY 1, 2",
    "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "SELECT version_num FROM alembic_version",
)
FORK_TABLES = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
               "AND (table_name LIKE 'teams\\_%' OR table_name = 'alembic_version_teams') ORDER BY 1")
HELLO_DAG = """
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    with DAG("hello", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        BashOperator(task_id="hello", bash_command="echo hello")
"""


def vanilla_airflow() -> str:
    """Vanilla 2.11.2 from PyPI (.build/vanilla-venv, shared with the benchmarks; created if missing)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import import_time as vanilla

    fork = vanilla.read_fork()
    vanilla.ensure_vanilla(fork, vanilla.require_fork_venv(fork), vanilla.find_uv(), rebuild=False)
    return str(vanilla.VANILLA_VENV / "bin" / "airflow")


def run(deployment, *command: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=deployment.env, cwd=deployment.home, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stderr[-4000:]}"
    return result


def schema(deployment) -> list[list[tuple]]:
    return [deployment.rows(query) for query in SCHEMA_QUERIES]


def test_without_multi_team_the_database_is_vanilla_and_vanilla_runs_on_it(make_deployment):
    vanilla = vanilla_airflow()
    by_vanilla, by_fork = make_deployment(name="by-vanilla"), make_deployment(name="by-fork")

    run(by_vanilla, vanilla, "db", "migrate")
    by_fork.migrate()

    assert by_fork.rows("SELECT version_num FROM alembic_version") == [(UPSTREAM_HEAD,)]
    assert by_fork.rows(FORK_TABLES) == []
    fork_schema, vanilla_schema = schema(by_fork), schema(by_vanilla)
    assert len(fork_schema[0]) > 300  # the queries see the whole schema
    assert fork_schema == vanilla_schema

    by_fork.write_dag(None, "hello.py", HELLO_DAG)
    run(by_fork, vanilla, "dags", "test", "hello")
    assert by_fork.rows("SELECT state FROM dag_run WHERE dag_id = 'hello'") == [("success",)]
    assert run(by_fork, vanilla, "db", "check-migrations", "-t", "10").returncode == 0


def test_the_fork_tables_have_their_own_migration_chain(make_deployment):
    deployment = make_deployment(local_executors("team_a"))
    python = str(Path(AIRFLOW).parent / "python")

    deployment.migrate()
    core_version = deployment.rows("SELECT version_num FROM alembic_version")
    teams_version = deployment.rows("SELECT version_num FROM alembic_version_teams")
    tables_after_upgrade = deployment.rows(FORK_TABLES)
    with deployment._engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO dag (dag_id, is_paused, is_subdag, is_active, has_task_concurrency_limits, "
            "max_active_tasks, max_consecutive_failed_dag_runs) VALUES "
            "('team_a:kept', false, false, true, false, 16, 0), ('team_a:gone', false, false, true, false, 16, 0)")
        connection.exec_driver_sql("INSERT INTO teams_dag_triggering VALUES ('team_a:kept', '[\"team_b\"]'), "
                                   "('team_a:gone', '[\"*\"]')")
    deployment.airflow("dags", "delete", "team_a:gone", "--yes")
    allow_lists = deployment.rows("SELECT dag_id, allow_triggering_by_teams::text FROM teams_dag_triggering")
    run(deployment, python, "-c", "from airflow.teams import tables; tables.downgrade()")
    tables_after_downgrade = deployment.rows(FORK_TABLES)
    kept = deployment.rows("SELECT dag_id FROM dag")
    deployment.team_folder("team_a")
    refused = [deployment.airflow(*command, check=False) for command in
               (("scheduler", "--num-runs", "1"), ("dag-processor", "--team", "team_a", "--num-runs", "1"))]
    deployment.migrate()

    assert core_version == [(UPSTREAM_HEAD,)]
    assert teams_version == [(TEAMS_HEAD,)]
    assert tables_after_upgrade == [("alembic_version_teams",), ("teams_dag_consumers",), ("teams_dag_triggering",),
                                    ("teams_dataset_event_consumer",), ("teams_dataset_event_source",), ("teams_job",)]
    assert allow_lists == [("team_a:kept", '["team_b"]')]  # deleting a DAG deletes its row (ON DELETE CASCADE)
    assert tables_after_downgrade == [("alembic_version_teams",)]
    assert kept == [("team_a:kept",)]
    for result in refused:  # components do not start without the fork's tables
        assert result.returncode != 0
        assert "The multi-team fork's tables are not migrated (alembic_version_teams: none" in result.stderr
        assert "run `airflow db migrate` with [core] multi_team = True." in result.stderr
        assert "Traceback" not in result.stderr
    assert deployment.rows(FORK_TABLES) == tables_after_upgrade
    assert deployment.rows("SELECT version_num FROM alembic_version") == [(UPSTREAM_HEAD,)]

    deployment.airflow("db", "reset", "--yes")
    assert deployment.rows(FORK_TABLES) == tables_after_upgrade
    assert deployment.rows("SELECT count(*) FROM dag") == [(0,)]


def test_the_events_recorded_before_producers_consented_reach_their_producing_teams_only(make_deployment):
    """Migration 0003 records, for each existing dataset event, the teams it may reach: its recorded producing
    teams, else its producing DAG's team, else any team ('*')."""
    deployment = make_deployment(local_executors("team_a", "team_b"))
    python = str(Path(AIRFLOW).parent / "python")
    deployment.airflow("db", "migrate")
    run(deployment, python, "-c", "from airflow.teams import tables; tables.downgrade('2b8d4f6a1c93')")
    with deployment._engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO dataset (uri, extra, created_at, updated_at, is_orphaned) "
                                   "VALUES ('s3://old', '{}', now(), now(), false)")
        connection.exec_driver_sql(
            "INSERT INTO dataset_event (id, dataset_id, extra, source_dag_id, timestamp) SELECT v.id, d.id, '{}', "
            "v.source, now() FROM dataset d, (VALUES (1, 'team_a:produce'), (2, NULL), (3, NULL), (4, 'legacy')) "
            "AS v(id, source)")
        connection.exec_driver_sql("INSERT INTO teams_dataset_event_source VALUES (2, '[\"team_b\"]'), (3, '[]')")
        # more events than the migration reads at a time (BACKFILL_BATCH, 5000), with gaps in their ids
        connection.exec_driver_sql(
            "INSERT INTO dataset_event (id, dataset_id, extra, source_dag_id, timestamp) SELECT 10 + 2 * n, d.id, "
            "'{}', 'team_b:produce', now() FROM dataset d, generate_series(1, 12000) AS n")

    deployment.migrate()

    assert deployment.rows("SELECT version_num FROM alembic_version_teams") == [(TEAMS_HEAD,)]
    assert deployment.rows(
        "SELECT dataset_event_id, team FROM teams_dataset_event_consumer WHERE dataset_event_id < 10 ORDER BY 1, 2"
    ) == [(1, "team_a"), (2, "team_b"), (3, "*"), (4, "*")]
    assert deployment.rows("SELECT count(*), count(DISTINCT dataset_event_id) FROM teams_dataset_event_consumer "
                           "WHERE dataset_event_id > 10 AND team = 'team_b'") == [(12000, 12000)]
