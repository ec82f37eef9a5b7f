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
What a user sees in multi-team mode.

The webserver's and the REST API's DAG-bound views, files, triggers and pools are narrowed to the DAGs the
auth manager lets the user read and to the pools of the user's teams.
"""

from __future__ import annotations

from flask_appbuilder.models.filters import BaseFilter

from airflow.teams import ids, multi_team_enabled, paths, pools
from airflow.teams.team_switcher import selected_team


def readable_dag_ids() -> set[str] | None:
    """Return the DAG ids the current user may read (once per request); None outside multi-team mode."""
    if not multi_team_enabled():
        return None
    from flask import g
    from sqlalchemy.orm import Session

    from airflow import settings
    from airflow.www.extensions.init_auth_manager import get_auth_manager

    if "teams_readable_dag_ids" not in g:
        # Not the request's scoped session: closing it would detach the objects being serialized.
        with Session(settings.engine) as session:
            permitted = get_auth_manager().get_permitted_dag_ids(methods=["GET"], session=session)
        g.teams_readable_dag_ids = permitted
    return g.teams_readable_dag_ids


def dependency_node(end: str) -> str:
    """
    Return the graph node id of a dependency's end: a node id (``dataset:...``) or a DAG id.

    Upstream takes an end with a ``:`` for a node id; a team's DAG id (``team_a:etl``) has one as well.
    """
    from airflow.teams import config

    if multi_team_enabled() and ids.team_of(end) in config.load().teams:
        return f"dag:{end}"
    return end if ":" in end else f"dag:{end}"  # upstream's rule: a node id is "<kind>:<name>"


def readable_dag_ids_of(dag_ids: list[str]) -> list[str]:
    """Keep the DAG ids the user may read: a filter naming another team's DAG finds nothing."""
    readable = readable_dag_ids()
    return dag_ids if readable is None else [dag_id for dag_id in dag_ids if dag_id in readable]


def readable_tags(tags: list, session) -> list:
    """Keep the (name,) rows of the tags of DAGs the user may read (the home page's tag filter)."""
    readable = readable_dag_ids()
    if readable is None:
        return tags
    from sqlalchemy import select

    from airflow.models.dag import DagTag

    names = set(session.scalars(select(DagTag.name).where(DagTag.dag_id.in_(readable))))
    return [row for row in tags if row[0] in names]


def without_unreadable_dags(dataset: dict) -> dict:
    """Drop from a dumped dataset the producing tasks and consuming DAGs the user may not read."""
    readable = readable_dag_ids()
    if readable is None:
        return dataset
    for key in ("producing_tasks", "consuming_dags"):
        if key in dataset:
            dataset[key] = [reference for reference in dataset[key] if reference["dag_id"] in readable]
    return dataset


SOURCE_FIELDS = ("source_dag_id", "source_task_id", "source_run_id", "source_map_index")


def without_unreadable_source(event: dict) -> dict:
    """Hide in a dumped dataset event the producing task and the created runs the user may not read."""
    readable = readable_dag_ids()
    if readable is None:
        return event
    if event.get("source_dag_id") is not None and event["source_dag_id"] not in readable:
        event.update(dict.fromkeys(SOURCE_FIELDS))
    if "created_dagruns" in event:
        event["created_dagruns"] = [run for run in event["created_dagruns"] if run["dag_id"] in readable]
    return event


def listed_dataset_events() -> list:
    """
    Return the conditions that keep the dataset events listed (and counted) to the UI's or API's user.

    In multi-team mode: an event is listed with the DAG that produced it, and to the teams its producer
    admitted (its own, those its ``allow_consuming_by_teams`` named, every team for a team-less
    producer); a user who may read every DAG lists every event.
    """
    if not multi_team_enabled():
        return []
    from airflow.models.dataset import DatasetEvent
    from airflow.teams.triggering import events_reaching
    from airflow.teams.user_teams import current_user_teams
    from airflow.www.extensions.init_auth_manager import get_auth_manager

    auth_manager = get_auth_manager()
    if auth_manager.is_authorized_dag(method="GET"):
        return []
    readable = auth_manager.get_permitted_dag_ids(methods=["GET"])
    return [events_reaching(current_user_teams(), DatasetEvent.source_dag_id.in_(readable))]


def events_reaching_dag(dag_id: str) -> list:
    """Return the conditions that keep dataset events to those that may reach the team of ``dag_id``."""
    from airflow.teams.triggering import events_reaching_team

    return events_reaching_team(ids.team_of(dag_id))


