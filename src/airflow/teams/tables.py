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
"""
The fork's own tables, kept out of Airflow's schema.

With ``[core] multi_team`` off the fork's database is upstream's, table for table, so a deployment can
go back to vanilla 2.11.2 (or on to upstream 3.x) without a downgrade. The fork's data therefore lives
in tables of its own, described by their own metadata (not ``airflow.models.base.Base``) and created by
their own Alembic migration chain (``airflow/teams/migrations``, version table ``alembic_version_teams``),
which ``airflow db migrate`` (and ``db reset``/``db init``) runs only in multi-team mode:

* ``teams_dag_triggering``: a DAG's ``allow_triggering_by_teams``, one row per DAG that sets it;
* ``teams_dataset_event_source``: the producing team(s) of a dataset event;
* ``teams_dag_consumers``: a DAG's ``allow_consuming_by_teams``, one row per DAG that sets it;
* ``teams_dataset_event_consumer``: the teams a dataset event may reach, as its producer consented when
  it was recorded (a configured team's name, or ``*`` for any consumer);
* ``teams_job``: the team of a job that a team's internal API created (its triggerer, dag-processor, task).

Each references the upstream row (``dag``, ``dataset_event``, ``job``) with ``ON DELETE CASCADE``, so
deleting a DAG or cleaning old events or jobs removes the fork's rows too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Collection

import sqlalchemy_jsonfield
from sqlalchemy import Column, Integer, MetaData, String, Table, exists, insert, inspect, select
from sqlalchemy.orm import object_session, registry

from airflow.models.base import StringID
from airflow.settings import json
from airflow.teams import multi_team_enabled

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from airflow.models.dag import DAG
    from airflow.models.dataset import DatasetEvent

VERSION_TABLE = "alembic_version_teams"

metadata = MetaData()

dag_triggering = Table(
    "teams_dag_triggering",
    metadata,
    Column("dag_id", StringID(), primary_key=True),
    Column("allow_triggering_by_teams", sqlalchemy_jsonfield.JSONField(json=json), nullable=False),
)

dataset_event_source = Table(
    "teams_dataset_event_source",
    metadata,
    Column("dataset_event_id", Integer, primary_key=True),
    Column("source_teams", sqlalchemy_jsonfield.JSONField(json=json), nullable=False),
)

dag_consumers = Table(
    "teams_dag_consumers",
    metadata,
    Column("dag_id", StringID(), primary_key=True),
    Column("allow_consuming_by_teams", sqlalchemy_jsonfield.JSONField(json=json), nullable=False),
)

dataset_event_consumer = Table(
    "teams_dataset_event_consumer",
    metadata,
    Column("dataset_event_id", Integer, primary_key=True),
    Column("team", String(50), primary_key=True),
)

job_team_table = Table(
    "teams_job",
    metadata,
    Column("job_id", Integer, primary_key=True),
    Column("team", String(50), nullable=False),
)


def _alembic_config(connection: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    config.attributes["connection"] = connection
    return config


def migrate(session: Session, revision: str = "heads") -> None:
    """Bring the fork's tables to ``revision`` (the newest by default), in multi-team mode only."""
    if not multi_team_enabled():
        return
    from alembic import command

    command.upgrade(_alembic_config(session.connection()), revision)


def check_migrated() -> None:
    """In multi-team mode, refuse to start a component before ``airflow db migrate`` made the fork's tables."""
    from airflow.api_internal.internal_api_call import InternalApiConfig

    if not multi_team_enabled() or InternalApiConfig.get_use_internal_api():
        return  # an isolated component has no database to check; the scheduler checks it
    if (problem := migration_problem()) is not None:
        raise SystemExit(problem)


def migration_problem() -> str | None:
    """Say, in one line with the fix, whether the fork's tables are behind its migrations; None when not."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from airflow import settings

    with settings.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        current = set(context.get_current_heads())
        expected = set(ScriptDirectory.from_config(_alembic_config(connection)).get_heads())
    if current == expected:
        return None
    return (
        f"The multi-team fork's tables are not migrated ({VERSION_TABLE}: {', '.join(current) or 'none'}, "
        f"expected {', '.join(expected)}): run `airflow db migrate` with [core] multi_team = True."
    )


def downgrade(revision: str = "base") -> None:
    """Undo the fork's migrations down to ``revision`` (by default all: the fork's tables are dropped)."""
    from alembic import command

    from airflow import settings

    with settings.engine.begin() as connection:
        command.downgrade(_alembic_config(connection), revision)


def drop(connection: Connection) -> None:
    """Drop the fork's tables and version table if they exist (``airflow db reset``)."""
    metadata.drop_all(connection)
    if inspect(connection).has_table(VERSION_TABLE):
        Table(VERSION_TABLE, MetaData()).drop(connection)


