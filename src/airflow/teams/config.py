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
The multi-team configuration: which teams exist, their executors and DAG folders, and each team's config.

With ``[core] multi_team = True``, ``[core] executor`` is a JSON object mapping each team to its
executors::

    {
        "team_a": [
            {
                "name": "team_a_celery",
                "class": "CeleryExecutor",
                "config": {"celery": {"broker_url": "redis://redis-a:6379/0"}},
            },
            {"name": "team_a_local", "class": "LocalExecutor"},
        ],
        "team_b": [{"name": "team_b_local", "class": "LocalExecutor"}],
    }

A team's own configuration is read, in this order, from the executor's ``config``, then
``AIRFLOW__<TEAM>___<SECTION>__<KEY>`` environment variables, then ``[<team>=<section>]`` sections of
airflow.cfg, then the global configuration (see :class:`TeamConf`). A team's DAG folders are its
``[core] dags_folder`` (comma-separated for several), by default ``<[core] dags_folder>/<team>``.
"""

from __future__ import annotations

import functools
import json
import os
from configparser import ConfigParser
from dataclasses import dataclass
from typing import Any, Mapping

from airflow.configuration import AirflowConfigParser, conf
from airflow.exceptions import AirflowConfigException
from airflow.teams import ids, paths

EXECUTOR_KEYS = ("name", "class", "config")
# Core executors that bundle two executors in one; a team lists the two separately instead.
COMBINED_EXECUTORS = ("CeleryKubernetesExecutor", "LocalKubernetesExecutor")
EXAMPLE = '{"team_a": [{"name": "team_a_local", "class": "LocalExecutor"}]}'
TEAM_SECTION_SEPARATOR = "="
TEAM_ENV_SEPARATOR = "___"


class TeamsConfigError(AirflowConfigException):
    """The multi-team configuration is wrong; the message names the option and the fix."""


class UnknownTeamError(TeamsConfigError):
    """A team that is not configured in ``[core] executor``."""


@dataclass(frozen=True)
class ExecutorSpec:
    """One executor of a team, as configured."""

    team: str
    name: str
    class_name: str
    config: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class Team:
    """A configured team: its executors and DAG folders."""

    name: str
    executors: tuple[ExecutorSpec, ...]
    dags_folders: tuple[str, ...]

    def owns_path(self, path: str) -> bool:
        path = os.path.abspath(path)
        return any(paths.within(path, folder) for folder in self.dags_folders)


@dataclass(frozen=True)
class TeamsConfig:
    """The validated teams of ``[core] executor``, by name."""

    teams: Mapping[str, Team]

    def team(self, name: str) -> Team:
        try:
            return self.teams[name]
        except KeyError:
            raise UnknownTeamError(
                f"Unknown team {name!r}: [core] executor configures the teams {', '.join(self.teams)}."
            ) from None

    def team_for_path(self, path: str) -> str | None:
        """Return the team whose DAG folder holds ``path``, or None."""
        for team in self.teams.values():
            if team.owns_path(path):
                return team.name
        return None

    def executors(self) -> list[ExecutorSpec]:
        return [executor for team in self.teams.values() for executor in team.executors]


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise TeamsConfigError(f"[core] executor: {key!r} appears twice in the same JSON object.")
        seen[key] = value
    return seen


def _parse_executor_entry(team: str, position: int, entry: object) -> ExecutorSpec:
    where = f"[core] executor: team {team!r}, executor #{position}"
    if not isinstance(entry, dict):
        raise TeamsConfigError(
            f"{where} must be an object with 'name' and 'class' (and optionally 'config'), "
            f"not {json.dumps(entry)}. Example: {EXAMPLE}"
        )
    if unknown := sorted(set(entry) - set(EXECUTOR_KEYS)):
        raise TeamsConfigError(
            f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(EXECUTOR_KEYS)}."
        )
    for key in ("name", "class"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise TeamsConfigError(f"{where} needs a non-empty string {key!r}. Example: {EXAMPLE}")
    name = entry["name"].strip()
    if ids.has_separator(name) or "," in name:
        raise TeamsConfigError(f"{where}: executor name {name!r} may not contain {ids.SEPARATOR!r} or ','.")
    _check_executor_class(where, entry["class"].strip())
    if entry["class"].strip().rsplit(".", 1)[-1] in COMBINED_EXECUTORS:
        raise TeamsConfigError(
            f"{where}: {entry['class'].strip()} cannot be used in multi-team mode; configure its two "
            "executors as two entries of the team instead."
        )
    config = entry.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(keys, dict) for keys in config.values()):
        raise TeamsConfigError(
            f"{where}: 'config' must map sections to objects of options, e.g. "
            '{"celery": {"broker_url": "redis://..."}}.'
        )
    options: dict[str, dict[str, str]] = {}
    for section, keys in config.items():
        for key, value in keys.items():
            if not isinstance(value, (str, int, float, bool)):
                raise TeamsConfigError(
                    f"{where}: config [{section}] {key} must be a string, number or boolean."
                )
            options.setdefault(section.lower(), {})[key.lower()] = str(value)
    return ExecutorSpec(team=team, name=name, class_name=entry["class"].strip(), config=options)


def _check_executor_class(where: str, class_name: str) -> None:
    """
    Refuse a class that is neither a core executor's alias nor a dotted path.

    Whether it imports is asked at the start of the commands that load every team's executors.
    """
    from airflow.executors.executor_loader import ExecutorLoader

    if class_name in ExecutorLoader.executors:
        return
    module, _, name = class_name.rpartition(".")
    if not module or not all(part.isidentifier() for part in (*module.split("."), name)):
        aliases = ", ".join(sorted(ExecutorLoader.executors))
        raise TeamsConfigError(
            f"{where}: class {class_name!r} is neither a core executor ({aliases}) nor a dotted path "
            "to an executor class (module.Class)."
        )


@functools.lru_cache(maxsize=8)
def parse_executor_config(raw: str) -> tuple[tuple[str, tuple[ExecutorSpec, ...]], ...]:
    """Parse and validate the JSON value of ``[core] executor`` into (team, executors) pairs."""
    text = raw.strip()
    if not text.startswith("{"):
        raise TeamsConfigError(
            f"[core] executor is {raw!r}, a single-team executor list, but [core] multi_team is True. "
            f"Set [core] executor to a JSON object mapping each team to its executors, e.g. {EXAMPLE}, "
            "or set [core] multi_team = False."
        )
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as err:
        raise TeamsConfigError(
            f"[core] executor is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}). "
            f"With [core] multi_team = True it maps each team to its executors, e.g. {EXAMPLE}."
        ) from None
    if not document:
        raise TeamsConfigError(f"[core] executor configures no team. Example: {EXAMPLE}")
    teams = []
    executor_names: dict[str, str] = {}
    for team, entries in document.items():
        if problem := ids.team_name_problem(team):
            raise TeamsConfigError(f"[core] executor: invalid team name {team!r}: {problem}.")
        if team.endswith("_") or "__" in team:
            raise TeamsConfigError(
                f"[core] executor: invalid team name {team!r}: a team name may not end with '_' or contain "
                f"'__', since its variables ({team_env_var(team, '<section>', '<key>')}) would be read as "
                "another team's or another section's. Rename it."
            )
        if clash := next((t for t, _ in teams if t.upper() == team.upper()), None):
            raise TeamsConfigError(
                f"[core] executor: teams {clash!r} and {team!r} differ only in case; their "
                f"{team_env_prefix(team)}... variables would be shared. Rename one."
            )
        if not isinstance(entries, list) or not entries:
            raise TeamsConfigError(
                f"[core] executor: team {team!r} needs a non-empty list of executors. Example: {EXAMPLE}"
            )
        executors = tuple(_parse_executor_entry(team, i, entry) for i, entry in enumerate(entries, 1))
        for executor in executors:
            if executor.name in executor_names:
                raise TeamsConfigError(
                    f"[core] executor: executor name {executor.name!r} is used by team "
                    f"{executor_names[executor.name]!r} and team {team!r}; names must be unique in the deployment."
                )
            executor_names[executor.name] = team
        teams.append((team, executors))
    return tuple(teams)


def team_env_prefix(team: str) -> str:
    """Return the start of every environment variable of ``team``'s configuration: ``AIRFLOW__<TEAM>___``."""
    return f"AIRFLOW__{team.upper()}{TEAM_ENV_SEPARATOR}"


