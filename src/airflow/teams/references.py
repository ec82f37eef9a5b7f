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

from typing import TYPE_CHECKING, Iterator, NamedTuple, TypeVar

from airflow.teams import ids, parsing

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")


def _qualify(team: str | None, reference: T) -> T:
    if team is None or not isinstance(reference, str) or not reference or "{{" in reference:
        return reference
    return ids.qualify(team, reference)  # type: ignore[return-value]


def at_parse(reference: T) -> T:
    return _qualify(parsing.team_being_parsed(), reference)


def at_run(owner_dag_id: str | None, reference: T) -> T:
    return _qualify(ids.team_of(owner_dag_id) if owner_dag_id else None, reference)


class Reference(NamedTuple):
    """A task's reference to another DAG, as its serialized DAG's dependencies hold it."""

    dag_id: str
    task_id: str
    does: str  # "triggers" or "waits for"
    other: str


# The dependency types that are a task naming another DAG, and the side of the dependency naming it.
_SIDES = {"trigger": ("target", "triggers"), "sensor": ("source", "waits for")}


def of_serialized_dags(session: Session) -> Iterator[Reference]:
    """Every ``trigger_dag_id`` (``TriggerDagRunOperator``) and ``external_dag_id`` (``ExternalTaskSensor``)."""
    from airflow.models.serialized_dag import SerializedDagModel

    for dag_id, dependencies in sorted(SerializedDagModel.get_dag_dependencies(session=session).items()):
        for dependency in dependencies:
            if dependency.dependency_type in _SIDES:
                side, does = _SIDES[dependency.dependency_type]
                yield Reference(dag_id, dependency.dependency_id, does, getattr(dependency, side))