class AllowTriggeringByTeams:
    """``DagModel.allow_triggering_by_teams``, read from the fork's table (None outside multi-team mode)."""

    def __get__(self, dag_model: Any, owner: type) -> Any:
        if dag_model is None:
            return self
        if not multi_team_enabled():
            return None
        return self._read([dag_model.dag_id], object_session(dag_model))[dag_model.dag_id]

    @staticmethod
    def _read(dag_ids: Collection[str], session: Session | None) -> dict[str, list[str] | None]:
        return allow_lists(dag_ids, session)


class AllowConsumingByTeams(AllowTriggeringByTeams):
    """``DagModel.allow_consuming_by_teams``, read from the fork's table (None outside multi-team mode)."""

    @staticmethod
    def _read(dag_ids: Collection[str], session: Session | None) -> dict[str, list[str] | None]:
        return consumer_lists(dag_ids, session)


def allow_lists(dag_ids: Collection[str], session: Session | None = None) -> dict[str, list[str] | None]:
    """Return the ``allow_triggering_by_teams`` of each DAG, in one query."""
    return _lists_of(dag_triggering, dag_ids, session)


def consumer_lists(dag_ids: Collection[str], session: Session | None = None) -> dict[str, list[str] | None]:
    """Return the ``allow_consuming_by_teams`` of each DAG, in one query."""
    return _lists_of(dag_consumers, dag_ids, session)


def _lists_of(table: Table, dag_ids: Collection[str], session: Session | None) -> dict[str, list[str] | None]:
    from airflow.utils.session import create_session

    query = select(table).where(table.c.dag_id.in_(set(dag_ids)))
    if session is None:
        with create_session() as own_session:
            rows = own_session.execute(query).all()
    else:
        rows = session.execute(query).all()
    found = {dag_id: patterns for dag_id, patterns in rows}
    return {dag_id: found.get(dag_id) for dag_id in dag_ids}


class DagTriggering:
    """A row of ``teams_dag_triggering``, written through the ORM so the checks of a DAG write see it."""

    def __init__(self, dag_id: str, patterns: list[str]):
        self.dag_id = dag_id
        self.allow_triggering_by_teams = patterns


class DagConsumers:
    """A row of ``teams_dag_consumers``, written through the ORM as :class:`DagTriggering`."""

    def __init__(self, dag_id: str, patterns: list[str]):
        self.dag_id = dag_id
        self.allow_consuming_by_teams = patterns


_mapper_registry = registry(metadata=metadata)
_mapper_registry.map_imperatively(DagTriggering, dag_triggering)
_mapper_registry.map_imperatively(DagConsumers, dag_consumers)

# Each DAG argument of team patterns the fork stores, and its row class.
_DAG_PATTERN_LISTS = (
    ("allow_triggering_by_teams", DagTriggering),
    ("allow_consuming_by_teams", DagConsumers),
)


def write_allow_lists(dags: Collection[DAG], session: Session) -> None:
    """Record the team patterns (who may trigger, who may consume) of DAGs being written to the database."""
    if not multi_team_enabled():
        return
    session.flush()  # the DAG rows the fork's rows reference
    for attribute, row_class in _DAG_PATTERN_LISTS:
        by_dag = {dag.dag_id: getattr(dag, attribute, None) for dag in dags}
        stored = session.scalars(select(row_class).where(row_class.dag_id.in_(by_dag)))
        rows = {row.dag_id: row for row in stored}
        for dag_id, patterns in by_dag.items():
            if patterns is None:
                if dag_id in rows:
                    session.delete(rows[dag_id])
            elif dag_id in rows:
                setattr(rows[dag_id], attribute, patterns)
            else:
                session.add(row_class(dag_id, patterns))


