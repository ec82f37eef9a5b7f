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
The team rule checked on what a DAG file's parse writes to the database, not only on what it defines.

The DagBag refuses a DAG of another team when it finds it (``parsing.check_dag_belongs_to_file``), but
the DAG object stays the file's code: a ``dag_id`` property, or code run while the DAG is serialized,
can give the rows written later another team's id, or another team's file. So in multi-team mode:

* ``checked_dag_sync`` wraps ``DagBag._sync_to_db``. A DAG whose id is no longer the one the DagBag
  checked is not written. Every row the write then adds, changes or deletes that names a DAG (DAG,
  serialized DAG, tags, owners, dataset references) must name one of the DAGs being written, and its
  file (and the serialized DAG's own id and file) must lie in that DAG's team's folders. Such a row
  is kept out of every flush, the rest of the write is rolled back, and each file of the write gets
  the import error. (Upstream commits during the write, for DAG permissions: rows of the file's own
  DAGs flushed before that stay written; no row of another team is.)
* ``own_files`` and ``own_dag_warnings`` keep a file's parse from writing or clearing the import errors
  and DAG warnings of other teams' files and DAGs.
* ``refused_from_db`` keeps the scheduler and the webserver from loading a serialized DAG whose file is
  not in its team's folders.

The team is the one the process serves (``--team``), else the team of each DAG's id. This is a check
of the rows, not a sandbox: until team code runs without database credentials (stage 2), code that
opens its own connection is not stopped by it.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from sqlalchemy import event, inspect

from airflow.teams import config, ids, multi_team_enabled, paths, process_team

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow.models.dag import DAG

log = logging.getLogger(__name__)

_PARSED = "_teams_parsed_as"


class ParsedAs(NamedTuple):
    """What the DagBag checked: the DAG's id and the file it was found in."""

    dag_id: str
    filepath: str


def record_parsed(dag: DAG, dag_id: str, filepath: str) -> None:
    """Remember the id the DagBag checked, to compare with the id that is written."""
    vars(dag)[_PARSED] = ParsedAs(dag_id, filepath)


def _writing_team_problem(dag_id: str, teams: config.TeamsConfig) -> str | None:
    team = ids.team_of(dag_id)
    serving = process_team.serving_team()
    if serving is not None and team != serving:
        return f"DAG {dag_id!r} is not a DAG of team {serving!r}, the team this process serves"
    if team not in teams.teams:
        return f"DAG {dag_id!r} belongs to no configured team"
    return None


def _file_problem(what: str, path: str | None, owners: set[str], teams: config.TeamsConfig) -> str | None:
    if path is None or any(team in teams.teams and teams.teams[team].owns_path(path) for team in owners):
        return None
    names = " or ".join(repr(team) for team in sorted(owners, key=str))
    return f"{what} names the file {path}, which is not in the DAG folders of team {names}"


class _RowCheck:
    """Keeps the rows of one DAG write that break the team rule out of every flush, and lists them."""

    def __init__(self, dag_ids: set[str], teams: config.TeamsConfig):
        self.dag_ids = dag_ids
        self.teams = teams
        self.problems: list[str] = []

    def before_flush(self, session: Session, flush_context: Any, instances: Any) -> None:
        for row in list(session.new):
            if self._add(self._dag_problem(row) or self._file_problems(row)) and row in session:
                session.expunge(row)  # (expunging a DAG row also expunges its tags)
        for row in list(session.dirty):
            if self._add(self._dag_problem(row) or self._file_problems(row)):
                session.expire(row)  # drops the changes
        for row in list(session.deleted):
            if self._add(self._dag_problem(row)) and row in session:
                session.expunge(row)  # keeps the row

    def _add(self, problem: str | None) -> bool:
        if problem and problem not in self.problems:
            self.problems.append(problem)
        return problem is not None

    def _dag_problem(self, row: Any) -> str | None:
        mapper = inspect(row).mapper
        if "dag_id" in mapper.columns and row.dag_id not in self.dag_ids:
            return f"a {mapper.local_table.name} row for DAG {row.dag_id!r}, which this write does not hold"
        return None

    def _file_problems(self, row: Any) -> str | None:
        if "fileloc" not in inspect(row).mapper.columns:
            return None
        table = inspect(row).mapper.local_table.name
        dag_id = getattr(row, "dag_id", None)
        # A DAG code row names no DAG: its file must be one of the written DAGs' teams.
        owners = {ids.team_of(dag_id)} if dag_id else {ids.team_of(written) for written in self.dag_ids}
        problem = _file_problem(f"the {table} row of {dag_id or 'a file'}", row.fileloc, owners, self.teams)
        if problem or table != "serialized_dag":
            return problem
        serialized = (row.data or {}).get("dag", {})
        if serialized.get("_dag_id") != dag_id:
            return f"the serialized DAG {dag_id!r} holds the DAG id {serialized.get('_dag_id')!r}"
        return _file_problem(f"the serialized DAG {dag_id!r}", serialized.get("fileloc"), owners, self.teams)


def checked_dag_sync(sync: Callable) -> Callable:
    """Wrap ``DagBag._sync_to_db``: write only what keeps to the team rule, else nothing."""

    @functools.wraps(sync)
    def write(cls, dags: dict[str, DAG], processor_subdir=None, session=None):
        if not multi_team_enabled():
            return sync(cls, dags, processor_subdir, session)
        teams = config.load()
        refused: dict[str, str] = {}
        writing: dict[str, DAG] = {}
        files: set[str] = set()
        for dag_id, dag in dags.items():
            parsed = vars(dag).get(_PARSED)
            filepath = parsed.filepath if parsed else dag.fileloc
            problem = _writing_team_problem(dag_id, teams)
            if parsed is not None and parsed.dag_id != dag_id:
                problem = f"DAG {parsed.dag_id!r} changed its id to {dag_id!r} after the DagBag checked it"
            if problem:
                refused[filepath] = _refusal(problem)
            else:
                writing[dag_id] = dag
                files.add(filepath)
        check = _RowCheck(set(writing), teams)
        event.listen(session, "before_flush", check.before_flush)
        try:
            import_errors = sync(cls, writing, processor_subdir, session)
            session.flush()
        finally:
            event.remove(session, "before_flush", check.before_flush)
        if check.problems:
            session.rollback()
            import_errors = dict.fromkeys(files, _refusal("; ".join(check.problems)))
        return {**import_errors, **refused}

    return write


def _refusal(problem: str) -> str:
    message = (
        f"Not written: {problem}. In multi-team mode a team's DAG files may only write that team's DAGs, "
        "from that team's DAG folders."
    )
    log.error("%s", message)
    return message


def clears_only_team_files(path: str, team: str) -> bool:
    """
    Whether clearing the import errors of ``path`` stays within ``team``'s files.

    Upstream clears the errors of every file whose name starts with the path (a zip file's inner
    files), so a team's own folder (``/dags/sales``) would also clear another team's files
    (``/dags/sales_eu/...``): only a path below one of the team's folders qualifies.
    """
    owner = config.load().team(team)
    return owner.owns_path(path) and any(paths.below(path, folder) for folder in owner.dags_folders)


def own_files(by_file: dict[str, Any]) -> dict[str, Any]:
    """Drop the files outside the DAG folders of the team this process serves (of every team if none)."""
    if not multi_team_enabled():
        return by_file
    teams = config.load()
    serving = process_team.serving_team()
    kept = {}
    for path, value in by_file.items():
        owner = teams.team_for_path(path)
        if (
            owner is not None
            and (serving is None or owner == serving)
            and clears_only_team_files(path, owner)
        ):
            kept[path] = value
        else:
            owning = f"team {serving!r}" if serving else "any team"
            log.error(
                "Not updating the import errors of %s: it is not a file below the DAG folders of %s.",
                path,
                owning,
            )
    return kept


def own_dag_warnings(pool_dict: dict[str, set[str]], dag_ids: set[str]) -> tuple[dict, set[str]]:
    """Drop the DAGs of other teams (than the one served) from a DAG warnings update."""
    if not multi_team_enabled():
        return pool_dict, dag_ids
    teams = config.load()
    kept = set()
    for dag_id in dag_ids | set(pool_dict):
        if problem := _writing_team_problem(dag_id, teams):
            log.error("Not updating the warnings of DAG %r: %s.", dag_id, problem)
        else:
            kept.add(dag_id)
    return {dag_id: pools for dag_id, pools in pool_dict.items() if dag_id in kept}, dag_ids & kept


_refused_rows: set[tuple[str, str]] = set()


def refused_from_db(row: Any) -> bool:
    """Whether to refuse loading a serialized DAG: its file is not in its team's folders."""
    if not multi_team_enabled() or (team := ids.team_of(row.dag_id)) is None:
        return False
    problem = _file_problem(f"serialized DAG {row.dag_id!r}", row.fileloc, {team}, config.load())
    if problem and (row.dag_id, row.fileloc) not in _refused_rows:
        _refused_rows.add((row.dag_id, row.fileloc))
        log.error("Not loading DAG %r: the %s.", row.dag_id, problem)
    return problem is not None
