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
The navbar's team switcher.

A user of several teams narrows the DAG-bound views to one of them (``?team=`` on the REST API's lists).
Never a grant: it only narrows what the auth manager allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.teams import ids, multi_team_enabled

if TYPE_CHECKING:
    from flask import Flask

SELECTED_TEAM = "teams_selected_team"  # the session key of the team a user chose in the navbar


# The method of a navbar entry's question (FAB's menu access): showing "DAGs" is not reading all of them.
MENU = "MENU"


def selected_team() -> str | None:
    """
    Return the team the current request narrows the user's DAGs to, or None (all the user's teams).

    REST API requests name it with ``?team=``; the UI remembers the user's choice in its session, which
    also narrows the REST calls of the UI's own pages (Cluster Activity, Datasets: they send its cookie).
    """
    from flask import has_request_context, request, session

    if not multi_team_enabled() or not has_request_context():
        return None
    if request.path.startswith("/api/"):
        if request.args.get("team"):
            return request.args["team"]
        if (
            (request.view_args or {}).get("dag_id")
            or request.args.get("dag_id")
            or request.args.get("dag_ids")
        ):
            return None  # a call about named DAGs (a DAG page of another of the user's teams) is not narrowed
    return session.get(SELECTED_TEAM)


def narrow_to_selected_team(auth_manager) -> None:
    """
    Make the auth manager's DAG answers narrow to the selected team; never a grant.

    The DAGs a user may read are narrowed to the team, and the user no longer counts as reading "all
    DAGs" (views then filter by the narrowed DAG ids). A DAG of another team the user may read stays
    readable when asked for by its id.
    """
    if not multi_team_enabled():
        return
    import functools

    permitted_dag_ids = auth_manager.get_permitted_dag_ids
    is_authorized_dag = auth_manager.is_authorized_dag

    @functools.wraps(permitted_dag_ids)
    def get_permitted_dag_ids(*args, **kwargs):
        dag_ids = permitted_dag_ids(*args, **kwargs)
        team = selected_team()
        return dag_ids if team is None else {dag_id for dag_id in dag_ids if ids.team_of(dag_id) == team}

    @functools.wraps(is_authorized_dag)
    def is_authorized_all_or_dag(*, method, access_entity=None, details=None, user=None):
        if details is None and access_entity is None and method != MENU and selected_team() is not None:
            return False
        return is_authorized_dag(method=method, access_entity=access_entity, details=details, user=user)

    auth_manager.get_permitted_dag_ids = get_permitted_dag_ids
    auth_manager.is_authorized_dag = is_authorized_all_or_dag


def switcher_teams() -> list[str]:
    """Return the teams of the navbar's switcher: the user's teams, if more than one."""
    from airflow.www.extensions.init_auth_manager import get_auth_manager

    if not multi_team_enabled() or not get_auth_manager().is_logged_in():
        return []
    teams = sorted(get_auth_manager().get_user_teams())
    return teams if len(teams) > 1 else []


def init_team_switcher(app: Flask) -> None:
    """Add the navbar's team switcher (``/teams/select``) and the teams' template globals."""
    if not multi_team_enabled():
        return
    from flask import Blueprint, abort, redirect, request, session, url_for

    blueprint = Blueprint("teams", __name__, url_prefix="/teams")

    @blueprint.route("/select")
    def select():
        team = request.args.get("team") or None
        if team is not None and team not in switcher_teams():
            abort(400, f"{team!r} is not one of your teams.")
        session[SELECTED_TEAM] = team
        target = request.args.get("next") or ""
        # only a path of this site (no scheme, no host): the switcher returns to the page it was on
        return redirect(
            target if target.startswith("/") and not target.startswith("//") else url_for("Airflow.index")
        )

    app.register_blueprint(blueprint)
    app.jinja_env.globals["teams_switcher"] = lambda: {"teams": switcher_teams(), "selected": selected_team()}
    app.jinja_env.globals["teams_team_of"] = ids.team_of
    from airflow.teams import denials

    app.jinja_env.globals["teams_refused_dataset_events"] = denials.refused_dataset_events
