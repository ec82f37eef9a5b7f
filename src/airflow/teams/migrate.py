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
``airflow teams migrate``: existing DAGs, with their history, into teams (``etl`` -> ``team_a:etl``).

A plan names, per team, DAG ids and the DAG files or folders that hold them; ``--by-folder`` takes each
team-less DAG whose file now lies in a team's folder. Without ``--apply`` it prints what would change,
per table. With it, one PostgreSQL transaction renames the DAG id in every column of the database that
holds one (every ``dag_id`` or ``*_dag_id`` column, found in the database itself, so tables added
later, by a plugin or a provider, are covered too), in the serialized DAGs (their id and dependencies,
and their hash) and in the DAG-level permissions (``DAG:<id>``, ``DAG Run:<id>``). Foreign keys between
those columns are dropped and re-created, as they were, inside the transaction. ``--reverse`` renames
back with the same plan. A scheduler that is alive, or callbacks waiting for the renamed DAGs, refuse
it. Task log files stay where they are (``dag_id=<old id>`` folders).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from hashlib import md5
from typing import TYPE_CHECKING

from airflow.teams import config, ids, paths

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

AUDIT_EVENT = "teams.migrate"


class MigrationError(Exception):
    """The plan cannot be applied: one line saying why."""


@dataclass
class Migration:
    """Which DAG ids become which, and what that changes."""

    renames: dict[str, str]  # old id -> new id
    reverse: bool = False
    rows: dict[str, int] = field(default_factory=dict)  # "table.column" -> rows that change
    permissions: int = 0
    references: list[str] = field(default_factory=list)  # other DAGs' tasks naming a renamed id


def read_plan(path: str) -> dict[str, list[str]]:
    """Read a plan: a JSON object of team -> DAG ids, DAG files and folders (an entry with a '/' is a path)."""
    try:
        with open(path) as file:
            plan = json.load(file)
    except (OSError, ValueError) as err:
        raise MigrationError(f"Cannot read the plan {path}: {err}")
    if not isinstance(plan, dict) or not all(
        isinstance(entries, list) and all(isinstance(entry, str) for entry in entries)
        for entries in plan.values()
    ):
        raise MigrationError(
            f"The plan {path} must be a JSON object of team -> list of DAG ids, files or folders, e.g. "
            '{"team_a": ["etl", "/opt/airflow/dags/sales/"]}.'
        )
    return plan


def plan_renames(
    session: Session, plan: dict[str, list[str]] | None, reverse: bool = False
) -> dict[str, str]:
    """
    Return old id -> new id for every DAG the plan (or, without one, the team folders) names.

    Forward, the old ids are team-less; reverse, they are the team's ids, renamed back to their names.
    """
    from sqlalchemy import select

    from airflow.models.dag import DagModel

    teams = config.load().teams
    by_folder = plan is None
    if by_folder:
        plan = {team: list(config.load().team(team).dags_folders) for team in teams}
    if unknown := sorted(set(plan) - set(teams)):
        raise MigrationError(f"The plan names teams that are not configured: {', '.join(unknown)}.")
    dags = dict(session.execute(select(DagModel.dag_id, DagModel.fileloc)).all())
    renames: dict[str, str] = {}
    for team, entries in sorted(plan.items()):
        for entry in entries:
            matched = _matching(dags, team, entry, reverse)
            if not matched and not by_folder:
                raise MigrationError(
                    f"{entry!r} of team {team!r} names no DAG to move ({_direction(reverse)})."
                )
            for old in matched:
                new = ids.split(old)[1] if reverse else _team_id(team, old)
                if renames.get(old, new) != new:
                    raise MigrationError(f"DAG {old!r} is named for two teams in the plan.")
                renames[old] = new
    if not renames:
        raise MigrationError(
            f"No DAG to move: no {'DAG of a team' if reverse else 'team-less DAG'} has its file in a team's "
            "DAG folder (as last parsed)."
            if by_folder
            else "The plan names no DAG."
        )
    if taken := sorted(new for new in renames.values() if new in dags):
        raise MigrationError(
            f"These DAG ids exist already: {', '.join(taken[:10])}; delete them or leave them out."
        )
    return renames


def _team_id(team: str, dag_id: str) -> str:
    """Return the id ``dag_id`` gets in ``team``, if it is a valid team DAG id (250 characters at most)."""
    new = ids.qualify(team, dag_id)
    try:
        ids.validate_team_dag_id(new)
    except Exception as err:  # TeamIdError, or upstream's AirflowException for the name's length
        raise MigrationError(f"DAG {dag_id!r} cannot move into team {team!r}: {err}")
    return new


