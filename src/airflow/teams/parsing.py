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
DAG parsing in multi-team mode.

A DAG file belongs to the team whose DAG folder holds it. A DagBag parses a file only for that team
(and only if the process serves that team, when it serves one); DAGs created while the file runs get
the team's ``<team>:`` prefix, and a DAG that claims another team is an import error of the file.
"""

from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Iterator

from airflow.exceptions import AirflowException
from airflow.teams import config, dag_writes, ids, multi_team_enabled, paths, pools, process_team

if TYPE_CHECKING:
    from airflow.models.dag import DAG

log = logging.getLogger(__name__)

REFUSED = object()
_team_being_parsed: ContextVar[str | None] = ContextVar("airflow_teams_parsing", default=None)


def team_being_parsed() -> str | None:
    """Return the team of the DAG file being executed by a DagBag, or None outside a parse."""
    return _team_being_parsed.get()


@contextlib.contextmanager
def parsing_for(team: str | None) -> Iterator[None]:
    """While a DagBag executes a file of ``team``'s folder: DAGs created in it get the team's prefix."""
    token = _team_being_parsed.set(team)
    try:
        yield
    finally:
        _team_being_parsed.reset(token)


class DagTeamMismatchError(AirflowException):
    """A DAG claims a team other than the one its file belongs to."""


def new_dag_id(dag_id: str) -> str:
    """Return the dag_id of a DAG being created: validated as upstream does, team-qualified if multi-team."""
    from airflow.utils.helpers import validate_key

    if not multi_team_enabled() or not isinstance(dag_id, str):
        validate_key(dag_id)
        return dag_id
    team = team_being_parsed()
    claimed = ids.team_of(dag_id)
    if team is None:
        # Outside a parse: deserialized DAGs of any team, Airflow's own team-less placeholders. A DagBag
        # never stores a team-less DAG (check_dag_belongs_to_file).
        if claimed is None:
            validate_key(dag_id)
        else:
            ids.validate_team_dag_id(dag_id)
        return dag_id
    if claimed is not None and claimed != team:
        raise DagTeamMismatchError(
            f"DAG id {dag_id!r} claims team {claimed!r}, but this file belongs to team {team!r}: a team's "
            f"DAG files may only define that team's DAGs (write the id without a prefix, or as '{team}:...')."
        )
    dag_id = ids.qualify(team, dag_id)
    ids.validate_team_dag_id(dag_id)
    return dag_id


def team_for_file(filepath: str, import_errors: dict[str, str]):
    """
    Return the team to parse ``filepath`` for: None outside multi-team mode, else the owning team.

    Returns REFUSED when the file belongs to another team than the one this process serves, and, after
    recording an import error, when it belongs to no team.
    """
    if not multi_team_enabled():
        return None
    try:
        owner = config.load().team_for_path(filepath)
    except config.TeamsConfigError as err:
        return _refuse(filepath, import_errors, str(err))
    serving = process_team.serving_team()
    if owner is None:
        folders = "; ".join(f"{t.name}: {', '.join(t.dags_folders)}" for t in config.load().teams.values())
        return _refuse(
            filepath,
            import_errors,
            f"{filepath} is not in the DAG folder of any team ({folders}). In multi-team mode every DAG "
            "file belongs to the team whose folder holds it.",
        )
    if serving is not None and owner != serving:
        log.info(
            "Skipping %s: it belongs to team %r and this process serves team %r.", filepath, owner, serving
        )
        return REFUSED
    return owner


def _refuse(filepath: str, import_errors: dict[str, str], message: str):
    log.error("Not parsing %s: %s", filepath, message)
    import_errors[filepath] = message
    return REFUSED


def check_dag_belongs_to_file(dag: DAG, filepath: str) -> None:
    """Refuse a DAG found in a team's file that is not that team's (e.g. imported from another module)."""
    if not multi_team_enabled():
        return
    owner = config.load().team_for_path(filepath)
    dag_id = dag.dag_id
    claimed = ids.team_of(dag_id)
    if claimed != owner:
        raise DagTeamMismatchError(
            f"DAG {dag_id!r} belongs to team {claimed!r} but was found in {filepath}, a file of team "
            f"{owner!r}; a team's DAG files may only define that team's DAGs."
        )
    pools.use_team_pools(dag, owner)
    dag_writes.record_parsed(dag, dag_id, filepath)


def below_folder(path_column, folder: str):
    """
    Filter ``path_column`` to the files below a dag-processor's ``folder``.

    Upstream matches the folder as a substring; in multi-team mode one team's folder can be a string
    prefix of another's (``/dags/sales``, ``/dags/sales_eu``), so the match is on the folder and a
    separator, with ``_`` and ``%`` taken literally.
    """
    if not multi_team_enabled():
        return path_column.contains(folder)
    return paths.sql_below(path_column, folder)


def only_below_folder(path_column, folder: str | None) -> tuple:
    """
    Return the extra conditions that keep a dag-processor's cleanup of deleted files in its ``folder``.

    Upstream also counts rows without a ``processor_subdir`` (written outside a dag-processor, e.g. by
    ``airflow dags reserialize``) as any dag-processor's; in multi-team mode they are only the files of
    the folder that holds them. Outside multi-team mode: no condition.
    """
    from sqlalchemy import false

    if not multi_team_enabled():
        return ()
    return (below_folder(path_column, folder) if folder else false(),)
