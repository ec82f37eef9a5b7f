"""The team rule on the rows a DAG file's parse writes (patch teams-dag-parsing), in process, on SQLite."""

from __future__ import annotations

import textwrap

import pytest
from sqlalchemy import text

from airflow.models.dagbag import DagBag
from airflow.models.serialized_dag import SerializedDagModel
from airflow.teams import process_team
from airflow.utils.session import create_session
from tests.test_utils.team_attacks import ID_MUTATING_DAG, ID_PROPERTY_DAG

pytestmark = pytest.mark.db_test

TEAMS = {"team_a": [{"name": "a", "class": "LocalExecutor"}], "team_b": [{"name": "b", "class": "LocalExecutor"}]}

SIMPLE_DAG = """
import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG({name!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=["plain"]):
    EmptyOperator(task_id="noop")
"""


def empty_dag_tables():
    with create_session() as session:
        for table in ("teams_dag_triggering", "dag_warning", "import_error", "dag_tag", "dag_owner_attributes",
                      "serialized_dag", "dag_code", "dag"):
            session.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def dags(multi_team):
    folder = multi_team(TEAMS)
    empty_dag_tables()  # the tests compare whole tables
    yield folder
    empty_dag_tables()


def parse_and_write(path) -> DagBag:
    """What a dag-processor does with one file: parse it, then write its DAGs."""
    bag = DagBag(str(path), include_examples=False)
    bag.sync_to_db()
    return bag


def write(path, source):
    path.write_text(textwrap.dedent(source))
    return path


def rows(sql: str) -> list[tuple]:
    with create_session() as session:
        return [tuple(row) for row in session.execute(text(sql))]


TEAM_B_ROWS = {table: f"SELECT * FROM {table} WHERE dag_id LIKE 'team_b:%' ORDER BY 1, 2"
               for table in ("dag", "serialized_dag", "dag_tag", "dag_owner_attributes")}


@pytest.mark.parametrize(
    ("attack", "target"),
    [(ID_PROPERTY_DAG, "team_b:injected_by_a"), (ID_MUTATING_DAG, "team_b:etl")],
    ids=["dag_id property", "id mutated after bagging"],
)
def test_a_dag_that_writes_another_teams_id_writes_nothing_of_it(dags, attack, target, caplog):
    parse_and_write(write(dags / "team_b" / "etl.py", SIMPLE_DAG.format(name="etl")))
    team_b_rows = {table: rows(query) for table, query in TEAM_B_ROWS.items()}
    honest = parse_and_write(write(dags / "team_a" / "etl.py", SIMPLE_DAG.format(name="etl")))
    sneaky = write(dags / "team_a" / "sneaky.py", attack.format(name="sneaky", target=target))

    bag = parse_and_write(sneaky)

    assert honest.import_errors == {}
    assert "team_a:sneaky" in bag.dags  # the DagBag's own check passed: the id looked like team_a's
    assert {table: rows(query) for table, query in TEAM_B_ROWS.items()} == team_b_rows
    assert {dag_id for (dag_id,) in rows("SELECT dag_id FROM dag")} == {"team_a:etl", "team_b:etl"}
    assert bag.import_errors[str(sneaky)].startswith("Not written: ")
    assert repr(target) in bag.import_errors[str(sneaky)]
    assert "a team's DAG files may only write that team's DAGs" in bag.import_errors[str(sneaky)]
    assert "Not written: " in caplog.text


def test_a_dag_that_shadows_another_teams_dag_leaves_it_alone(dags):
    parse_and_write(write(dags / "team_b" / "etl.py", SIMPLE_DAG.format(name="etl")))
    before = rows("SELECT dag_id, fileloc, dag_hash FROM serialized_dag")
    shadow = write(dags / "team_a" / "shadow.py", ID_PROPERTY_DAG.format(name="shadow", target="team_b:etl"))

    bag = parse_and_write(shadow)

    assert rows("SELECT dag_id, fileloc, dag_hash FROM serialized_dag") == before
    assert rows("SELECT dag_id, fileloc FROM dag") == [("team_b:etl", str(dags / "team_b" / "etl.py"))]
    assert rows("SELECT dag_id, name FROM dag_tag") == [("team_b:etl", "plain")]
    assert rows("SELECT dag_id FROM teams_dag_triggering") == []  # team_b:etl allows no other team
    assert "'team_b:etl'" in bag.import_errors[str(shadow)]


def test_a_process_serving_a_team_writes_only_that_teams_import_errors_and_warnings(dags, monkeypatch, caplog):
    from airflow.dag_processing.processor import DagFileProcessor
    from airflow.models.dagwarning import DagWarning

    own = str(write(dags / "team_a" / "x.py", SIMPLE_DAG.format(name="x")))
    foreign = str(write(dags / "team_b" / "x.py", SIMPLE_DAG.format(name="x")))
    parse_and_write(own)
    parse_and_write(foreign)
    process_team.serve("team_a")

    DagFileProcessor.update_import_errors(
        file_last_changed={}, import_errors={own: "own error", foreign: "forged error"}, processor_subdir=None
    )
    DagFileProcessor._validate_task_pools_and_update_dag_warnings(
        {"team_a:x": {"no_such_pool"}, "team_b:x": {"no_such_pool"}}, {"team_a:x", "team_b:x"}
    )

    assert rows("SELECT filename, stacktrace FROM import_error") == [(own, "own error")]
    with create_session() as session:
        assert [w.dag_id for w in session.query(DagWarning)] == ["team_a:x"]
    assert f"Not updating the import errors of {foreign}: it is not a file below the DAG folders of team 'team_a'" in caplog.text
    assert "Not updating the warnings of DAG 'team_b:x'" in caplog.text


def test_a_serialized_dag_whose_file_is_another_teams_is_not_loaded(dags, caplog):
    parse_and_write(write(dags / "team_a" / "etl.py", SIMPLE_DAG.format(name="etl")))
    assert DagBag(read_dags_from_db=True).get_dag("team_a:etl") is not None
    # As if written with the database credentials directly: team_a's DAG, from team_b's folder.
    with create_session() as session:
        session.execute(text("UPDATE serialized_dag SET fileloc = :f"), {"f": str(dags / "team_b" / "etl.py")})

    assert DagBag(read_dags_from_db=True).get_dag("team_a:etl") is None
    assert SerializedDagModel.get("team_a:etl") is not None
    assert "Not loading DAG 'team_a:etl'" in caplog.text
    assert "not in the DAG folders of team 'team_a'" in caplog.text
