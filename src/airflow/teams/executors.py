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
Executors per team: the names the executor loader knows in multi-team mode, and team-scoped lookups.

Every configured executor becomes an ``ExecutorName`` whose alias is its deployment-unique name and
whose ``team_name`` is its team. A task's ``executor=`` is looked up only among its own team's
executors: by name, else by class (core alias, class name or module path) when that is unambiguous.
The loader constructs a team's executor with ``team_name`` and ``executor_conf`` (its
:class:`~airflow.teams.config.TeamConf`) as constructor arguments.

The team of a lookup is the one the caller names, else the team the process serves; it never falls
back to another team. A process serving no team (the scheduler, the webserver) names the team of its
row (``ids.team_of(dag_id)``); its one team-less use is upstream's "default executor", see
``default_for``.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import TYPE_CHECKING, Callable

from airflow.exceptions import AirflowConfigException, UnknownExecutorException
from airflow.teams import config, ids, process_team

if TYPE_CHECKING:
    from airflow.executors.base_executor import BaseExecutor
    from airflow.executors.executor_utils import ExecutorName
    from airflow.models.taskinstance import TaskInstance

# The executor loader's module-level caches, all derived from [core] executor.
_LOADER_CACHES = (
    "_alias_to_executors",
    "_module_to_executors",
    "_classname_to_executors",
    "_executor_names",
    "_loaded_executors",
)


def forget_loaded() -> None:
    """Forget the executor names and executors the loader derived from the configuration."""
    from airflow.executors import executor_loader

    for cache in _LOADER_CACHES:
        getattr(executor_loader, cache).clear()


def module_path(class_name: str) -> str:
    from airflow.executors.executor_loader import ExecutorLoader

    return ExecutorLoader.executors.get(class_name, class_name)


def executor_names() -> list[ExecutorName]:
    """One ExecutorName per configured executor, team by team, each team's default first."""
    from airflow.executors.executor_utils import ExecutorName

    return [
        ExecutorName(module_path(spec.class_name), alias=spec.name, team_name=spec.team)
        for spec in config.load().executors()
    ]


def _matches(name: ExecutorName, wanted: str) -> bool:
    return wanted in (name.module_path, name.module_path.rsplit(".", 1)[-1]) or (
        module_path(wanted) == name.module_path
    )


def _team(team_name: str | None) -> str | None:
    return team_name or process_team.serving_team()


def lookup(wanted: str, team_name: str | None, names: list[ExecutorName]) -> ExecutorName:
    """Return the executor of ``team_name`` (or of the served team) that ``wanted`` names (or its class)."""
    if (team_name := _team(team_name)) is None:
        raise UnknownExecutorException(
            f"Executor {wanted!r} of no team: in multi-team mode every executor belongs to a team, and "
            "this process serves none and named none."
        )
    team_names = [name for name in names if name.team_name == team_name]
    if not team_names:
        raise UnknownExecutorException(f"Team {team_name!r} is not configured in [core] executor.")
    for name in team_names:
        if name.alias == wanted:
            return name
    by_class = [name for name in team_names if _matches(name, wanted)]
    if len(by_class) == 1:
        return by_class[0]
    choices = ", ".join(str(name.alias) for name in team_names)
    if by_class:
        raise UnknownExecutorException(
            f"Executor {wanted!r} is ambiguous in team {team_name!r}: use one of the executor names {choices}."
        )
    owner = next((name.team_name for name in names if name.alias == wanted), None)
    if owner:
        raise UnknownExecutorException(
            f"Executor {wanted!r} belongs to team {owner!r}, not to team {team_name!r}; a task may only use "
            f"its own team's executors: {choices}."
        )
    raise UnknownExecutorException(
        f"Unknown executor {wanted!r} for team {team_name!r}; its executors: {choices}."
    )


def default_for(team_name: str | None, names: list[ExecutorName]) -> ExecutorName:
    """
    Return the default (first) executor of ``team_name``, or of the team this process serves.

    A process serving no team and naming none is the scheduler asking for upstream's "default executor"
    (``Job.executor``), which it uses only to send callbacks to the database: the first configured
    executor, whose team does not matter there.
    """
    if (team_name := _team(team_name)) is None:
        return names[0]
    for name in names:
        if name.team_name == team_name:
            return name
    raise UnknownExecutorException(f"Team {team_name!r} is not configured in [core] executor.")


def _spec(name: ExecutorName) -> config.ExecutorSpec:
    return next(spec for spec in config.load().executors() if spec.name == name.alias)


def conf_of(name: ExecutorName) -> config.TeamConf:
    """Return the configuration of a team executor: its ``config``, then its team's, then the global."""
    spec = _spec(name)
    return config.TeamConf(spec.team, spec.config, executor_name=spec.name)


def _accepts_executor_conf(executor_cls: type) -> bool:
    parameters = inspect.signature(executor_cls).parameters.values()
    return any(p.name == "executor_conf" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def construct(executor_cls: type[BaseExecutor], name: ExecutorName) -> BaseExecutor:
    """
    Construct a team's executor with its team and configuration as constructor arguments.

    An executor class written for upstream 3.2 takes ``team_name`` only and reads its team's
    configuration; it cannot take an executor's own ``config``, which is then refused.
    """
    if not getattr(executor_cls, "supports_multi_team", False):
        raise AirflowConfigException(
            f"[core] executor: executor {name.alias!r} of team {name.team_name!r} is a "
            f"{executor_cls.__name__}, which does not support multi-team mode (supports_multi_team is False)."
        )
    if _accepts_executor_conf(executor_cls):
        return executor_cls(team_name=name.team_name, executor_conf=conf_of(name))
    if _spec(name).config:
        raise AirflowConfigException(
            f"[core] executor: executor {name.alias!r} of team {name.team_name!r} has a 'config', but "
            f"{executor_cls.__name__} takes no executor_conf argument; set the options for the team instead "
            f"(e.g. {config.team_env_var(name.team_name, 'core', 'parallelism')})."
        )
    return executor_cls(team_name=name.team_name)


def get_task_log_of(ti: TaskInstance) -> Callable:
    """Return the ``get_task_log`` of the executor that ran ``ti``: one of its DAG's team, never another's."""
    from airflow.executors.executor_loader import ExecutorLoader

    if (team := ids.team_of(ti.dag_id)) in config.load().teams:
        with contextlib.suppress(UnknownExecutorException):  # an executor removed since the task ran
            return ExecutorLoader.load_executor(ti.executor, team_name=team).get_task_log
    return lambda ti, try_number: ([], [])  # no executor logs


def executor_conf_for_task(dag_id: str, executor: str | None = None) -> config.TeamConf | None:
    """
    Return the configuration of the executor that runs tasks of ``dag_id`` with ``executor=``.

    ``executor`` None means the team's default executor. Returns None outside multi-team mode and for
    a DAG without a team.
    """
    from airflow.executors.executor_loader import ExecutorLoader
    from airflow.teams import multi_team_enabled

    if not multi_team_enabled() or (team := ids.team_of(dag_id)) is None:
        return None
    names = ExecutorLoader.get_executor_names()
    return conf_of(lookup(executor, team, names) if executor else default_for(team, names))