def only_readable_dags(dag_id_column) -> tuple:
    """Return the extra condition that keeps a query's rows to readable DAGs (none outside multi-team mode)."""
    readable = readable_dag_ids()
    return () if readable is None else (dag_id_column.in_(readable),)


def _user_team_folders() -> list[str]:
    """Return the DAG folders of the user's teams (narrowed to the selected team)."""
    from airflow.teams import config
    from airflow.www.extensions.init_auth_manager import get_auth_manager

    teams = get_auth_manager().get_user_teams()
    if (selected := selected_team()) is not None:
        teams = teams & {selected}
    configured = config.load().teams
    return [
        folder for team in sorted(teams) if team in configured for folder in configured[team].dags_folders
    ]


def or_team_files(condition, filename_column):
    """
    Widen a "files with readable DAGs" condition on import errors to the files of the user's teams.

    The folder of a file names its team, so the errors of a team's files that never produced a DAG
    are shown to the team's users, not only to users who may read every DAG.
    """
    if readable_dag_ids() is None:
        return condition
    from sqlalchemy import or_

    return or_(condition, *(paths.sql_below(filename_column, folder) for folder in _user_team_folders()))


def is_team_file(filename: str) -> bool:
    """Whether an import error's file is below a DAG folder of one of the user's teams."""
    if readable_dag_ids() is None:
        return False
    return any(paths.below(filename, folder) for folder in _user_team_folders())


class ReadableTriggersFilter(BaseFilter):
    """The triggers list's filter: the triggers that run a task of a DAG the user may read."""

    def apply(self, query, value):
        readable = readable_dag_ids()
        if readable is None:
            return query
        from sqlalchemy import select

        from airflow.models.taskinstance import TaskInstance

        used = select(TaskInstance.trigger_id).where(TaskInstance.dag_id.in_(readable))
        return query.where(self.model.id.in_(used))


def pool_teams() -> set[str] | None:
    """
    Return the teams whose pools the user sees, with the shared ones; None for every pool.

    Every pool outside multi-team mode and with an auth manager that knows no teams (as for DAGs).
    """
    if not multi_team_enabled():
        return None
    from airflow.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.www.extensions.init_auth_manager import get_auth_manager

    auth_manager = get_auth_manager()
    if type(auth_manager).get_user_teams is BaseAuthManager.get_user_teams:
        return None
    return auth_manager.get_user_teams()


def visible_pools(query):
    """Narrow a query of pools to the shared pools and the pools of the user's (selected) teams."""
    teams = pool_teams()
    if teams is None:
        return query
    if (selected := selected_team()) in teams:
        teams = {selected}  # the switcher narrows the list; what a user may change stays its teams' pools
    from sqlalchemy import or_

    from airflow.models.pool import Pool

    own = (ids.sql_of_team(Pool.pool, team) for team in sorted(teams))
    return query.where(or_(ids.sql_without_team(Pool.pool), *own))


def visible_pool_count(total: int, session) -> int:
    """Return the number of pools the user sees, for a list's ``total_entries`` (``total``: of all)."""
    if pool_teams() is None:
        return total
    from sqlalchemy import func, select

    from airflow.models.pool import Pool

    return session.scalar(visible_pools(select(func.count(Pool.id))))


def _pool_team_not_the_users(name: str) -> str | None:
    teams = pool_teams()
    return None if teams is None else pools.pool_owner_outside(name, teams)


def refuse_invisible_pool(name: str) -> None:
    """Answer a pool of another team's as if it did not exist (reading, changing, deleting it)."""
    from airflow.api_connexion.exceptions import NotFound

    if _pool_team_not_the_users(name):
        raise NotFound(detail=f"Pool with name:'{name}' not found")


def refuse_pool_of_another_team(name: str | None) -> None:
    """Refuse creating (or renaming a pool to) a pool of a team that is not the user's."""
    from airflow.api_connexion.exceptions import PermissionDenied

    if name and (team := _pool_team_not_the_users(name)):
        raise PermissionDenied(
            detail=f"Pool {name!r} would belong to team {team!r}; you may create the pools of your teams "
            f"({', '.join(sorted(pool_teams() or ())) or 'none'}) and shared pools (no team prefix)."
        )


class VisiblePoolsFilter(BaseFilter):
    """The Pools view's filter: the shared pools and the pools of the user's teams."""

    def apply(self, query, value):
        return visible_pools(query)
