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
Connections and Variables in multi-team mode: never from the metadata database.

Each team's processes read them from the team's own secrets backend (the team's ``[secrets] backend``
and ``backend_kwargs``, e.g. ``AIRFLOW__TEAM_A___SECRETS__BACKEND``; the global backend is NOT
inherited) and from the ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` variables of their own environment.
Processes that serve no team (scheduler, webserver, plain CLI) use the global ``[secrets] backend``
and their environment. Writing a Connection or Variable to the metadata database is refused.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

from airflow.exceptions import AirflowException
from airflow.teams import multi_team_enabled, process_team

if TYPE_CHECKING:
    from flask import Flask

    from airflow.secrets import BaseSecretsBackend

DISABLED_REASON = (
    "In multi-team mode ([core] multi_team = True) Connections and Variables are not stored in the "
    "metadata database: each team reads them from its own secrets backend (the team's [secrets] backend, "
    "or AIRFLOW_CONN_* / AIRFLOW_VAR_* environment variables of its components)."
)
ENVIRONMENT_BACKEND = "airflow.secrets.environment_variables.EnvironmentVariablesBackend"


class MetastoreSecretsDisabledError(AirflowException):
    """A Connection or Variable was to be written to (or read from) the metadata database."""


def search_path(global_backends: list[BaseSecretsBackend]) -> list[BaseSecretsBackend]:
    """Return the backends this process reads Connections and Variables from in multi-team mode."""
    from airflow.secrets.metastore import MetastoreBackend

    team = process_team.serving_team()
    if team is not None:
        return _team_backends(team, *_team_backend_settings(team))
    return [backend for backend in global_backends if not isinstance(backend, MetastoreBackend)]


def _team_backend_settings(team: str) -> tuple[str | None, str | None]:
    from airflow.teams.config import TeamConf

    team_conf = TeamConf(team)
    return team_conf.team_value("secrets", "backend"), team_conf.team_value("secrets", "backend_kwargs")


@functools.lru_cache(maxsize=8)
def _team_backends(team: str, backend: str | None, backend_kwargs: str | None) -> list[BaseSecretsBackend]:
    from airflow.utils.module_loading import import_string

    backends = []
    if backend:
        try:
            kwargs = json.loads(backend_kwargs) if backend_kwargs else {}
        except json.JSONDecodeError as err:
            raise MetastoreSecretsDisabledError(
                f"The [secrets] backend_kwargs of team {team!r} is not valid JSON: {err.msg}."
            ) from None
        backends.append(import_string(backend)(**kwargs))
    backends.append(import_string(ENVIRONMENT_BACKEND)())
    return backends


def refuse_metastore_write(what: str) -> None:
    if multi_team_enabled():
        raise MetastoreSecretsDisabledError(
            f"Cannot store {what} in the metadata database. {DISABLED_REASON}"
        )


def guard_model(model: type) -> None:
    """Refuse every ORM insert, update and delete of ``model`` rows while multi-team mode is on."""
    from sqlalchemy import event

    def refuse(mapper, connection, target) -> None:
        refuse_metastore_write(f"{model.__name__} {target!r}")

    for name in ("before_insert", "before_update", "before_delete"):
        event.listen(model, name, refuse)


def refuse_api(resource: str) -> None:
    """REST API endpoints of Connections and Variables answer 403 in multi-team mode."""
    if multi_team_enabled():
        from airflow.api_connexion.exceptions import PermissionDenied

        raise PermissionDenied(title=f"{resource} are disabled in multi-team mode", detail=DISABLED_REASON)


def skip_default_connections() -> bool:
    return multi_team_enabled()


DISABLED_VIEWS = {"ConnectionModelView": "Connections", "VariableModelView": "Variables"}
# Inside Airflow's layout (navbar included), as any other page of the UI.
DISABLED_PAGE = """{% extends "airflow/main.html" %}
{% block content %}
  <h2>{{ title }} are disabled in multi-team mode</h2>
  <p>{{ reason }}</p>
  <p><a href="{{ url_for('Airflow.index') }}">Back to the DAGs</a></p>
{% endblock %}
"""


def disable_connections_and_variables(app: Flask) -> None:
    """Drop the Connections and Variables menu items and answer their pages with an explanatory 403."""
    if not multi_team_enabled():
        return
    from flask import render_template_string, request

    admin = app.appbuilder.menu.find("Admin")
    if admin is not None:
        admin.childs = [item for item in admin.childs if item.name not in DISABLED_VIEWS.values()]

    @app.before_request
    def refuse_disabled_views():
        title = DISABLED_VIEWS.get(request.blueprint or "")
        if title is not None:
            page = render_template_string(
                DISABLED_PAGE,
                title=title,
                reason=DISABLED_REASON,
                appbuilder=app.appbuilder,
                base_template=app.appbuilder.base_template,
            )
            return page, 403
