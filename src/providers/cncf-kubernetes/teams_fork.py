# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.
"""
What the provider does differently on the Airflow 2.11 multi-team fork (AIP-67).

That fork's core has upstream 3.2's team API (``BaseExecutor(team_name=...)``, ``ExecutorConf``,
``conf.get(..., team_name=...)``) and an ``airflow.teams`` package. Each function here is called from
a one-line hook guarded by ``AIRFLOW_TEAMS_FORK``, so nothing changes on any other Airflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from argparse import Namespace


def serve_team(args: Namespace, command: str) -> None:
    """Validate ``--team`` and make the command serve it: a DAG of another team is then refused."""
    from airflow.teams.process_team import serve_team_of_flag

    serve_team_of_flag(args, command)


def executor_conf_for_task(dag_id: str, executor: str | None = None) -> Any:
    """Return the configuration of the executor that runs the task (its team's, with its own config)."""
    from airflow.teams.executors import executor_conf_for_task as core_executor_conf_for_task

    return core_executor_conf_for_task(dag_id, executor)


def cleanup_team_and_namespace(args: Namespace) -> tuple[str | None, str]:
    """
    Return the team and namespace of ``kubernetes cleanup-pods``: with ``--team T`` only T's pods.

    Without ``--namespace`` the team's namespace is used. A pod is T's when its ``dag_id`` annotation
    (set by the KubernetesExecutor) names a DAG of T.
    """
    team = getattr(args, "team", None)
    if not team:
        return None, args.namespace
    from airflow.configuration import conf

    serve_team(args, "kubernetes cleanup-pods")
    namespace = args.namespace
    if namespace == conf.get("kubernetes_executor", "namespace"):
        namespace = conf.get("kubernetes_executor", "namespace", team_name=team)
    return team, namespace


def is_pod_of_team(pod: Any, team: str) -> bool:
    from airflow.teams import ids

    dag_id = (pod.metadata.annotations or {}).get("dag_id")
    return dag_id is not None and ids.team_of(dag_id) == team


def team_cluster_settings(team_name: str) -> dict[str, Any]:
    """Return the arguments of a team's default Kubernetes client: the team's own kube config."""
    from airflow.configuration import conf

    return {
        "in_cluster": conf.getboolean("kubernetes_executor", "in_cluster", team_name=team_name),
        "cluster_context": conf.get(
            "kubernetes_executor", "cluster_context", fallback=None, team_name=team_name
        ),
        "config_file": conf.get("kubernetes_executor", "config_file", fallback=None, team_name=team_name),
    }
