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
Multi-team deployments (AIP-67).

Every multi-team decision is made in this package; upstream modules only call into it. The team of
anything is the prefix of its dag_id (``team_a:etl``), see :mod:`airflow.teams.ids`. The mode and the
teams are read from the configuration once per process (:func:`airflow.teams.config.load`).
"""

from __future__ import annotations

_multi_team: bool | None = None


def multi_team_enabled() -> bool:
    """Whether ``[core] multi_team`` is on; read once per process, like the teams themselves."""
    global _multi_team
    if _multi_team is None:
        from airflow.configuration import conf

        _multi_team = conf.getboolean("core", "multi_team", fallback=False)
    return _multi_team


def reload_configuration() -> None:
    """Read the mode, the teams and their executors from the configuration again; for tests that change it."""
    from airflow.teams import config, executors

    global _multi_team
    _multi_team = None
    config.forget_loaded()
    executors.forget_loaded()
