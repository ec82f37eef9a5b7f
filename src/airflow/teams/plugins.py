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
Team plugins: a team's plugin code is imported by that team's processes only.

In multi-team mode a plugin belongs to a team when its file is in the team's plugins folder, the team's
``[core] plugins_folder`` (``AIRFLOW__<TEAM>___CORE__PLUGINS_FOLDER``), by default
``<[core] plugins_folder>/<team>``. The shared components (scheduler, webserver, every internal API: they
hold the database credentials and serve all teams) load the shared plugins only and never import a
team's plugin module. A process that runs a team's code (its dag-processor, triggerer, workers and tasks)
loads the shared plugins and its own team's, never another team's.

A team plugin contributes what runs in its team's processes: macros (in its team's templates only),
listeners, hook lineage readers and the modules its DAGs import. What only shared processes use (web
views, blueprints and menu links, timetables and priority weight strategies the scheduler must load,
operator extra links and task dependencies the webserver and scheduler evaluate, executors) is dropped
from a team plugin with one warning: it would have to run a team's code in a shared process.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Iterable, Iterator

from airflow.teams import multi_team_enabled, paths, process_team

if TYPE_CHECKING:
    from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

# What a team plugin may not contribute: used only by shared components.
SHARED_ONLY_ATTRIBUTES = (
    "admin_views",
    "appbuilder_menu_items",
    "appbuilder_views",
    "executors",
    "flask_blueprints",
    "global_operator_extra_links",
    "menu_links",
    "operator_extra_links",
    "priority_weight_strategies",
    "ti_deps",
    "timetables",
)
_late_load_of: str | None = None  # while a process that already loaded plugins adds its team's
_loaded_team: str | None = None  # the team whose folder this process (or the one it forked from) loaded


def team_plugins_folder(team: str) -> str:
    """Return the plugins folder of ``team``."""
    from airflow import settings
    from airflow.teams.config import TeamConf

    configured = TeamConf(team).team_value("core", "plugins_folder")
    folder = os.path.expanduser(configured) if configured else os.path.join(settings.PLUGINS_FOLDER, team)
    return os.path.realpath(folder)  # the plugins manager follows symbolic links: compare real paths


def _team_folders() -> dict[str, str]:
    from airflow.teams import config

    return {team: team_plugins_folder(team) for team in config.load().teams}


def team_of_plugin_file(path: str) -> str | None:
    """Return the team whose plugins folder holds ``path``, or None (a shared plugin)."""
    path = os.path.realpath(path)
    return next((team for team, folder in _team_folders().items() if paths.below(path, folder)), None)


def search_locations(locations: list[tuple[str, Iterable[str]]]) -> list[tuple[str, Iterable[str]]]:
    """
    Return where this process looks for plugin files (``(module prefix, files)`` as the plugins manager).

    The shared locations without any team's folder; and the folder of the team this process serves when
    it runs the team's code; only that folder when the team's plugins are added late.
    """
    if not multi_team_enabled():
        return locations
    from airflow.utils.file import find_path_from_directory

    global _loaded_team
    own: list[tuple[str, Iterable[str]]] = []
    if (team := _code_team()) is not None and os.path.isdir(folder := team_plugins_folder(team)):
        own.append(("", find_path_from_directory(folder, ".airflowignore")))
        _loaded_team = team
    if _late_load_of is not None:
        return own
    shared = [(prefix, _without_team_files(files)) for prefix, files in locations]
    return shared + own


def _without_team_files(files: Iterable[str]) -> Iterator[str]:
    folders = list(_team_folders().values())
    for path in files:
        if not any(paths.below(os.path.realpath(path), folder) for folder in folders):
            yield path


def _code_team() -> str | None:
    """Return the team whose code this process runs: its served team, unless it is an internal API."""
    return process_team.serving_team() if process_team.runs_team_code() else None


def restrict(plugin: AirflowPlugin, path: str) -> None:
    """Drop from a team's plugin what only shared components use, with one warning naming the team."""
    if not multi_team_enabled() or (team := team_of_plugin_file(path)) is None:
        return
    if dropped := [name for name in SHARED_ONLY_ATTRIBUTES if getattr(plugin, name, None)]:
        for name in dropped:
            setattr(plugin, name, [])
        log.warning(
            "Plugin %s of team %s: ignoring %s: shared components (scheduler, webserver) never run a team's "
            "plugin code; move these to a shared plugin in [core] plugins_folder outside the teams' folders.",
            plugin.name,
            team,
            ", ".join(dropped),
        )


def add_served_team_plugins() -> None:
    """
    Load the plugins of the team this process now serves when it loaded the shared plugins before.

    A process forked from a shared one (a task of a scheduler's LocalExecutor) or that loaded plugins at
    import (``[core] lazy_load_plugins = False``) learns its team later; its team's macros and listeners
    are added then.
    """
    global _late_load_of
    manager = sys.modules.get("airflow.plugins_manager")
    team = _code_team()
    if manager is None or manager.plugins is None or team in (None, _loaded_team) or not multi_team_enabled():
        return
    before = len(manager.plugins)
    _late_load_of = team
    try:
        manager.load_plugins_from_plugin_directory()
    finally:
        _late_load_of = None
    added = manager.plugins[before:]
    if not added:
        return
    manager.macros_modules = None  # integrated again, with the team's macros
    manager.hook_lineage_reader_classes = None
    listeners = sys.modules.get("airflow.listeners.listener")
    if listeners is not None and listeners._listener_manager is not None:
        for plugin in added:
            for listener in plugin.listeners:
                listeners._listener_manager.add_listener(listener)


def folders_named_like_other_teams(team_names: set[str]) -> list[str]:
    """
    Return the folders in ``[core] plugins_folder`` named after one of ``team_names`` that hold Python files.

    For teams that are not configured: every component loads those folders as shared plugins.
    """
    from airflow import settings

    root = settings.PLUGINS_FOLDER
    if not root or not os.path.isdir(root):
        return []
    configured, found = set(_team_folders().values()), []
    for name in sorted(set(os.listdir(root)) & team_names):
        folder = os.path.join(root, name)
        if os.path.realpath(folder) in configured or not os.path.isdir(folder):
            continue
        if any(file.endswith(".py") for _, _, files in os.walk(folder, followlinks=True) for file in files):
            found.append(folder)
    return found
