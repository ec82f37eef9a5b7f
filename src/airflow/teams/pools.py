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
Team pools in multi-team mode.

A pool named ``<team>:<name>`` belongs to that team; a pool without a team prefix (``default_pool``
among them) is shared by all teams. A team's tasks use only the team's own pools and shared ones, so
one team cannot fill another team's pool: a DAG that names another team's pool is an import error of
its file, and the scheduler fails a task instance whose pool is another team's (a serialized DAG or a
task instance changed in the database). A team may have a default pool of its own (the team's
``[core] default_pool``): its tasks in ``default_pool`` then use it. Users see and manage the pools of
their teams and the shared ones.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow.exceptions import AirflowException
from airflow.teams import config, ids, multi_team_enabled

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.orm import Session

    from airflow.models.dag import DAG
    from airflow.models.taskinstance import TaskInstance


class TeamPoolError(AirflowException):
    """A team's task names a pool of another team."""


def validate_pool_name(pool: str) -> None:
    """Check a task's pool name as upstream does; in multi-team mode a team's pool is '<team>:<name>'."""
    from airflow.utils.helpers import validate_key

    team, name = ids.split(pool)
    if team is None or not multi_team_enabled():
        validate_key(pool)
        return
    if problem := ids.team_name_problem(team):
        raise TeamPoolError(f"Pool {pool!r} has an invalid team prefix {team!r}: {problem}.")
    validate_key(name)


def pool_owner_outside(pool: str, teams: Collection[str | None]) -> str | None:
    """Return the team that owns ``pool`` if it is none of ``teams`` (who may then not use it), else None."""
    owner = ids.team_of(pool)
    return owner if owner is not None and owner not in teams else None


def _rule(team: str | None) -> str:
    return f"a team's tasks use only its own pools ('{team}:<name>') and shared pools (no team prefix)"


def team_default_pool(team: str) -> str | None:
    """Return the team's own default pool (the team's ``[core] default_pool``), or None."""
    return config.TeamConf(team).team_value("core", "default_pool")


def use_team_pools(dag: DAG, team: str | None) -> None:
    """
    At parse time, put a team's tasks in the team's pools.

    Tasks in ``default_pool`` move to the team's default pool, if it has one; a task in another team's
    pool is refused (an import error of the file, naming both teams).
    """
    if not multi_team_enabled() or team is None:
        return
    from airflow.models.pool import Pool

    default = team_default_pool(team)
    for task in dag.tasks:
        if default and task.pool == Pool.DEFAULT_POOL_NAME:
            task.pool = default
        if owner := pool_owner_outside(task.pool, {team}):
            raise TeamPoolError(
                f"Task {task.task_id!r} of DAG {dag.dag_id!r} (team {team!r}) may not use pool {task.pool!r} "
                f"of team {owner!r}: {_rule(team)}."
            )


def fail_task_in_foreign_pool(ti: TaskInstance, session: Session) -> bool:
    """In the scheduler: fail (and return True for) a task instance whose pool is another team's."""
    if not multi_team_enabled():
        return False
    team = ids.team_of(ti.dag_id)
    owner = pool_owner_outside(ti.pool, {team})
    if owner is None:
        return False
    from airflow.teams import denials
    from airflow.utils.state import TaskInstanceState

    ti.set_state(TaskInstanceState.FAILED, session=session)
    denials.record(
        "teams.pool_denied",
        f"Failing {ti}: its pool {ti.pool!r} is a pool of team {owner!r}; {_rule(team)}.",
        team=team,
        target_team=owner,
        dag_id=ti.dag_id,
        obj=f"pool {ti.pool} for task {ti.task_id} of run {ti.run_id}",
        reason=f"the pool is team {owner!r}'s; {_rule(team)}",
        tags={"dag_id": ti.dag_id, "pool": ti.pool},
        session=session,
        level=logging.ERROR,  # a task failed
    )
    return True
