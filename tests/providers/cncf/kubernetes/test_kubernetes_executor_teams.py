"""KubernetesExecutor per team, end to end: a real scheduler and dag-processors, one fake Kubernetes API per
team (tests/test_utils/kube_api_stub.py) whose mini-kubelet runs each pod's `airflow tasks run` locally.

One deployment runs one DAG per team (module fixture); the tests check what each team's API server saw.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.providers.cncf.kubernetes.kube_teams import (
    EXECUTORS,
    EXPECTED_IMAGE,
    EXPECTED_NAMESPACE,
    OTHER,
    TEAMS,
    TEMPLATE_IMAGE,
    configure_teams,
)
from tests.test_utils.deployment import Deployment
from tests.test_utils.kube_api_stub import POD_PATH, KubeApiStub

pytestmark = pytest.mark.e2e

# The task records the template it ran from (an env var only that template sets) and its pod's name.
RECORDING_DAG = """
    import json
    import os
    import pathlib

    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    def record(dag):
        marker = pathlib.Path({markers!r}) / dag.dag_id.replace(":", "-")
        marker.write_text(json.dumps({{"template": os.environ.get("POD_TEMPLATE_OF"), "pod": os.environ["HOSTNAME"]}}))

    with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        PythonOperator(task_id="work", python_callable=record)
"""


def pod_namespaces(stub: KubeApiStub) -> set[str | None]:
    """The namespaces of all Pod API calls (None for cluster-wide ones)."""
    return {match.group("ns") for r in stub.requests if (match := POD_PATH.match(r.path))}


@dataclass
class Run:
    deployment: Deployment
    stubs: dict[str, KubeApiStub]
    states: dict[str, str]
    markers: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory, postgres_server):
    """Both teams' DAGs triggered once on one deployment; everything is stopped before the tests look."""
    root = tmp_path_factory.mktemp("k8s-teams")
    markers, files, logs = root / "markers", root / "files", root / "pod-logs"
    for directory in (markers, files, logs):
        directory.mkdir()
    short_tmp = tempfile.mkdtemp(prefix="k8s-")  # AF_UNIX socket paths of multiprocessing must stay short
    stubs = {team: KubeApiStub(team, token=f"token-{team}", log_dir=logs).start() for team in TEAMS}
    deployment = Deployment(root / "deployment", postgres_server.create_database(f"k8s_{uuid.uuid4().hex[:12]}"),
                            EXECUTORS)
    try:
        deployment.env["TMPDIR"] = short_tmp  # also where the kubernetes client caches API discovery
        configure_teams(deployment, stubs, files)
        for team in TEAMS:
            deployment.write_dag(team, "etl.py", RECORDING_DAG.format(markers=str(markers)))
            stubs[team].kubelet_env, stubs[team].kubelet_cwd = deployment.env, deployment.home
        deployment.migrate()
        for team in TEAMS:
            deployment.start(f"dag-processor-{team}", "dag-processor", "--team", team)
        deployment.start("scheduler", "scheduler")
        deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 2, "DAGs")
        for team in TEAMS:
            deployment.airflow("dags", "trigger", f"{team}:etl", "--run-id", "r1")
        states = {team: deployment.wait_for_dag_run(f"{team}:etl", timeout=90) for team in TEAMS}
        for team in TEAMS:  # the executor deletes a finished pod (delete_worker_pods) after the run ends
            deployment.wait_for(lambda: stubs[team].recorded("DELETE"), f"the deletion of {team}'s pod", 30)
        deployment.stop_all()
        yield Run(deployment, stubs, states, markers)
    finally:
        deployment.stop_all()
        for stub in stubs.values():
            stub.stop()
        shutil.rmtree(short_tmp, ignore_errors=True)


def test_each_teams_task_runs_to_success_in_a_pod_of_its_own_template(run):
    assert run.states == {"team_a": "success", "team_b": "success"}
    for team in TEAMS:
        pod = run.stubs[team].created_pods()[0]
        marker = json.loads((run.markers / f"{team}-etl").read_text())
        assert marker == {"template": team, "pod": pod["metadata"]["name"]}


@pytest.mark.parametrize("team", TEAMS)
def test_each_teams_pod_is_created_on_its_own_api_server_in_its_namespace_from_its_template(run, team):
    stub = run.stubs[team]
    namespace = EXPECTED_NAMESPACE[team]

    pods = stub.created_pods()

    assert [pod["metadata"]["annotations"]["dag_id"] for pod in pods] == [f"{team}:etl"]
    [pod] = pods
    [create] = [r for r in stub.recorded("POST")]
    assert create.path == f"/api/v1/namespaces/{namespace}/pods"
    assert pod["metadata"]["namespace"] == namespace
    assert pod["metadata"]["labels"]["team-template"] == team
    assert pod["metadata"]["annotations"]["example.com/owner"] == team
    assert pod["spec"]["serviceAccountName"] == f"{team.replace('_', '-')}-workers"
    container = pod["spec"]["containers"][0]
    assert container["image"] == EXPECTED_IMAGE[team]
    assert container["args"][:6] == ["airflow", "tasks", "run", f"{team}:etl", "work", "r1"]
    # The executor watched, listed and deleted pods only in that namespace, and never cluster-wide.
    assert pod_namespaces(stub) == {namespace}
    assert any(r.query.get("watch") == "True" for r in stub.recorded("GET", f"/api/v1/namespaces/{namespace}/pods"))
    assert [r.path for r in stub.recorded("DELETE")][0] == f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}"


@pytest.mark.parametrize("team", TEAMS)
def test_no_api_server_sees_the_other_teams_pods_namespaces_or_credentials(run, team):
    stub, other = run.stubs[team], OTHER[team]
    seen = json.dumps([[r.method, r.path, r.query, r.body] for r in stub.requests])

    assert {r.authorization for r in stub.requests} == {f"Bearer token-{team}"}
    for foreign in (f"{other}:etl", other.replace("_", "-"), EXPECTED_NAMESPACE[other], TEMPLATE_IMAGE[other]):
        assert foreign not in seen


def test_the_rendered_k8s_pod_spec_of_each_task_uses_its_teams_config(run):
    """The "K8s Pod Spec" the task stores (rendered_task_instance_fields) must be the team's pod.

    FAILS on the fork: template_rendering._get_executor_conf calls DagModel.get_team_name, which
    2.11 does not have, so the task renders the spec from the global [kubernetes_executor] config.
    """
    specs = dict(run.deployment.rows("SELECT dag_id, k8s_pod_yaml FROM rendered_task_instance_fields"))

    for team in TEAMS:
        spec = specs[f"{team}:etl"]
        assert (spec["metadata"]["namespace"], spec["metadata"]["labels"].get("team-template"),
                spec["spec"]["containers"][0].get("image")) == (EXPECTED_NAMESPACE[team], team, EXPECTED_IMAGE[team])
