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

"""An auth manager for multi-team deployments built on the FAB auth manager."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from airflow.auth.managers.models.resource_details import DagAccessEntity
from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
from airflow.teams import ids, multi_team_enabled
from airflow.teams.team_switcher import MENU
from airflow.utils.session import NEW_SESSION, provide_session

if TYPE_CHECKING:
    from collections.abc import Container

    from sqlalchemy.orm import Session

    from airflow.auth.managers.base_auth_manager import ResourceMethod
    from airflow.auth.managers.models.resource_details import DagDetails

TEAM_ROLE_PREFIX = "team:"


class FabTeamRolesAuthManager(FabAuthManager):
    """
    The FAB auth manager, knowing teams: a role named ``team:<pattern>`` puts its users in those teams.

    The pattern is a team name or a glob (``team:*`` is every team). In multi-team mode a user sees and
    acts on the DAGs of its teams only, within what its other roles allow; outside it the team roles
    change nothing. A team's members read its audit log, whatever their other roles say about it.
    Set ``[core] auth_manager = airflow.teams.fab_auth_manager.FabTeamRolesAuthManager``.
    """

    def get_user_teams(self, user=None) -> set[str]:
        if not multi_team_enabled():
            return set()
        from airflow.teams import config

        user = user if user is not None else self.get_user()
        roles = getattr(user, "roles", None) or ()
        patterns = [
            role.name[len(TEAM_ROLE_PREFIX) :] for role in roles if role.name.startswith(TEAM_ROLE_PREFIX)
        ]
        return {team for team in config.load().teams if any(fnmatch.fnmatchcase(team, p) for p in patterns)}

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
        user=None,
    ) -> bool:
        if multi_team_enabled():
            teams = self.get_user_teams(user)
            if teams and access_entity == DagAccessEntity.AUDIT_LOG and method in ("GET", MENU):
                # A team's members read its audit log (refusals included): a DAG's rows with the DAG, the
                # list narrowed to the DAGs they may read (upstream's DagFilter, the event log API). Not a
                # member of every team: that list would not be narrowed, rows of no DAG included, so
                # upstream's Audit Logs permission decides for them.
                if self._in_every_team(teams):
                    return super().is_authorized_dag(
                        method=method, access_entity=access_entity, details=details, user=user
                    )
                if details and details.id:
                    return self.is_authorized_dag(method="GET", details=details, user=user)
                return super().is_authorized_dag(method="GET", user=user)
            if details and details.id:
                if ids.team_of(details.id) not in teams:
                    return False
            elif method == MENU:
                if not teams:
                    return False  # the navbar's "DAGs": for a member of any team, which lists its teams' DAGs
            elif access_entity is None and not self._in_every_team(teams):
                return False  # "all DAGs" means every team's DAGs
        return super().is_authorized_dag(
            method=method, access_entity=access_entity, details=details, user=user
        )

    @provide_session
    def get_permitted_dag_ids(
        self,
        *,
        methods: Container[ResourceMethod] | None = None,
        user=None,
        session: Session = NEW_SESSION,
    ) -> set[str]:
        permitted = super().get_permitted_dag_ids(methods=methods, user=user, session=session)
        if not multi_team_enabled():
            return permitted
        teams = self.get_user_teams(user)
        return {dag_id for dag_id in permitted if ids.team_of(dag_id) in teams}

    @staticmethod
    def _in_every_team(teams: set[str]) -> bool:
        from airflow.teams import config

        return set(config.load().teams) <= teams
