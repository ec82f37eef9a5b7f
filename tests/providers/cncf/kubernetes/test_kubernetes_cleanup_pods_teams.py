"""`airflow kubernetes cleanup-pods --team T`: only T's finished pods are deleted, through T's cluster
settings and namespace (one local API stand-in per team, tests/test_utils/kube_api_stub.py)."""

from __future__ import annotations

import pytest

from tests.providers.cncf.kubernetes.kube_teams import EXECUTORS, TEAM_NAMESPACE, configure_teams
from tests.test_utils.kube_api_stub import KubeApiStub

pytestmark = pytest.mark.e2e


def pod(name: str, dag_id: str | None) -> dict:
    """A pod with the labels cleanup-pods selects on; the executor's ``dag_id`` annotation when given."""
    return {
        "metadata": {
            "name": name,
            "labels": {"dag_id": "etl", "task_id": "work", "try_number": "1", "airflow_version": "2.11.2"},
            "annotations": {"dag_id": dag_id} if dag_id else {},
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "airflow"}]},
    }


@pytest.fixture
def clusters(tmp_path):
    stubs = {team: KubeApiStub(team, token=f"token-{team}").start() for team in ("team_a", "team_b")}
    yield stubs
    for stub in stubs.values():
        stub.stop()


def test_cleanup_pods_of_one_team_uses_its_cluster_and_leaves_other_pods(make_deployment, clusters, tmp_path):
    deployment = make_deployment(EXECUTORS)
    files = tmp_path / "kube-files"
    files.mkdir()
    configure_teams(deployment, {team: stub.url for team, stub in clusters.items()}, files)
    deployment.migrate()
    ns_a, ns_b = TEAM_NAMESPACE["team_a"], TEAM_NAMESPACE["team_b"]
    stub_a, stub_b = clusters["team_a"], clusters["team_b"]
    stub_a.add_pod(ns_a, pod("a-done", "team_a:etl"), "Succeeded")
    stub_a.add_pod(ns_a, pod("a-failed", "team_a:etl"), "Failed")
    stub_a.add_pod(ns_a, pod("a-just-created", "team_a:etl"))  # pending for less than 5 minutes
    stub_a.add_pod(ns_a, pod("b-in-a-cluster", "team_b:etl"), "Succeeded")
    stub_a.add_pod(ns_a, pod("no-team-annotation", None), "Succeeded")  # e.g. a KubernetesPodOperator pod
    stub_b.add_pod(ns_b, pod("b-done", "team_b:etl"), "Succeeded")

    cleaned_a = deployment.airflow("kubernetes", "cleanup-pods", "--team", "team_a", "--min-completed-minutes", "0",
                                   "--verbose")

    assert sorted(name for _, name in stub_a.pods) == ["a-just-created", "b-in-a-cluster", "no-team-annotation"]
    assert sorted(r.path for r in stub_a.recorded("DELETE")) == [
        f"/api/v1/namespaces/{ns_a}/pods/a-done", f"/api/v1/namespaces/{ns_a}/pods/a-failed"]
    assert {r.authorization for r in stub_a.requests} == {"Bearer token-team_a"}
    assert stub_b.requests == []
    assert "Skipping pod b-in-a-cluster: not a pod of team team_a" in cleaned_a.stdout

    deployment.airflow("kubernetes", "cleanup-pods", "--team", "team_b", "--min-completed-minutes", "0")

    assert list(stub_b.pods) == []
    assert [r.path for r in stub_b.recorded("DELETE")] == [f"/api/v1/namespaces/{ns_b}/pods/b-done"]
    assert {r.authorization for r in stub_b.requests} == {"Bearer token-team_b"}
    assert len(stub_a.pods) == 3


def test_cleanup_pods_refuses_an_unknown_team(make_deployment, clusters, tmp_path):
    deployment = make_deployment(EXECUTORS)
    deployment.migrate()

    result = deployment.airflow("kubernetes", "cleanup-pods", "--team", "team_x", check=False)

    assert result.returncode != 0
    assert "Unknown team 'team_x'" in result.stderr
    assert all(stub.requests == [] for stub in clusters.values())
