#
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
The team this process serves: one scope, set once by each command, read through ``serving_team()``.

A component serves one team when its command says so: ``--team T`` of a dag-processor, triggerer,
Celery worker or internal API (``serve_team_of_flag``), or the DAG whose code ``airflow tasks run``,
``tasks test``, ``dags test`` or ``dags backfill`` runs (``serve_team_of_dag``). The command sets it at
start; it cannot change afterwards, so nothing later in the process can make it serve another team.
Processes it starts inherit it through the environment, however they start (fork, spawn, gunicorn,
``exec``): a child of a team's process serves that team too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argparse import Namespace

SERVED_TEAM_ENV = "_AIRFLOW_TEAMS_SERVED_TEAM"
# Set by a team's internal API, which serves a team but never runs its code (nor imports its plugins).
NO_TEAM_CODE_ENV = "_AIRFLOW_TEAMS_NO_TEAM_CODE"
_serving_team: str | None = os.environ.get(SERVED_TEAM_ENV) or None


class ForeignTeamError(Exception):
    """A process serving one team was handed work of another team."""


def serve(team: str) -> None:
    """Make this process serve ``team``; refused if it already serves another team."""
    global _serving_team
    if _serving_team is not None and _serving_team != team:
        raise ForeignTeamError(
            f"This process serves team {_serving_team!r}; it cannot serve team {team!r} as well."
        )
    _serving_team = team
    os.environ[SERVED_TEAM_ENV] = team
    from airflow.teams import plugins

    plugins.add_served_team_plugins()


def stop_serving() -> None:
    """Serve no team again: for tests, which play several processes in one interpreter; no command calls it."""
    global _serving_team
    _serving_team = None
    os.environ.pop(SERVED_TEAM_ENV, None)


def serving_team() -> str | None:
    """Return the team this process serves, or None (a component shared by all teams)."""
    return _serving_team


def runs_team_code() -> bool:
    """Whether this process runs its team's code: it serves a team, and is not the team's internal API."""
    return _serving_team is not None and not os.environ.get(NO_TEAM_CODE_ENV)


def serve_team_of_flag(args: Namespace, component: str) -> str | None:
    """
    Make a component serve the team of its ``--team``; exit with one line if that is wrong.

    In multi-team mode the component must serve exactly one configured team; outside it ``--team``
    is refused.
    """
    from airflow.teams import config, multi_team_enabled

    team = getattr(args, "team", None)
    if not multi_team_enabled():
        if team:
            raise SystemExit(f"airflow {component} --team needs [core] multi_team = True.")
        return None
    if not team:
        raise SystemExit(
            f"In multi-team mode (`[core] multi_team = True`) every {component} serves one team: start it "
            f"as `airflow {component} --team <team>`. Configured teams: {', '.join(config.load().teams)}."
        )
    if component == "internal-api":
        os.environ[NO_TEAM_CODE_ENV] = "1"
    return _serve_configured(team)


def serve_team_of_dag(dag_id: str) -> str | None:
    """
    Make a command that runs a DAG's code serve the DAG's team; exit with one line if that is wrong.

    A process that already serves another team (a worker started with ``--team``) refuses the DAG.
    """
    from airflow.teams import ids, multi_team_enabled

    if not multi_team_enabled():
        return None
    team = ids.team_of(dag_id)
    if team is None:
        raise SystemExit(f"DAG id {dag_id!r} has no team: in multi-team mode DAG ids are '<team>:<name>'.")
    return _serve_configured(team)


def _serve_configured(team: str) -> str:
    """Serve ``team`` if it is configured and this process serves no other; else exit with one line."""
    from airflow.teams import config

    try:
        config.load().team(team)
        serve(team)
    except (config.UnknownTeamError, ForeignTeamError) as err:
        raise SystemExit(str(err))
    return team


def refuse_foreign_dag(dag_id: str | None) -> None:
    """In a process serving a team, refuse work on another team's DAG."""
    from airflow.teams import ids

    if _serving_team is None or dag_id is None:
        return
    if (team := ids.team_of(dag_id)) != _serving_team:
        raise ForeignTeamError(
            f"Refusing DAG {dag_id!r} (team {team!r}): this process serves team {_serving_team!r} only."
        )


def only_served_team_references(*fields: str):
    """
    Return a pydantic validator that keeps, in ``fields``, the references to DAGs of the team served.

    In a team's internal API a dataset lists only the team's consuming DAGs and producing tasks: its
    other consumers and producers are other teams' DAGs. None without pydantic 2 (no internal API).
    """
    from airflow.utils.pydantic import is_pydantic_2_installed

    if not is_pydantic_2_installed():
        return None
    from pydantic import field_validator

    def keep_served_team(references: list) -> list:
        if _serving_team is None:
            return references
        from airflow.teams import ids

        return [reference for reference in references if ids.team_of(reference.dag_id) == _serving_team]

    return field_validator(*fields)(keep_served_team)
