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
DAG references inside a team's DAG (``trigger_dag_id``, ``external_dag_id``).

Without a prefix they mean the same team. They are qualified when the DAG file is parsed (literal ids,
so serialized DAG dependencies point at the right DAG) and again when the task runs (templated ids, once
rendered).
"""

from __future__ import annotations

from typing import TypeVar

from airflow.teams import ids, parsing

T = TypeVar("T")


def _qualify(team: str | None, reference: T) -> T:
    if team is None or not isinstance(reference, str) or not reference or "{{" in reference:
        return reference
    return ids.qualify(team, reference)  # type: ignore[return-value]


def at_parse(reference: T) -> T:
    return _qualify(parsing.team_being_parsed(), reference)


def at_run(owner_dag_id: str | None, reference: T) -> T:
    return _qualify(ids.team_of(owner_dag_id) if owner_dag_id else None, reference)