def record_source_teams(
    event: DatasetEvent, teams: list[str], consumers: list[str], session: Session
) -> None:
    """Record the producing teams of a new dataset event, and the teams (or ``*``) it may reach."""
    session.flush()  # the event's id
    session.execute(insert(dataset_event_source).values(dataset_event_id=event.id, source_teams=teams))
    session.execute(
        insert(dataset_event_consumer), [{"dataset_event_id": event.id, "team": team} for team in consumers]
    )
    vars(event)[_SOURCE_TEAMS] = teams
    vars(event)[_CONSUMER_TEAMS] = frozenset(consumers)


_SOURCE_TEAMS = "_teams_source_teams"
_CONSUMER_TEAMS = "_teams_consumer_teams"


def source_teams(event: DatasetEvent) -> list[str] | None:
    """Return the producing teams recorded for ``event`` (None if none were), once per event object."""
    if _SOURCE_TEAMS not in vars(event):
        load_event_teams([event])
    return vars(event)[_SOURCE_TEAMS]


def consumer_teams(event: DatasetEvent) -> frozenset[str] | None:
    """Return the teams (or ``*``) ``event`` may reach; None for an event recorded before they were."""
    if _CONSUMER_TEAMS not in vars(event):
        load_event_teams([event])
    return vars(event)[_CONSUMER_TEAMS]


def load_event_teams(events: Collection[DatasetEvent]) -> None:
    """Read the producing and consumer teams of ``events`` in two queries (a run's events at once)."""
    events = [event for event in events if _CONSUMER_TEAMS not in vars(event)]
    if not events:
        return
    session = next((object_session(event) for event in events if object_session(event) is not None), None)
    if session is None:
        for event in events:
            vars(event).update({_SOURCE_TEAMS: None, _CONSUMER_TEAMS: None})
        return
    ids = {event.id for event in events}
    sources = dict(
        session.execute(
            select(dataset_event_source.c.dataset_event_id, dataset_event_source.c.source_teams).where(
                dataset_event_source.c.dataset_event_id.in_(ids)
            )
        ).all()
    )
    consumers: dict[int, set[str]] = {}
    for event_id, team in session.execute(
        select(dataset_event_consumer.c.dataset_event_id, dataset_event_consumer.c.team).where(
            dataset_event_consumer.c.dataset_event_id.in_(ids)
        )
    ):
        consumers.setdefault(event_id, set()).add(team)
    for event in events:
        vars(event)[_SOURCE_TEAMS] = sources.get(event.id)
        vars(event)[_CONSUMER_TEAMS] = frozenset(consumers[event.id]) if event.id in consumers else None


def reaches_teams(event_id_column, teams: Collection[str]):
    """Return the condition that the event of ``event_id_column`` may reach one of ``teams`` (or any)."""
    column = dataset_event_consumer.c
    return exists().where(column.dataset_event_id == event_id_column, column.team.in_([*teams, "*"]))


def has_consumer_teams(event_id_column):
    """Return the condition that the consumer teams of the event of ``event_id_column`` were recorded."""
    return exists().where(dataset_event_consumer.c.dataset_event_id == event_id_column)


def record_job_team(job_id: int, team: str, session: Session) -> None:
    """Record the team of a job a team's component created (through its internal API, or directly)."""
    session.execute(insert(job_team_table).values(job_id=job_id, team=team))


# The jobs a team's components run (a team's component may not create or pose as a scheduler).
TEAM_JOB_TYPES = frozenset({"LocalTaskJob", "TriggererJob", "DagProcessorJob"})


def record_job_of_serving_team(job: Any, session: Session) -> None:
    """
    Record the team of a new job created for a team: by its component, or by its internal API for it.

    ``airflow teams doctor`` tells each team's live dag-processor and triggerer by it; a team's internal
    API answers only for the team's jobs.
    """
    job_type = getattr(job, "job_type", None)
    if not multi_team_enabled() or job_type not in TEAM_JOB_TYPES:
        return
    from airflow.api_internal import isolation
    from airflow.teams import process_team

    if job_type == "LocalTaskJob" and not isolation.enabled():
        return  # only a team's internal API asks whose a task's job is: no write per task without it

    if (team := process_team.serving_team()) is not None:
        record_job_team(job.id, team, session)
        session.commit()


def recorded_job_team(job_id: int, session: Session) -> str | None:
    """Return the team recorded for a job, or None."""
    return session.scalar(select(job_team_table.c.team).where(job_team_table.c.job_id == job_id))


def job_ids_of_team(team: str):
    """Return a query of the ids of a team's recorded jobs."""
    return select(job_team_table.c.job_id).where(job_team_table.c.team == team)
