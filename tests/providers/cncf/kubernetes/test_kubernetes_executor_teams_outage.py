"""A team's Kubernetes executor failing, end to end: its API going down while its pod is pending (past
the queued timeout and across a scheduler restart), or its kube config missing at start. The scheduler
keeps running the other team's tasks, and the team's task runs once its executor works again."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from tests.providers.cncf.kubernetes.kube_teams import EXECUTORS, TEAMS, configure_teams
from tests.test_utils.kube_api_stub import KubeApiStub

pytestmark = pytest.mark.e2e

DAG = """
    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        PythonOperator(task_id="work", python_callable=lambda: print("worked"))
"""


@pytest.fixture
def kube_teams(make_deployment, tmp_path):
    """A migrated two-team deployment, each team on its own API stub (team_b's without a kubelet if
    asked: its pods then stay Pending until a test sets one)."""
    short_tmp = tempfile.mkdtemp(prefix="k8s-")  # AF_UNIX socket paths of multiprocessing must stay short
    stubs: list[KubeApiStub] = []
    deployments = []

    def make(kubelet_b: bool = True, **config: str):
        deployment = make_deployment(EXECUTORS, **config)
        deployment.env["TMPDIR"] = short_tmp
        deployments.append(deployment)
        stubs.extend(KubeApiStub(team, token=f"token-{team}", log_dir=tmp_path).start() for team in TEAMS)
        stub_a, stub_b = stubs
        for stub in stubs if kubelet_b else [stub_a]:
            use_kubelet(stub, deployment)
        files = tmp_path / "kube-files"
        files.mkdir()
        configure_teams(deployment, {"team_a": stub_a.url, "team_b": stub_b.url}, files)
        deployment.migrate()
        return deployment, stub_a, stub_b, files

    yield make
    for deployment in deployments:
        deployment.stop_all()  # before the stubs, whose connections the components hold
    for stub in stubs:
        stub.stop()
    shutil.rmtree(short_tmp, ignore_errors=True)


def use_kubelet(stub: KubeApiStub, deployment) -> None:
    stub.kubelet_env, stub.kubelet_cwd = deployment.env, deployment.home


def start_components(deployment) -> None:
    for team in ("team_a", "team_b"):
        deployment.write_dag(team, "etl.py", DAG)
    deployment.start_scheduler_and_processors(("team_a", "team_b"), active_dags=2)


def run_state(deployment, dag_id: str, run_id: str) -> str | None:
    return deployment.scalar("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id)


def test_a_teams_kubernetes_api_outage_does_not_stop_the_scheduler(kube_teams):
    # team_b's API server has no kubelet at first: its pod stays Pending, its task queued. The queued
    # timeout leaves team_a's tasks, which start at once, ample time on a slow machine.
    deployment, stub_a, stub_b, _ = kube_teams(
        kubelet_b=False,
        scheduler__task_queued_timeout="60",
        scheduler__task_queued_timeout_check_interval="3",
        scheduler__orphaned_tasks_check_interval="3",
    )
    start_components(deployment)
    deployment.airflow("dags", "trigger", "team_b:etl", "--run-id", "b1")
    deployment.wait_for(stub_b.created_pods, "team_b's pod")

    stub_b.go_down()
    deployment.wait_for(lambda: "b_k8s of team team_b failed in revoke_task" in deployment.log_of("scheduler"),
                        "the stuck-in-queued check to fail on team_b's executor", timeout=180)
    deployment.airflow("dags", "trigger", "team_a:etl", "--run-id", "a1")
    deployment.wait_for(lambda: run_state(deployment, "team_a:etl", "a1") == "success", "team_a's run a1")

    # A new scheduler adopts the orphaned task of team_b while its API is still down.
    deployment.stop("scheduler")
    deployment.start("scheduler-2", "scheduler")
    deployment.wait_for(
        lambda: "b_k8s of team team_b failed in try_adopt_task_instances" in deployment.log_of("scheduler-2"),
        "the adoption to fail on team_b's executor", timeout=120)
    deployment.airflow("dags", "trigger", "team_a:etl", "--run-id", "a2")
    deployment.wait_for(lambda: run_state(deployment, "team_a:etl", "a2") == "success", "team_a's run a2")
    state_during_outage = deployment.scalar("SELECT state FROM task_instance WHERE dag_id = 'team_b:etl'")

    use_kubelet(stub_b, deployment)
    stub_b.come_back()
    deployment.wait_for(lambda: run_state(deployment, "team_b:etl", "b1") == "success",
                        "team_b's run after its API is back", timeout=180)

    assert state_during_outage == "queued"
    assert {pod["metadata"]["annotations"]["dag_id"] for pod in stub_b.created_pods()} == {"team_b:etl"}
    assert {pod["metadata"]["annotations"]["dag_id"] for pod in stub_a.created_pods()} == {"team_a:etl"}
    for log in (deployment.log_of("scheduler"), deployment.log_of("scheduler-2")):
        assert "of team team_a failed" not in log


def test_a_teams_executor_that_cannot_start_is_started_again_at_each_heartbeat(kube_teams):
    deployment, _, stub_b, files = kube_teams()
    kubeconfig_b = files / "kubeconfig-team_b"
    kubeconfig_b_text = kubeconfig_b.read_text()
    kubeconfig_b.unlink()  # e.g. a secret not mounted yet: team_b's executor cannot start
    start_components(deployment)
    deployment.airflow("dags", "trigger", "team_b:etl", "--run-id", "b1")
    deployment.airflow("dags", "trigger", "team_a:etl", "--run-id", "a1")
    deployment.wait_for(lambda: run_state(deployment, "team_a:etl", "a1") == "success", "team_a's run a1")
    log_before = deployment.log_of("scheduler")
    state_before = deployment.scalar("SELECT state FROM task_instance WHERE dag_id = 'team_b:etl'")

    kubeconfig_b.write_text(kubeconfig_b_text)
    deployment.wait_for(lambda: run_state(deployment, "team_b:etl", "b1") == "success",
                        "team_b's run once its executor starts", timeout=180)

    assert "Executor b_k8s of team team_b failed in start" in log_before
    assert state_before == "queued"
    assert {pod["metadata"]["annotations"]["dag_id"] for pod in stub_b.created_pods()} == {"team_b:etl"}
    assert "Executor b_k8s of team team_b works again (start)." in deployment.log_of("scheduler")
