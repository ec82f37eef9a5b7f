"""Which Kubernetes API each team's KubernetesExecutor talks to, in-process and fast: the executors are
loaded from the multi-team configuration and started (pod watchers included) against one API stub per
cluster (tests/test_utils/kube_api_stub.py). A "global" stub is what the un-prefixed configuration names;
no team may reach it."""

from __future__ import annotations

import shutil
import tempfile
from types import SimpleNamespace

import pytest

from airflow.executors.executor_loader import ExecutorLoader
from airflow.models.taskinstancekey import TaskInstanceKey
from tests.providers.cncf.kubernetes.kube_teams import EXECUTORS, EXPECTED_NAMESPACE, pod_template
from teams_breeze.services import poll
from tests.test_utils.kube_api_stub import POD_PATH, KubeApiStub

CLUSTERS = ("global", "team_a", "team_b")


@pytest.fixture
def clusters(tmp_path, monkeypatch):
    """API stubs; the global configuration points at "global", each team's at its own (team env vars)."""
    short_tmp = tempfile.mkdtemp(prefix="k8s-")  # multiprocessing's AF_UNIX sockets; API discovery cache
    monkeypatch.setattr(tempfile, "tempdir", short_tmp)
    stubs = {name: KubeApiStub(name, token=f"token-{name}").start() for name in CLUSTERS}
    for name in CLUSTERS:
        stubs[name].write_kubeconfig(tmp_path / f"kubeconfig-{name}")
        (tmp_path / f"template-{name}.yaml").write_text(pod_template("team_a").replace("team_a", name))
    settings = {"IN_CLUSTER": "False", "CONFIG_FILE": "kubeconfig-{}", "POD_TEMPLATE_FILE": "template-{}.yaml"}
    for key, value in settings.items():
        value = str(tmp_path / value) if "{}" in value else value
        monkeypatch.setenv(f"AIRFLOW__KUBERNETES_EXECUTOR__{key}", value.format("global"))
        for team in ("team_a", "team_b"):
            monkeypatch.setenv(f"AIRFLOW__{team.upper()}___KUBERNETES_EXECUTOR__{key}", value.format(team))
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE", "global-ns")
    monkeypatch.setenv("AIRFLOW__TEAM_A___KUBERNETES_EXECUTOR__NAMESPACE", "team-a-ns")
    monkeypatch.setenv("AIRFLOW__TEAM_B___KUBERNETES_EXECUTOR__NAMESPACE", "team-b-ns")
    yield stubs
    for stub in stubs.values():
        stub.stop()
    shutil.rmtree(short_tmp, ignore_errors=True)


@pytest.fixture
def started_executors():
    """Load and start all configured executors (as the scheduler does); end them afterwards."""
    executors = []

    def start() -> dict:
        for executor in ExecutorLoader.init_executors():
            executor.job_id = 7
            executor.start()
            executors.append(executor)
        return {executor.name.alias: executor for executor in executors}

    yield start
    for executor in executors:
        executor.end()


def run_task(executor, dag_id: str) -> None:
    """Queue one task on ``executor`` and let one sync() create its pod."""
    key = TaskInstanceKey(dag_id, "work", "r1", 1, -1)
    executor.execute_async(key=key, command=["airflow", "tasks", "run", dag_id, "work", "r1", "--local"])
    executor.sync()


def wait_for_watch(stub: KubeApiStub, namespace: str) -> None:
    def watching() -> bool:
        return any(r.query.get("watch") == "True" for r in stub.recorded("GET", f"/api/v1/namespaces/{namespace}/"))

    assert poll(watching, 30, 0.1), f"no watch of {namespace} on {stub.name}: {stub.requests}"


def created(stub: KubeApiStub) -> list[tuple[str, str, str]]:
    """(namespace of the request, dag_id, template) of every pod created on ``stub``."""
    return [(POD_PATH.match(r.path).group("ns"), r.body["metadata"]["annotations"]["dag_id"],
             r.body["metadata"]["labels"]["team-template"]) for r in stub.recorded("POST")]


def test_each_teams_executor_creates_watches_and_reads_pods_through_its_own_cluster(
    multi_team, clusters, started_executors
):
    multi_team(EXECUTORS)
    executors = started_executors()

    run_task(executors["a_k8s"], "team_a:etl")
    run_task(executors["b_k8s"], "team_b:etl")
    for team, alias in (("team_a", "a_k8s"), ("team_b", "b_k8s")):
        wait_for_watch(clusters[team], EXPECTED_NAMESPACE[team])
        pod_name = clusters[team].created_pods()[0]["metadata"]["name"]
        ti = SimpleNamespace(dag_id=f"{team}:etl", task_id="work", run_id="r1", map_index=-1, hostname=pod_name,
                             queued_by_job_id=7, executor_config={})
        messages, _ = executors[alias].get_task_log(ti, 1)
        assert not [m for m in messages if "failed" in m], messages
        assert clusters[team].recorded("GET", f"/api/v1/namespaces/{EXPECTED_NAMESPACE[team]}/pods/{pod_name}/log")

    assert created(clusters["team_a"]) == [("team-a-ns", "team_a:etl", "team_a")]
    assert created(clusters["team_b"]) == [("team-b-override", "team_b:etl", "team_b")]
    for team in ("team_a", "team_b"):
        assert {r.authorization for r in clusters[team].requests} == {f"Bearer token-{team}"}
    assert clusters["global"].requests == []


def test_async_pod_creation_uses_the_teams_cluster(multi_team, clusters, started_executors, monkeypatch):
    """With `async_pod_creation` the pods are still created on the team's cluster."""
    monkeypatch.setenv("AIRFLOW__TEAM_A___KUBERNETES_EXECUTOR__ASYNC_POD_CREATION", "True")
    multi_team(EXECUTORS)
    executors = started_executors()

    run_task(executors["a_k8s"], "team_a:etl")

    assert (created(clusters["team_a"]), created(clusters["global"])) == ([("team-a-ns", "team_a:etl", "team_a")], [])
