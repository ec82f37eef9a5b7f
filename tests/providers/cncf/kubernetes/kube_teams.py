"""Shared multi-team KubernetesExecutor settings of the tests in this folder: per-team namespaces, pod
templates and images, configured with team env vars (and one executor-level override for team_b)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.test_utils.deployment import Deployment
from tests.test_utils.kube_api_stub import write_kubeconfig

TEAMS = ("team_a", "team_b")
OTHER = {"team_a": "team_b", "team_b": "team_a"}
TEAM_NAMESPACE = {"team_a": "team-a-ns", "team_b": "team-b-ns"}  # [kubernetes_executor] namespace per team
# team_b's executor overrides its team's namespace in its own `config`; team_b also sets a worker image.
EXECUTORS = {
    "team_a": [{"name": "a_k8s", "class": "KubernetesExecutor"}],
    "team_b": [{"name": "b_k8s", "class": "KubernetesExecutor",
                "config": {"kubernetes_executor": {"namespace": "team-b-override"}}}],
}
EXPECTED_NAMESPACE = {"team_a": "team-a-ns", "team_b": "team-b-override"}
TEMPLATE_IMAGE = {"team_a": "registry.example/team-a/airflow:a-tag", "team_b": "registry.example/team-b/base:unused"}
EXPECTED_IMAGE = {"team_a": TEMPLATE_IMAGE["team_a"], "team_b": "registry.example/team-b/airflow:b-tag"}


def pod_template(team: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: placeholder-name
          labels:
            team-template: {team}
          annotations:
            example.com/owner: {team}
        spec:
          serviceAccountName: {team.replace("_", "-")}-workers
          restartPolicy: Never
          containers:
            - name: base
              image: {TEMPLATE_IMAGE[team]}
              env:
                - name: POD_TEMPLATE_OF
                  value: {team}
        """)


def configure_teams(deployment: Deployment, servers: dict[str, str] | None, files: Path) -> None:
    """Each team's kube config (API server URL by team, token ``token-<team>``), namespace and pod
    template, set with team env vars only."""
    for team in TEAMS:
        template = files / f"pod-template-{team}.yaml"
        template.write_text(pod_template(team))
        prefix = f"AIRFLOW__{team.upper()}___KUBERNETES_EXECUTOR__"
        deployment.env.update({
            prefix + "NAMESPACE": TEAM_NAMESPACE[team],
            prefix + "POD_TEMPLATE_FILE": str(template),
        })
        if servers:
            kubeconfig = write_kubeconfig(files / f"kubeconfig-{team}", team, servers[team], f"token-{team}",
                                          namespace="not-used")
            deployment.env.update({prefix + "IN_CLUSTER": "False", prefix + "CONFIG_FILE": str(kubeconfig)})
    deployment.env.update({  # team_b's worker image replaces its template's image
        "AIRFLOW__TEAM_B___KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY": "registry.example/team-b/airflow",
        "AIRFLOW__TEAM_B___KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG": "b-tag",
    })
