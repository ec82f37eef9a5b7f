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
"""Which triggers a triggerer may take: in multi-team mode only those of its own team's task instances."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import true

from airflow.teams import ids, process_team

if TYPE_CHECKING:
    from sqlalchemy.sql import ColumnElement


def of_this_process(dag_id_column) -> ColumnElement[bool]:
    """Return a filter on task instances' dag_id: the process's team's, or all for a team-less process."""
    team = process_team.serving_team()
    if team is None:
        return true()
    return ids.sql_of_team(dag_id_column, team)
