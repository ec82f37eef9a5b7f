"""`airflow kubernetes generate-dag-yaml --team` on a multi-team deployment: each team's pod YAML.

No API server is involved; one migrated deployment (module fixture) with the same per-team settings as
test_kubernetes_executor_teams.py (team env vars, and a namespace override in team_b's executor config).
"""

from __future__ import annotations

import uuid

import pytest
import yaml

from tests.providers.cncf.kubernetes.kube_teams import (
    EXECUTORS,
    EXPECTED_IMAGE,
    EXPECTED_NAMESPACE,
    TEAMS,
    configure_teams,
)
from tests.test_utils.deployment import Deployment

pytestmark = pytest.mark.e2e

DAG = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="work")
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server):
    root = tmp_path_factory.mktemp("k8s-cli")
    files = root / "files"
    files.mkdir()
    deployment = Deployment(root / "deployment", postgres_server.create_database(f"k8s_cli_{uuid.uuid4().hex[:12]}"),
                            EXECUTORS)
    configure_teams(deployment, None, files)
    for team in TEAMS:
        deployment.write_dag(team, "etl.py", DAG)
    deployment.migrate()  # the command logs itself to the metadata DB
    yield deployment
    deployment.stop_all()


def generate(deployment: Deployment, dag_id: str, *team_args: str) -> tuple[int, dict | None, str]:
    """Run the command for the DAG's single task: (exit code, the generated pod or None, stderr)."""
    output = deployment.root / f"yaml-{uuid.uuid4().hex[:8]}"
    folder = deployment.dags / dag_id.split(":")[0]
    result = deployment.airflow("kubernetes", "generate-dag-yaml", *team_args, dag_id, "2024-01-01",
                                "--subdir", str(folder), "--output-path", str(output), check=False)
    files = sorted((output / "airflow_yaml_output").glob("*.yml"))
    assert len(files) <= 1, files
    pod = yaml.safe_load(files[0].read_text()) if files else None
    return result.returncode, pod, result.stderr[-3000:]


def summary(pod: dict) -> dict:
    return {
        "dag_id": pod["metadata"]["annotations"]["dag_id"],
        "namespace": pod["metadata"]["namespace"],
        "template": pod["metadata"]["labels"].get("team-template"),
        "service_account": pod["spec"].get("serviceAccountName"),
        "image": pod["spec"]["containers"][0].get("image"),
    }


def test_generate_dag_yaml_uses_each_teams_namespace_template_and_image(deployment):
    pods = {}
    for team in TEAMS:
        code, pod, stderr = generate(deployment, f"{team}:etl", "--team", team)
        assert code == 0, stderr
        pods[team] = summary(pod)

    assert pods["team_a"] == {"dag_id": "team_a:etl", "namespace": "team-a-ns", "template": "team_a",
                              "service_account": "team-a-workers", "image": EXPECTED_IMAGE["team_a"]}
    # team_b's namespace: see test_generate_dag_yaml_applies_the_executors_own_config.
    assert {key: value for key, value in pods["team_b"].items() if key != "namespace"} == {
        "dag_id": "team_b:etl", "template": "team_b", "service_account": "team-b-workers",
        "image": EXPECTED_IMAGE["team_b"]}
    assert pods["team_b"]["namespace"].startswith("team-b-")


def test_generate_dag_yaml_applies_the_executors_own_config(deployment):
    """team_b's executor sets namespace team-b-override in its `config`; its pods go there.

    FAILS on the fork: generate_pod_yaml builds ExecutorConf(team_name=args.team), the team-level
    configuration without any executor's `config`, so the YAML shows the team's namespace instead.
    """
    code, pod, stderr = generate(deployment, "team_b:etl", "--team", "team_b")

    assert code == 0, stderr
    assert pod["metadata"]["namespace"] == EXPECTED_NAMESPACE["team_b"]


def test_generate_dag_yaml_refuses_another_teams_dag(deployment):
    """`--team team_b` with team_a's DAG must not produce team_a's pod with team_b's settings.

    FAILS on the fork: the command does not compare --team with the team of the dag_id, so it writes a
    team_a pod into team_b's namespace, from team_b's template.
    """
    code, pod, _ = generate(deployment, "team_a:etl", "--team", "team_b")

    assert (code, pod) == (1, None)


def test_generate_dag_yaml_without_team_uses_the_team_of_the_dag(deployment):
    """In multi-team mode a DAG id names its team, so --team is not needed to find the team's config.

    FAILS on the fork: without --team the command uses the global [kubernetes_executor] configuration
    (namespace "default", no pod template) for a team's DAG.
    """
    code, pod, stderr = generate(deployment, "team_a:etl")

    assert code == 0, stderr
    assert summary(pod)["namespace"] == EXPECTED_NAMESPACE["team_a"]
    assert summary(pod)["template"] == "team_a"
