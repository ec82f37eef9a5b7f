"""Two real ``airflow dag-processor --team`` processes on their teams' folders, a real scheduler, PostgreSQL."""

from __future__ import annotations

import pytest

from tests.test_utils.deployment import local_executors
from tests.test_utils.team_attacks import ID_MUTATING_DAG, ID_PROPERTY_DAG

pytestmark = pytest.mark.e2e

# A DAG whose only task fails; its DAG-level failure callback runs in a dag-processor and records
# which processor ran it (PROCESSOR is set per dag-processor process).
FAILING_DAG_WITH_CALLBACK = """
    import os
    import pathlib
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    def record(context):
        marker = pathlib.Path({markers!r}) / context["dag"].dag_id.replace(":", "-")
        marker.write_text(os.environ["PROCESSOR"])

    with DAG("{name}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), on_failure_callback=record):
        BashOperator(task_id="fail", bash_command="exit 1")
"""

SIMPLE_DAG = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="noop")
"""


def active_dags(deployment) -> dict[str, str]:
    return dict(deployment.rows("SELECT dag_id, processor_subdir FROM dag WHERE is_active"))


@pytest.mark.db_isolation
def test_each_team_processor_parses_writes_deactivates_and_calls_back_only_for_its_team(make_deployment, tmp_path):
    deployment = make_deployment(local_executors("team_a", "team_b"))
    markers = tmp_path / "callbacks"
    markers.mkdir()
    deployment.write_dag("team_a", "etl.py", SIMPLE_DAG.format(dag_id="etl"))
    deployment.write_dag("team_a", "fails.py", FAILING_DAG_WITH_CALLBACK.format(markers=str(markers), name="fails"))
    deployment.write_dag("team_a", "claims_b.py", SIMPLE_DAG.format(dag_id="team_b:x"))
    # team_a's files whose DAG ids become team_b's once the DagBag has checked them.
    deployment.write_dag("team_a", "sneaky.py", ID_PROPERTY_DAG.format(name="sneaky", target="team_b:injected"))
    deployment.write_dag("team_a", "mutating.py", ID_MUTATING_DAG.format(name="mutating", target="team_b:etl"))
    deployment.write_dag("team_b", "etl.py", SIMPLE_DAG.format(dag_id="etl"))
    deployment.write_dag("team_b", "fails.py", FAILING_DAG_WITH_CALLBACK.format(markers=str(markers), name="fails"))
    deployment.migrate()
    folder_a, folder_b = str(deployment.team_folder("team_a")), str(deployment.team_folder("team_b"))

    deployment.start("dag-processor-a", "dag-processor", "--team", "team_a", env={"PROCESSOR": "team_a"})
    deployment.start("dag-processor-b", "dag-processor", "--team", "team_b", env={"PROCESSOR": "team_b"})
    # Isolated, the internal API gets the DAGs as the dag-processor serialized them, right after the DagBag's
    # check: ids that change later arrive as the checked team_a ids, and are written as team_a's own DAGs.
    late_changers = ("sneaky", "mutating")
    expected = {"team_a:etl": folder_a, "team_a:fails": folder_a, "team_b:etl": folder_b, "team_b:fails": folder_b}
    if deployment.isolated:
        expected |= {f"team_a:{name}": folder_a for name in late_changers}
    errored = ("claims_b",) if deployment.isolated else ("claims_b", *late_changers)
    deployment.wait_for(lambda: len(active_dags(deployment)) == len(expected), "both teams' DAGs")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM import_error") == len(errored),
                        "the import errors")

    assert active_dags(deployment) == expected
    # The files of team A that declare team B's DAGs are A's import errors; B gets nothing from them.
    errors = {filename: (subdir, stacktrace) for filename, subdir, stacktrace in
              deployment.rows("SELECT filename, processor_subdir, stacktrace FROM import_error")}
    assert set(errors) == {f"{folder_a}/{name}.py" for name in errored}
    assert {subdir for subdir, _ in errors.values()} == {folder_a}
    assert "claims team 'team_b', but this file belongs to team 'team_a'" in errors[f"{folder_a}/claims_b.py"][1]
    if not deployment.isolated:
        assert "Not written: " in errors[f"{folder_a}/sneaky.py"][1]
        assert "'team_b:injected'" in errors[f"{folder_a}/sneaky.py"][1]
        assert "'team_b:etl'" in errors[f"{folder_a}/mutating.py"][1]
    for table in ("dag", "serialized_dag", "dag_tag", "dag_owner_attributes"):
        assert deployment.rows(f"SELECT dag_id FROM {table} WHERE dag_id NOT LIKE 'team_a:%' "
                               "AND dag_id NOT IN ('team_b:etl', 'team_b:fails')") == [], table
    assert deployment.rows("SELECT dag_id FROM dag_owner_attributes") == (
        [("team_a:mutating",)] if deployment.isolated else [])
    code_files = {row[0] for row in deployment.rows("SELECT fileloc FROM dag_code")}
    assert code_files == {f"{folder}/{dag_id.partition(':')[2]}.py" for dag_id, folder in expected.items()}

    # Callbacks queued by the scheduler reach the processor of the DAG's team, and no other.
    deployment.start("scheduler", "scheduler")
    deployment.airflow("dags", "trigger", "team_a:fails")
    deployment.airflow("dags", "trigger", "team_b:fails")
    assert deployment.wait_for_dag_run("team_a:fails") == "failed"
    assert deployment.wait_for_dag_run("team_b:fails") == "failed"
    deployment.wait_for(lambda: len(list(markers.iterdir())) == 2, "both failure callbacks")
    assert (markers / "team_a-fails").read_text() == "team_a"
    assert (markers / "team_b-fails").read_text() == "team_b"

    # A file of team A that takes the id of B's existing DAG when written leaves B's DAG as it was.
    before = deployment.rows("SELECT fileloc, dag_hash FROM serialized_dag WHERE dag_id = 'team_b:etl'")
    deployment.write_dag("team_a", "shadow.py", ID_PROPERTY_DAG.format(name="shadow", target="team_b:etl"))
    if deployment.isolated:
        deployment.wait_for(lambda: "team_a:shadow" in active_dags(deployment), "shadow.py's DAG, as team_a's")
    else:
        deployment.wait_for(lambda: deployment.scalar(
            "SELECT count(*) FROM import_error WHERE filename LIKE '%shadow.py'") == 1, "shadow.py's import error")
    assert deployment.rows("SELECT fileloc, dag_hash FROM serialized_dag WHERE dag_id = 'team_b:etl'") == before
    assert deployment.scalar("SELECT fileloc FROM dag WHERE dag_id = 'team_b:etl'") == f"{folder_b}/etl.py"

    # Deleting a file of team A deactivates only A's DAG, although B has a DAG of the same name.
    (deployment.team_folder("team_a") / "etl.py").unlink()
    deployment.wait_for(lambda: "team_a:etl" not in active_dags(deployment), "team_a:etl to be deactivated")
    assert set(active_dags(deployment)) == {"team_a:fails", "team_b:etl", "team_b:fails"} | (
        {"team_a:sneaky", "team_a:mutating", "team_a:shadow"} if deployment.isolated else set())


def test_dag_processor_refuses_to_start_without_a_valid_team(make_deployment):
    deployment = make_deployment(local_executors("team_a"))
    deployment.migrate()

    without_team = deployment.airflow("dag-processor", "--num-runs", "1", check=False)
    unknown_team = deployment.airflow("dag-processor", "--team", "team_z", "--num-runs", "1", check=False)
    no_folder = deployment.airflow("dag-processor", "--team", "team_a", "--num-runs", "1", check=False)
    other_folder = deployment.airflow(
        "dag-processor", "--team", "team_a", "--subdir", str(deployment.dags), "--num-runs", "1", check=False
    )
    deployment.team_folder("other")
    foreign_subdir = deployment.airflow(
        "dag-processor", "--team", "team_a", "--subdir", str(deployment.dags / "other"), "--num-runs", "1",
        check=False,
    )

    assert without_team.returncode != 0
    assert "every dag-processor serves one team" in without_team.stderr
    assert "airflow dag-processor --team <team>" in without_team.stderr
    assert unknown_team.returncode != 0 and "Unknown team 'team_z'" in unknown_team.stderr
    assert no_folder.returncode != 0
    assert f"The DAG folder {deployment.dags / 'team_a'} of team 'team_a' does not exist" in no_folder.stderr
    assert other_folder.returncode != 0 and "does not exist" in other_folder.stderr
    assert foreign_subdir.returncode != 0
    assert "is not a DAG folder of team 'team_a'" in foreign_subdir.stderr


def test_scheduler_refuses_to_parse_dag_files_in_multi_team_mode(make_deployment):
    deployment = make_deployment(local_executors("team_a"), scheduler__standalone_dag_processor="False")
    deployment.migrate()

    result = deployment.airflow("scheduler", "--num-runs", "1", check=False)

    assert result.returncode != 0
    assert "standalone_dag_processor = True" in result.stderr


def test_team_flag_is_refused_without_multi_team(make_deployment):
    deployment = make_deployment()
    deployment.migrate()
    deployment.dags.mkdir(exist_ok=True)

    result = deployment.airflow("dag-processor", "--team", "team_a", "--num-runs", "1", check=False)

    assert result.returncode != 0
    assert "--team needs [core] multi_team = True" in result.stderr


def test_team_folder_can_be_set_in_the_teams_own_configuration(make_deployment, tmp_path):
    elsewhere = tmp_path / "team-a-checkout"
    elsewhere.mkdir()
    deployment = make_deployment(local_executors("team_a"))
    deployment.env["AIRFLOW__TEAM_A___CORE__DAGS_FOLDER"] = str(elsewhere)
    (elsewhere / "etl.py").write_text(SIMPLE_DAG.format(dag_id="etl").replace("\n    ", "\n"))
    deployment.migrate()

    deployment.airflow("dag-processor", "--team", "team_a", "--num-runs", "2")

    assert active_dags(deployment) == {"team_a:etl": str(elsewhere)}