def _matching(dags: dict[str, str | None], team: str, entry: str, reverse: bool) -> list[str]:
    def movable(dag_id: str) -> bool:
        return ids.team_of(dag_id) == team if reverse else ids.team_of(dag_id) is None

    if "/" not in entry:
        dag_id = ids.qualify(team, entry) if reverse else entry
        return [dag_id] if dag_id in dags and movable(dag_id) else []
    folder = os.path.realpath(entry)
    return sorted(
        dag_id
        for dag_id, fileloc in dags.items()
        if movable(dag_id) and fileloc and paths.within(os.path.realpath(fileloc), folder)
    )


def _direction(reverse: bool) -> str:
    return "one of its DAGs, to rename back" if reverse else "a team-less DAG, or its file or folder"


# ---- what changes ---------------------------------------------------------------------------------


def dag_id_columns(session: Session) -> list[tuple[str, str]]:
    """Every text column of the database's schema that holds a DAG id: ``dag_id`` and ``*_dag_id``."""
    from sqlalchemy import text

    rows = session.execute(
        text(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
            "AND c.data_type IN ('character varying', 'text') "
            "AND (c.column_name = 'dag_id' OR c.column_name LIKE '%\\_dag\\_id' ESCAPE '\\') "
            "ORDER BY c.table_name, c.column_name"
        )
    )
    return [(table, column) for table, column in rows]


