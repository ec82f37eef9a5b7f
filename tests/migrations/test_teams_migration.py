"""The multi-team migration 3d7e81a4c5b0 on PostgreSQL: upgrade, downgrade and upgrade again."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

COLUMNS = "SELECT table_name, column_name FROM information_schema.columns " \
          "WHERE column_name IN ('allow_triggering_by_teams', 'source_teams') ORDER BY 1"


def test_migrate_and_downgrade(make_deployment):
    deployment = make_deployment()

    deployment.migrate()
    heads = deployment.rows("SELECT version_num FROM alembic_version")
    columns_after_upgrade = deployment.rows(COLUMNS)
    with deployment._engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO dag (dag_id, is_paused, is_subdag, is_active, has_task_concurrency_limits, "
            "max_active_tasks, max_consecutive_failed_dag_runs, allow_triggering_by_teams) "
            "VALUES ('team_a:kept', false, false, true, false, 16, 0, '[\"team_b\"]')"
        )
    deployment.airflow("db", "downgrade", "--to-revision", "5f2621c13b39", "--yes")
    columns_after_downgrade = deployment.rows(COLUMNS)
    kept = deployment.rows("SELECT dag_id FROM dag")
    deployment.migrate()

    assert heads == [("3d7e81a4c5b0",)]
    assert columns_after_upgrade == [("dag", "allow_triggering_by_teams"), ("dataset_event", "source_teams")]
    assert columns_after_downgrade == []
    assert kept == [("team_a:kept",)]
    assert deployment.rows(COLUMNS) == columns_after_upgrade
    assert deployment.rows("SELECT dag_id, allow_triggering_by_teams FROM dag") == [("team_a:kept", None)]
    assert deployment.airflow("db", "check-migrations", "-t", "10").returncode == 0
