"""Pod YAML made outside the executor on a multi-team deployment: `airflow kubernetes generate-dag-yaml
--team` and the "K8s Pod Spec" a task renders (template_rendering.render_k8s_pod_yaml).

No API server is involved; one migrated deployment (module fixture) with the same per-team settings as
test_kubernetes_executor_teams.py (team env vars, and a namespace override in team_b's executor config).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
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
    """team_b's executor sets namespace team-b-override in its `config`; its pods go there."""
    code, pod, stderr = generate(deployment, "team_b:etl", "--team", "team_b")

    assert code == 0, stderr
    assert pod["metadata"]["namespace"] == EXPECTED_NAMESPACE["team_b"]


def test_generate_dag_yaml_refuses_another_teams_dag(deployment):
    """`--team team_b` with team_a's DAG must not produce team_a's pod with team_b's settings."""
    code, pod, _ = generate(deployment, "team_a:etl", "--team", "team_b")

    assert (code, pod) == (1, None)


def test_generate_dag_yaml_without_team_uses_the_team_of_the_dag(deployment):
    """In multi-team mode a DAG id names its team, so --team is not needed to find the team's config."""
    code, pod, stderr = generate(deployment, "team_a:etl")

    assert code == 0, stderr
    assert summary(pod)["namespace"] == EXPECTED_NAMESPACE["team_a"]
    assert summary(pod)["template"] == "team_a"


# What a task does in its pod (RenderedTaskInstanceFields with AIRFLOW_IS_K8S_EXECUTOR_POD set): render the
# "K8s Pod Spec" that the UI shows for it.
RENDER = textwrap.dedent("""
    import json, sys
    import pendulum
    from airflow.models import DagModel, DagRun, TaskInstance
    from airflow.providers.cncf.kubernetes.template_rendering import render_k8s_pod_yaml
    from airflow.utils.cli import get_dag

    dag = get_dag(sys.argv[2], sys.argv[1])
    ti = TaskInstance(dag.get_task("work"), run_id="r1")
    ti.dag_run = DagRun(dag.dag_id, run_id="r1", execution_date=pendulum.datetime(2024, 1, 1))
    ti.dag_model = DagModel(dag_id=dag.dag_id)
    print(json.dumps(render_k8s_pod_yaml(ti)))
""")


@pytest.mark.parametrize("team", TEAMS)
def test_the_rendered_k8s_pod_spec_of_a_task_uses_its_teams_config(deployment, team):
    """The spec a task stores in rendered_task_instance_fields (its "K8s Pod Spec") is its team's pod.
    """
    result = subprocess.run([sys.executable, "-c", RENDER, f"{team}:etl", str(deployment.dags / team)],
                            env=deployment.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    pod = json.loads(result.stdout.strip().splitlines()[-1])

    assert (summary(pod)["namespace"], summary(pod)["template"], summary(pod)["image"]) == (
        EXPECTED_NAMESPACE[team], team, EXPECTED_IMAGE[team])