def _load_renames(session: Session, renames: dict[str, str]) -> None:
    from sqlalchemy import text

    session.execute(
        text(
            "CREATE TEMPORARY TABLE IF NOT EXISTS teams_migrate_renames (old text PRIMARY KEY, new text) "
            "ON COMMIT DROP"
        )
    )
    session.execute(text("DELETE FROM teams_migrate_renames"))
    session.execute(
        text("INSERT INTO teams_migrate_renames (old, new) VALUES (:old, :new)"),
        [{"old": old, "new": new} for old, new in renames.items()],
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def measure(session: Session, migration: Migration) -> None:
    """Count what the migration changes: rows per column, permissions, and other DAGs' references."""
    from sqlalchemy import text

    _load_renames(session, migration.renames)
    for table, column in dag_id_columns(session):
        count = session.scalar(
            text(
                f"SELECT count(*) FROM {_quoted(table)} t JOIN teams_migrate_renames r ON t.{_quoted(column)} = r.old"
            )
        )
        if count:
            migration.rows[f"{table}.{column}"] = count
    migration.permissions = len(_resource_renames(session, migration.renames))
    migration.references = _references(session, migration.renames)


def _resource_renames(session: Session, renames: dict[str, str]) -> dict[str, str]:
    from sqlalchemy import text

    from airflow.security import permissions

    names = {}
    for prefix in (permissions.RESOURCE_DAG_PREFIX, permissions.RESOURCE_DAG_RUN_PREFIX):
        names.update({f"{prefix}{old}": f"{prefix}{new}" for old, new in renames.items()})
    if not session.scalar(text("SELECT to_regclass('ab_view_menu') IS NOT NULL")):
        return {}
    existing = session.scalars(
        text("SELECT name FROM ab_view_menu WHERE name = ANY(:names)"), {"names": list(names)}
    )
    return {name: names[name] for name in existing}


def _references(session: Session, renames: dict[str, str]) -> list[str]:
    """Tasks of DAGs that are not renamed and name a renamed id: their files need the new id."""
    from airflow.teams import references

    return [
        f"Task {reference.task_id!r} of {reference.dag_id} {reference.does} {reference.other!r}, now "
        f"{renames[reference.other]!r}: change the id in its DAG file."
        for reference in references.of_serialized_dags(session)
        if reference.dag_id not in renames and reference.other in renames
    ]


# ---- applying it ------------------------------------------------------------------------------------


def check_can_apply(session: Session, renames: dict[str, str]) -> None:
    """Refuse while a scheduler is alive or callbacks for the renamed DAGs wait to be run."""
    from sqlalchemy import select, text

    from airflow.jobs.job import Job
    from airflow.utils.state import JobState

    schedulers = session.scalars(
        select(Job).where(Job.job_type == "SchedulerJob", Job.state == JobState.RUNNING)
    ).all()
    if alive := [job.hostname for job in schedulers if job.is_alive()]:
        raise MigrationError(
            f"A scheduler is alive (on {', '.join(sorted(set(alive)))}): stop it first, so that no run is "
            "created or changed while DAG ids change."
        )
    waiting = session.scalar(
        text("SELECT count(*) FROM callback_request WHERE callback_data::text LIKE ANY(:patterns)"),
        {"patterns": [f'%"{old}"%' for old in renames]},
    )
    if waiting:
        raise MigrationError(
            f"{waiting} callback(s) of the DAGs to rename wait in callback_request: start the dag-processors "
            "until they are run, then migrate."
        )


def apply(session: Session, migration: Migration) -> None:
    """Rename in the caller's transaction (the caller commits): columns, serialized DAGs, permissions, audit."""
    from sqlalchemy import text

    check_can_apply(session, migration.renames)
    _load_renames(session, migration.renames)
    columns = dag_id_columns(session)
    foreign_keys = _foreign_keys_on(session, columns)
    for table, name, _ in foreign_keys:
        session.execute(text(f"ALTER TABLE {_quoted(table)} DROP CONSTRAINT {_quoted(name)}"))
    for table, column in columns:
        session.execute(
            text(
                f"UPDATE {_quoted(table)} t SET {_quoted(column)} = r.new FROM teams_migrate_renames r "
                f"WHERE t.{_quoted(column)} = r.old"
            )
        )
    for table, name, definition in foreign_keys:
        session.execute(text(f"ALTER TABLE {_quoted(table)} ADD CONSTRAINT {_quoted(name)} {definition}"))
    _rename_in_serialized_dags(session, migration.renames)
    for old, new in _resource_renames(session, migration.renames).items():
        session.execute(
            text("UPDATE ab_view_menu SET name = :new WHERE name = :old"), {"old": old, "new": new}
        )
    from airflow.teams import denials

    details = {"renames": migration.renames, "reverse": migration.reverse, "rows": migration.rows}
    denials.write_audit_row(AUDIT_EVENT, None, details, session)


def _foreign_keys_on(session: Session, columns: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Foreign keys whose columns or referenced columns include a DAG id column: (table, name, definition)."""
    from sqlalchemy import text

    rows = session.execute(
        text(
            "SELECT own.relname, c.conname, pg_get_constraintdef(c.oid), "
            "ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.conrelid "
            "      AND a.attnum = ANY(c.conkey)), "
            "referenced.relname, "
            "ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.confrelid "
            "      AND a.attnum = ANY(c.confkey)) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "JOIN pg_class own ON own.oid = c.conrelid JOIN pg_class referenced ON referenced.oid = c.confrelid "
            "WHERE c.contype = 'f' AND n.nspname = current_schema() ORDER BY 1, 2"
        )
    )
    holding_dag_ids = set(columns)
    return [
        (table, name, definition)
        for table, name, definition, own, referenced_table, referenced in rows
        if any((table, column) in holding_dag_ids for column in own)
        or any((referenced_table, column) in holding_dag_ids for column in referenced)
    ]


def _rename_in_serialized_dags(session: Session, renames: dict[str, str]) -> None:
    """Rename inside the serialized DAGs of renamed DAGs (their id and dependencies), and rehash them."""
    from sqlalchemy import select

    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.settings import COMPRESS_SERIALIZED_DAGS, json as settings_json

    for row in session.scalars(
        select(SerializedDagModel).where(SerializedDagModel.dag_id.in_(renames.values()))
    ):
        data = copy.deepcopy(row.data)  # the loaded value stays as it was: the ORM compares against it
        dag = data["dag"]
        dag["_dag_id"] = renames.get(dag["_dag_id"], dag["_dag_id"])
        for dependency in dag.get("dag_dependencies") or []:
            for side in ("source", "target"):
                dependency[side] = renames.get(dependency[side], dependency[side])
        encoded = settings_json.dumps(data, sort_keys=True).encode("utf-8")  # as SerializedDagModel hashes it
        row.dag_hash = md5(encoded).hexdigest()
        if COMPRESS_SERIALIZED_DAGS:
            import zlib

            row._data, row._data_compressed = None, zlib.compress(encoded)
        else:
            row._data, row._data_compressed = data, None


def migrate(plan: dict[str, list[str]] | None, apply_it: bool, reverse: bool) -> Migration:
    """Plan (and with ``apply_it`` apply, in one transaction) the move of DAGs into (out of) teams."""
    from airflow.utils.session import create_session

    with create_session() as session:
        if session.get_bind().dialect.name != "postgresql":
            raise MigrationError("airflow teams migrate runs on PostgreSQL, as multi-team deployments do.")
        migration = Migration(plan_renames(session, plan, reverse), reverse=reverse)
        measure(session, migration)
        if apply_it and migration.renames:
            apply(session, migration)
        else:
            session.rollback()
    return migration
