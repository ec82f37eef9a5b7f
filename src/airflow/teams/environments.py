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
A team's own Python environment: the virtual environment its code runs in.

``[core] team_environment``, set per team (``AIRFLOW__<TEAM>___CORE__TEAM_ENVIRONMENT`` or
``[<team>=core]``), is the folder of a virtual environment that has Airflow (the same build) and the
team's own libraries. The team's dag-processor and triggerer are started from it by whoever starts
them; what Airflow starts itself, the task processes of the team's LocalExecutor (in the scheduler),
are new interpreters of that environment (a fork of the scheduler could not import the team's
libraries). Empty (the default): the team's code runs in Airflow's own environment.

``[core] team_user``, also per team, is the Unix user the team's LocalExecutor runs its task processes
as, with database isolation: its task fork server is started as that user and its primary group
(the scheduler needs root, or CAP_SETUID and CAP_SETGID). The team's dag-processor and triggerer run
as whatever user starts them. Empty (the default): the scheduler's user.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.teams import config

OPTION = ("core", "team_environment")
USER_OPTION = ("core", "team_user")


def of_team(team: str | None) -> Path | None:
    """Return the folder of ``team``'s own environment, or None when it runs in Airflow's own."""
    if team is None:
        return None
    value = config.TeamConf(team).get(*OPTION, fallback="")
    return Path(value) if value else None


def python(team: str | None) -> str:
    """Return the interpreter that runs ``team``'s task processes."""
    environment = of_team(team)
    return str(environment / "bin" / "python") if environment else sys.executable


def task_command(team: str | None, command: list[str]) -> list[str]:
    """Return ``airflow tasks run ...`` as ``team``'s environment runs it: its Python with ``-m airflow``."""
    if of_team(team) is None:
        return list(command)
    return [python(team), "-m", "airflow", *command[1:]]


def unix_user(team: str | None) -> str | None:
    """Return the Unix user ``team``'s task processes run as, or None for the scheduler's own."""
    if team is None:
        return None
    return config.TeamConf(team).get(*USER_OPTION, fallback="") or None


def describe(team: str) -> str:
    """One line for ``airflow teams list``: the environment's folder, or that it is Airflow's own."""
    environment = of_team(team)
    if environment is None:
        return "airflow's own"
    if not (environment / "bin" / "python").exists():
        return f"{environment} (missing: no bin/python)"
    return str(environment)
