"""A team's dag-processor deletes the DAG code of its own deleted files only, also when another team's folder
name starts with its own (patch teams-dag-processor), in process, on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from airflow.models.dagcode import DagCode
from airflow.utils.session import create_session

pytestmark = pytest.mark.db_test

# "sales" is a string prefix of "sales_eu": a substring match on the folder would take both.
TEAMS = {"sales": [{"name": "s", "class": "LocalExecutor"}], "sales_eu": [{"name": "e", "class": "LocalExecutor"}]}


def test_deleted_code_of_one_team_folder_leaves_the_other_teams_code(multi_team):
    dags = multi_team(TEAMS)
    files = {name: str(dags / name / "gone.py") for name in ("sales", "sales_eu")}
    with create_session() as session:
        session.execute(text("DELETE FROM dag_code"))
        session.add_all(DagCode(path, source_code="# code") for path in files.values())

    with create_session() as session:
        DagCode.remove_deleted_code([], processor_subdir=str(dags / "sales"), session=session)
    with create_session() as session:
        left = session.scalars(select(DagCode.fileloc)).all()

    assert left == [files["sales_eu"]]
