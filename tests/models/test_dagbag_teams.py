"""DagBag enforcement in multi-team mode (patch teams-dag-parsing), in process, on real files."""

from __future__ import annotations

import textwrap

import pytest

from airflow.models.dagbag import DagBag
from airflow.teams import process_team

TEAMS = {"team_a": [{"name": "a", "class": "LocalExecutor"}], "team_b": [{"name": "b", "class": "LocalExecutor"}]}

DAG_FILE = """
import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sensors.external_task import ExternalTaskMarker, ExternalTaskSensor

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
    EmptyOperator(task_id="noop")
    TriggerDagRunOperator(task_id="trigger", trigger_dag_id="downstream")
    TriggerDagRunOperator(task_id="trigger_templated", trigger_dag_id="{{{{ params.target }}}}")
    TriggerDagRunOperator(task_id="trigger_prefixed", trigger_dag_id="team_a:explicit")
    ExternalTaskSensor(task_id="wait", external_dag_id="upstream", external_task_id="t")
    ExternalTaskMarker(task_id="mark", external_dag_id="dependent", external_task_id="t")
"""


def write(path, source):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def dags(multi_team):
    return multi_team(TEAMS)


def test_dags_get_the_team_of_their_folder_and_task_references_mean_the_same_team(dags):
    write(dags / "team_a" / "etl.py", DAG_FILE.format(dag_id="etl"))
    write(dags / "team_b" / "etl.py", DAG_FILE.format(dag_id="etl").replace("team_a:explicit", "team_b:explicit"))

    bag = DagBag(str(dags), include_examples=False)

    assert set(bag.dags) == {"team_a:etl", "team_b:etl"}
    assert bag.import_errors == {}
    dag = bag.dags["team_a:etl"]
    assert dag.get_task("trigger").trigger_dag_id == "team_a:downstream"
    assert dag.get_task("trigger_templated").trigger_dag_id == "{{ params.target }}"
    assert dag.get_task("trigger_prefixed").trigger_dag_id == "team_a:explicit"
    assert dag.get_task("wait").external_dag_id == "team_a:upstream"
    assert dag.get_task("mark").external_dag_id == "team_a:dependent"
    assert bag.dags["team_b:etl"].get_task("trigger").trigger_dag_id == "team_b:downstream"


def test_a_file_claiming_another_team_is_an_import_error_and_defines_nothing(dags):
    bad = write(dags / "team_a" / "bad.py", DAG_FILE.format(dag_id="team_b:etl"))

    bag = DagBag(str(dags), include_examples=False)

    assert bag.dags == {}
    assert "DAG id 'team_b:etl' claims team 'team_b', but this file belongs to team 'team_a'" in bag.import_errors[str(bad)]


def test_a_dag_object_imported_from_another_teams_module_is_refused(dags, monkeypatch, tmp_path):
    # A library module (outside the DAG folders) that defines a DAG when first imported.
    write(tmp_path / "lib" / "shared_lib.py", DAG_FILE.format(dag_id="shared"))
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    monkeypatch.delitem(__import__("sys").modules, "shared_lib", raising=False)
    write(dags / "team_a" / "uses_lib.py", "# airflow DAG\nfrom shared_lib import dag\n")
    importer = write(dags / "team_b" / "uses_lib.py", "# airflow DAG\nfrom shared_lib import dag\n")

    bag = DagBag(str(dags / "team_a"), include_examples=False)
    bag.collect_dags(str(dags / "team_b"), include_examples=False)

    assert set(bag.dags) == {"team_a:shared"}
    assert "DAG 'team_a:shared' belongs to team 'team_a' but was found in" in bag.import_errors[str(importer)]
    assert "a file of team 'team_b'" in bag.import_errors[str(importer)]


def test_a_file_outside_every_team_folder_is_refused(dags):
    stray = write(dags / "stray.py", DAG_FILE.format(dag_id="stray"))

    bag = DagBag(str(dags), include_examples=False)

    assert bag.dags == {}
    assert "is not in the DAG folder of any team" in bag.import_errors[str(stray)]


def test_a_process_serving_a_team_skips_other_teams_files(dags, monkeypatch):
    write(dags / "team_a" / "etl.py", DAG_FILE.format(dag_id="etl"))
    write(dags / "team_b" / "etl.py", DAG_FILE.format(dag_id="etl"))
    process_team.serve("team_b")

    bag = DagBag(str(dags), include_examples=False)

    assert set(bag.dags) == {"team_b:etl"}
    assert bag.import_errors == {}


def test_example_dags_are_not_loaded_in_multi_team_mode(dags):
    assert DagBag(str(dags), include_examples=True).dags == {}


def test_without_multi_team_the_same_files_parse_exactly_as_upstream(tmp_path):
    write(tmp_path / "team_a" / "etl.py", DAG_FILE.format(dag_id="etl"))
    bad = write(tmp_path / "team_a" / "bad.py", DAG_FILE.format(dag_id="team_b:etl"))

    bag = DagBag(str(tmp_path), include_examples=False)

    assert set(bag.dags) == {"etl"}
    assert bag.dags["etl"].get_task("trigger").trigger_dag_id == "downstream"
    assert "has to be made of alphanumeric characters" in bag.import_errors[str(bad)]


def test_a_bad_allow_triggering_by_teams_pattern_is_an_import_error(dags):
    bad = write(dags / "team_a" / "bad_allow.py", """
import pendulum
from airflow import DAG

DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1), allow_triggering_by_teams=["team b"])
""")
    good = write(dags / "team_a" / "good_allow.py", """
import pendulum
from airflow import DAG

dag = DAG("etl2", schedule=None, start_date=pendulum.datetime(2024, 1, 1), allow_triggering_by_teams=["team_*"])
""")

    bag = DagBag(str(dags), include_examples=False)

    assert "allow_triggering_by_teams: 'team b' is not a team name pattern" in bag.import_errors[str(bad)]
    assert str(good) not in bag.import_errors
    assert bag.dags["team_a:etl2"].allow_triggering_by_teams == ["team_*"]