def team_env_var(team: str, section: str, key: str) -> str:
    return f"{team_env_prefix(team)}{section.upper()}__{key.upper()}"


def is_team_env_var(name: str) -> bool:
    """Whether ``name`` is spelled as a team's variable (``AIRFLOW__<TEAM>___...``), of any team."""
    return name.startswith("AIRFLOW__") and TEAM_ENV_SEPARATOR in name


def team_section(team: str, section: str) -> str:
    return f"{team}{TEAM_SECTION_SEPARATOR}{section.lower()}"


def _team_dags_folders(team: str, global_dags_folder: str) -> tuple[str, ...]:
    configured = TeamConf(team).team_value("core", "dags_folder")
    if not configured:
        return (os.path.abspath(os.path.join(global_dags_folder, team)),)
    folders = tuple(
        os.path.abspath(os.path.expanduser(f.strip())) for f in configured.split(",") if f.strip()
    )
    if not folders:
        raise TeamsConfigError(f"The [core] dags_folder of team {team!r} is empty.")
    return folders


def _build(raw: str, global_dags_folder: str) -> TeamsConfig:
    teams = {
        team: Team(name=team, executors=executors, dags_folders=_team_dags_folders(team, global_dags_folder))
        for team, executors in parse_executor_config(raw)
    }
    owners: list[tuple[str, str]] = []
    for team in teams.values():
        for folder in team.dags_folders:
            for other_team, other in owners:
                if paths.within(folder, other) or paths.within(other, folder):
                    raise TeamsConfigError(
                        f"The DAG folders of teams {other_team!r} ({other}) and {team.name!r} ({folder}) "
                        "overlap; every file must belong to exactly one team. Set each team's "
                        f"[core] dags_folder (e.g. {team_env_var(team.name, 'core', 'dags_folder')}) apart."
                    )
            owners.append((team.name, folder))
    return TeamsConfig(teams=teams)


