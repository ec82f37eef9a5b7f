"""A team's dag-processor cleans up after its own deleted files only (patches teams-dag-parsing,
teams-dag-processor): also when another team's folder name starts with its own, and for rows written
without a processor_subdir (`airflow dags reserialize`). In process, on SQLite."""

from __future__ import annotations

import pendulum
import pytest
from sqlalchemy import select, text

from airflow.dag_processing.processor import DagFileProcessor
from airflow.models.dag import DAG, DagModel
from airflow.models.dagcode import DagCode
from airflow.models.errors import ParseImportError
from airflow.models.serialized_dag import SerializedDagModel
from airflow.teams import process_team
from airflow.utils.session import create_session

pytestmark = pytest.mark.db_test

# "sales" is a string prefix of "sales_eu": a substring or prefix match on the folder would take both.
TEAMS = {"sales": [{"name": "s", "class": "LocalExecutor"}], "sales_eu": [{"name": "e", "class": "LocalExecutor"}]}
TABLES = ("import_error", "serialized_dag", "dag_code", "dag")


@pytest.fixture
def dags(multi_team):
    folder = multi_team(TEAMS)
    empty(TABLES)
    yield folder
    empty(TABLES)


def empty(tables):
    with create_session() as session:
        for table in tables:
            session.execute(text(f"DELETE FROM {table}"))


def gone_files(dags) -> dict[str, str]:
    """A deleted file of each team."""
    return {name: str(dags / name / "gone.py") for name in TEAMS}


def test_deleted_code_of_one_team_folder_leaves_the_other_teams_code(dags):
    files = gone_files(dags)
    with create_session() as session:
        session.add_all(DagCode(path, source_code="# code") for path in files.values())

    with create_session() as session:
        DagCode.remove_deleted_code([], processor_subdir=str(dags / "sales"), session=session)
    with create_session() as session:
        left = session.scalars(select(DagCode.fileloc)).all()

    assert left == [files["sales_eu"]]


def add_dags_without_processor_subdir(files: dict[str, str]) -> None:
    """DAG rows (by dag_id: its file) as `airflow dags reserialize` writes them: no processor_subdir."""
    with create_session() as session:
        for dag_id, path in files.items():
            dag = DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1))
            dag.fileloc = path
            session.add(DagModel(dag_id=dag.dag_id, fileloc=path, is_active=True, processor_subdir=None))
            serialized = SerializedDagModel(dag)
            serialized.processor_subdir = None
            session.add(serialized)


def test_rows_without_a_processor_subdir_are_cleaned_up_only_by_their_team(dags):
    files = gone_files(dags)
    add_dags_without_processor_subdir({f"{team}:gone": path for team, path in files.items()})

    with create_session() as session:
        SerializedDagModel.remove_deleted_dags([], processor_subdir=str(dags / "sales"), session=session)
        DagModel.deactivate_deleted_dags(set(), processor_subdir=str(dags / "sales"), session=session)
    with create_session() as session:
        serialized = session.scalars(select(SerializedDagModel.dag_id)).all()
        active = dict(session.execute(select(DagModel.dag_id, DagModel.is_active)).all())

    assert serialized == ["sales_eu:gone"]
    assert active == {"sales:gone": False, "sales_eu:gone": True}


def test_without_multi_team_rows_without_a_processor_subdir_are_any_processors_as_upstream(tmp_path):
    files = {"a_gone": str(tmp_path / "a" / "gone.py"), "b_gone": str(tmp_path / "b" / "gone.py")}
    empty(TABLES)
    try:
        add_dags_without_processor_subdir(files)
        with create_session() as session:
            SerializedDagModel.remove_deleted_dags([], processor_subdir=str(tmp_path / "a"), session=session)
            DagModel.deactivate_deleted_dags(set(), processor_subdir=str(tmp_path / "a"), session=session)
        with create_session() as session:
            assert session.scalars(select(SerializedDagModel.dag_id)).all() == []
            assert set(session.scalars(select(DagModel.dag_id).where(DagModel.is_active)).all()) == set()
    finally:
        empty(TABLES)


def test_clearing_import_errors_by_a_teams_folder_leaves_the_other_teams_errors(dags, monkeypatch, caplog):
    files = gone_files(dags)
    with create_session() as session:
        session.add_all(ParseImportError(filename=path, stacktrace="error") for path in files.values())
    process_team.serve("sales")

    DagFileProcessor.update_import_errors(
        file_last_changed={str(dags / "sales"): None, files["sales"]: None}, import_errors={},
        processor_subdir=str(dags / "sales"),
    )

    with create_session() as session:
        assert session.scalars(select(ParseImportError.filename)).all() == [files["sales_eu"]]
    assert (f"Not updating the import errors of {dags / 'sales'}: it is not a file below the DAG folders of team "
            "'sales'") in caplog.text
