"""KubernetesExecutor per team, end to end: a real scheduler and dag-processors, one fake Kubernetes API per
team (tests/test_utils/kube_api_stub.py) whose mini-kubelet runs each pod's `airflow tasks run` locally."""

from __future__ import annotations

import json
import shutil
import tempfile

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


@pytest.fixture
def kube_apis(tmp_path):
    """One API stub per team (its mini-kubelet starts once ``kubelet_env`` is set)."""
    logs = tmp_path / "pod-logs"
    logs.mkdir()
    stubs = {team: KubeApiStub(team, token=f"token-{team}", log_dir=logs).start() for team in TEAMS}
    yield stubs
    for stub in stubs.values():
        stub.stop()


@pytest.fixture
def deployment(make_deployment, kube_apis, tmp_path):
    """A migrated deployment whose teams use their own stubs; stopped before the stubs are."""
    short_tmp = tempfile.mkdtemp(prefix="k8s-")  # AF_UNIX socket paths of multiprocessing must stay short
    deployment = make_deployment(EXECUTORS)
    deployment.env["TMPDIR"] = short_tmp  # also where the kubernetes client caches API discovery
    files = tmp_path / "kube-files"
    files.mkdir()
    configure_teams(deployment, {team: stub.url for team, stub in kube_apis.items()}, files)
    deployment.migrate()
    for stub in kube_apis.values():  # the pods' environment: isolated, without the database URL
        stub.kubelet_env = deployment.isolated_env() if deployment.isolated else deployment.env
        stub.kubelet_cwd = deployment.home
    yield deployment
    deployment.stop_all()
    shutil.rmtree(short_tmp, ignore_errors=True)


@pytest.mark.db_isolation
def test_each_teams_kubernetes_executor_uses_its_own_cluster_namespace_and_template(deployment, kube_apis, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    for team in TEAMS:
        deployment.write_dag(team, "etl.py", RECORDING_DAG.format(markers=str(markers)))
        deployment.start(f"dag-processor-{team}", "dag-processor", "--team", team)
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 2, "DAGs")

    for team in TEAMS:
        deployment.airflow("dags", "trigger", f"{team}:etl", "--run-id", "r1")

    assert {team: deployment.wait_for_dag_run(f"{team}:etl", timeout=120) for team in TEAMS} == {
        "team_a": "success", "team_b": "success"}
    for team in TEAMS:  # the executor deletes a finished pod (delete_worker_pods) just after the run ends
        deployment.wait_for(lambda stub=kube_apis[team]: stub.recorded("DELETE"), f"the deletion of {team}'s pod", 30)
    deployment.stop_all()
    for team in TEAMS:
        stub, namespace = kube_apis[team], EXPECTED_NAMESPACE[team]
        # Exactly one pod, this team's, created through this team's API server in its namespace...
        pods = stub.created_pods()
        assert [pod["metadata"]["annotations"]["dag_id"] for pod in pods] == [f"{team}:etl"]
        [pod] = pods
        name = pod["metadata"]["name"]
        assert [r.path for r in stub.recorded("POST")] == [f"/api/v1/namespaces/{namespace}/pods"]
        assert pod["metadata"]["namespace"] == namespace
        # ...from this team's pod template and with its image...
        assert pod["metadata"]["labels"]["team-template"] == team
        assert pod["metadata"]["annotations"]["example.com/owner"] == team
        assert pod["spec"]["serviceAccountName"] == f"{team.replace('_', '-')}-workers"
        container = pod["spec"]["containers"][0]
        assert container["image"] == EXPECTED_IMAGE[team]
        assert container["args"][:6] == ["airflow", "tasks", "run", f"{team}:etl", "work", "r1"]
        if deployment.isolated:  # the pod got no database URL from the executor either, and used the internal API
            assert "SQL_ALCHEMY_CONN" not in json.dumps(container.get("env"))
            assert "Forcing TracebackSession for untrusted components" in deployment.task_logs(f"{team}:etl")
        # ...where the task ran (the template's env var reached it), and the pod was deleted there.
        assert json.loads((markers / f"{team}-etl").read_text()) == {"template": team, "pod": name}
        assert stub.recorded("DELETE")[0].path == f"/api/v1/namespaces/{namespace}/pods/{name}"
        # The executor watched and listed pods in that namespace only, never cluster-wide.
        assert pod_namespaces(stub) == {namespace}
        assert any(r.query.get("watch") == "True" for r in stub.recorded("GET", f"/api/v1/namespaces/{namespace}/"))
        # Nothing of the other team reached this API server, and only this team's credentials did.
        assert {r.authorization for r in stub.requests} == {f"Bearer token-{team}"}
        seen = json.dumps([[r.method, r.path, r.query, r.body] for r in stub.requests])
        other = OTHER[team]
        for foreign in (f"{other}:etl", other.replace("_", "-"), EXPECTED_NAMESPACE[other], TEMPLATE_IMAGE[other]):
            assert foreign not in seen, f"{foreign!r} reached {team}'s API server"