_loaded: TeamsConfig | None = None


def load() -> TeamsConfig:
    """
    Return this process's teams: built and validated on first use, then the same immutable object.

    Meaningful with ``[core] multi_team = True``. A configuration error is raised on every call.
    """
    global _loaded
    if _loaded is None:
        _loaded = _build(conf.get("core", "executor"), os.path.expanduser(conf.get("core", "dags_folder")))
    return _loaded


def forget_loaded() -> None:
    global _loaded
    _loaded = None


def check_single_team_executor_value(raw: str) -> None:
    """Refuse a multi-team executor dict while ``[core] multi_team`` is off."""
    if raw.strip().startswith("{"):
        raise TeamsConfigError(
            "[core] executor is a JSON object (the multi-team format), but [core] multi_team is False. "
            "Set [core] multi_team = True, or set [core] executor to a comma-separated list of executors "
            "such as 'LocalExecutor'."
        )


class TeamConf:
    """
    Configuration as seen by one team (or one executor of a team).

    Lookup order: ``overrides`` (an executor's ``config``), ``AIRFLOW__<TEAM>___<SECTION>__<KEY>``,
    the ``[<team>=<section>]`` section of airflow.cfg, then the global configuration. For sensitive
    options the ``_cmd`` and ``_secret`` forms work at every team level as they do globally.
    With ``team_name=None`` it is the global configuration.
    """

    def __init__(
        self,
        team_name: str | None,
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        executor_name: str | None = None,
    ):
        self.team_name = team_name
        self.overrides = overrides or {}
        self.executor_name = executor_name

    def _sources(self, section: str, key: str):
        yield self.overrides.get(section, {}).get
        if self.team_name:
            env_prefix = team_env_var(self.team_name, section, "")
            yield lambda option: os.environ.get(env_prefix + option.upper())
            section_name = team_section(self.team_name, section)
            yield lambda option: (
                ConfigParser.get(conf, section_name, option)
                if ConfigParser.has_option(conf, section_name, option)
                else None
            )

    def team_value(self, section: str, key: str) -> str | None:
        """Return the value set for this team or executor only, or None (global config is not consulted)."""
        from airflow.configuration import _get_config_value_from_secret_backend, run_command

        section, key = section.lower(), key.lower()
        sensitive = (section, key) in conf.sensitive_config_values
        for lookup in self._sources(section, key):
            if (value := lookup(key)) is None and sensitive:
                if (command := lookup(f"{key}_cmd")) is not None:
                    value = run_command(command)
                elif (secret_path := lookup(f"{key}_secret")) is not None:
                    value = _get_config_value_from_secret_backend(secret_path)
            if value is not None:
                if sensitive:
                    from airflow.utils.log.secrets_masker import mask_secret

                    mask_secret(value)
                return value
        return None

    def get(self, section: str, key: str, **kwargs) -> str | None:
        value = self.team_value(section, key)
        if value is not None:
            return value
        kwargs.pop("_extra_stacklevel", None)
        return conf.get(section, key, **kwargs)

    def getsection(self, section: str) -> dict[str, Any] | None:
        merged = dict(conf.getsection(section) or {})
        section = section.lower()
        if self.team_name:
            section_name = team_section(self.team_name, section)
            if ConfigParser.has_section(conf, section_name):
                merged.update(ConfigParser.items(conf, section_name, raw=True))
            prefix = team_env_var(self.team_name, section, "")
            merged.update(
                {k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}
            )
        merged.update(self.overrides.get(section, {}))
        return merged or None

    # The conversions are the global parser's, applied to this class's get().
    getboolean = AirflowConfigParser.getboolean
    getint = AirflowConfigParser.getint
    getfloat = AirflowConfigParser.getfloat
    getlist = AirflowConfigParser.getlist
    getjson = AirflowConfigParser.getjson
    gettimedelta = AirflowConfigParser.gettimedelta
    has_option = AirflowConfigParser.has_option
    get_mandatory_value = AirflowConfigParser.get_mandatory_value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TeamConf) and (self.team_name, self.executor_name) == (
            other.team_name,
            other.executor_name,
        )

    def __hash__(self) -> int:
        return hash((self.team_name, self.executor_name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(team_name={self.team_name!r}, executor_name={self.executor_name!r})"


# Display of the configuration (`airflow config list`, as_dict() for the webserver and `airflow info`).
HIDDEN = "< hidden >"


def _is_sensitive(section: str, key: str) -> bool:
    return (section.lower(), key.lower()) in conf.sensitive_config_values


def masked_executor_value(raw: str) -> str:
    """``[core] executor`` with the sensitive options of executors' ``config`` hidden."""
    try:
        document = json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        return raw
    if not isinstance(document, dict):
        return raw
    for entries in document.values():
        for entry in entries if isinstance(entries, list) else ():
            config = entry.get("config") if isinstance(entry, dict) else None
            for section, options in config.items() if isinstance(config, dict) else ():
                for key in options if isinstance(options, dict) else ():
                    if _is_sensitive(section, key):
                        options[key] = HIDDEN
    return json.dumps(document)


def display_value(section: str, key: str, value: str | None) -> str | None:
    if value is not None and (section.lower(), key.lower()) == ("core", "executor"):
        return masked_executor_value(value)
    return value


def is_sensitive_option(section: str, key: str) -> bool:
    """Whether ``[section] key`` is sensitive; for a team's section (``<team>=<section>``), as ``[section]``."""
    _, separator, team_section_name = section.partition(TEAM_SECTION_SEPARATOR)
    return _is_sensitive(team_section_name if separator else section, key)


def hide_team_sections_of_file(updater) -> None:
    """Hide the sensitive options of airflow.cfg's team sections (a ``configupdater.ConfigUpdater``)."""
    for section_name in updater.sections():
        if TEAM_SECTION_SEPARATOR not in section_name:
            continue
        for key in updater.options(section_name):
            if is_sensitive_option(section_name, key):
                updater[section_name][key].value = HIDDEN


def missing_folder_problem(team: str, folder: str) -> str:
    """Return the one line for a team's DAG folder that does not exist, with the fix."""
    return (
        f"The DAG folder {folder} of team {team!r} does not exist: its dag-processor will not start. "
        f"Create it, or set {team_env_var(team, 'core', 'dags_folder')}."
    )


def settings_of_unknown_teams() -> list[str]:
    """
    Return the team settings that name no configured team.

    ``AIRFLOW__<TEAM>___...`` variables and ``[<team>=<section>]`` sections: a typo in a team name would
    otherwise be ignored without a word.
    """
    known = {team.upper() for team in load().teams}
    unknown = [
        name
        for name in sorted(os.environ)
        if is_team_env_var(name) and name[len("AIRFLOW__") :].split(TEAM_ENV_SEPARATOR, 1)[0] not in known
    ]
    for section in conf.sections():
        team, separator, _ = section.partition(TEAM_SECTION_SEPARATOR)
        if separator and team.upper() not in known:
            unknown.append(f"[{section}]")
    return unknown


def _team_of_env(name: str) -> str:
    """Team names are upper-cased in variable names; map back to a configured team when there is one."""
    try:
        teams = parse_executor_config(conf.get("core", "executor"))
    except (TeamsConfigError, AirflowConfigException):
        teams = ()
    return next((team for team, _ in teams if team.upper() == name), name.lower())


def include_team_env_var(config_sources: dict, env_var: str, display_source: bool) -> bool:
    """
    List ``AIRFLOW__<TEAM>___<SECTION>__<KEY>`` as option ``<key>`` of section ``[<team>=<section>]``.

    Returns False for variables that are not team options (upstream lists those). Sensitive values are
    hidden afterwards by :func:`hide_team_values`.
    """
    team, separator, rest = env_var[len("AIRFLOW__") :].partition(TEAM_ENV_SEPARATOR)
    section, _, key = rest.partition("__")
    if not separator or not team or not section or not key:
        return False
    value = os.environ[env_var]
    config_sources.setdefault(team_section(_team_of_env(team), section), {})[key.lower()] = (
        (value, "env var") if display_source else value
    )
    return True


def hide_team_values(config_sources: dict, display_source: bool) -> None:
    """Hide sensitive options of team sections and of executors' ``config`` in a displayed configuration."""

    def hidden(current, value=HIDDEN):
        return (value, current[1]) if display_source else value

    for section_name, options in config_sources.items():
        team, separator, section = section_name.partition(TEAM_SECTION_SEPARATOR)
        for key in options if separator else ():
            if _is_sensitive(section, key):
                options[key] = hidden(options[key])
    executor = config_sources.get("core", {}).get("executor")
    if executor is not None:
        raw = executor[0] if display_source else executor
        config_sources["core"]["executor"] = hidden(executor, masked_executor_value(raw))
