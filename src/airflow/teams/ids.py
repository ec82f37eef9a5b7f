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
"""Team names and team-qualified dag ids: the only module that knows the ``<team>:`` separator."""

from __future__ import annotations

import re

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from airflow.exceptions import AirflowException
from airflow.security.permissions import PREFIX_LIST

SEPARATOR = ":"
TEAM_NAME_RULE = "3 to 50 characters, each a letter, a digit, '_' or '-'"
_TEAM_NAME = re.compile(r"^[A-Za-z0-9_-]{3,50}\Z")
# "DAG:<dag_id>" and "DAG Run:<dag_id>" are the auth managers' per-DAG resource names: the DAG ids of a
# team named "DAG" would be taken for them (a DAG id may not start with one, dag-id-global-resource-names).
RESERVED_TEAM_NAMES = frozenset(prefix.removesuffix(SEPARATOR) for prefix in PREFIX_LIST)


class TeamIdError(AirflowException):
    """A team name or a team-qualified dag_id breaks the rules."""


def team_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a team name, or None if it can."""
    if not isinstance(name, str) or not _TEAM_NAME.match(name):
        return f"team names are {TEAM_NAME_RULE}"
    if name in RESERVED_TEAM_NAMES:
        return f"{name!r} is reserved (it is the prefix of DAG resource names)"
    return None


def split(dag_id: str) -> tuple[str | None, str]:
    """``"team_a:etl"`` -> ``("team_a", "etl")``; an id without a prefix -> ``(None, dag_id)``."""
    team, separator, name = dag_id.partition(SEPARATOR)
    if not separator:
        return None, dag_id
    return team, name


def team_of(dag_id: str) -> str | None:
    return split(dag_id)[0]


def has_separator(text: str) -> bool:
    return SEPARATOR in text


def replace_separator(text: str, replacement: str) -> str:
    """Return ``text`` with the team separator replaced (e.g. for metric names, where ``:`` is special)."""
    return text.replace(SEPARATOR, replacement)


def sql_of_team(id_column, team: str):
    """Return a condition on a column of team-prefixed ids (DAG ids, pool names): the id is ``team``'s."""
    # autoescape: '_' in a team name must not act as a LIKE wildcard (team_a must not match teamXa).
    return id_column.startswith(f"{team}{SEPARATOR}", autoescape=True)


def sql_without_team(id_column):
    """Return a condition on a column of ids: the id has no team prefix (e.g. a shared pool)."""
    return ~id_column.contains(SEPARATOR)


class team_prefix(FunctionElement):
    """SQL for the ``<team>:`` prefix of an id column (an empty string when it has none)."""

    type = String()
    name = "team_prefix"
    inherit_cache = True


@compiles(team_prefix)
def _team_prefix_sqlite_mysql(element, compiler, **kw):
    dag_id = compiler.process(element.clauses, **kw)
    return f"substr({dag_id}, 1, instr({dag_id}, '{SEPARATOR}'))"


@compiles(team_prefix, "postgresql")
def _team_prefix_postgresql(element, compiler, **kw):
    dag_id = compiler.process(element.clauses, **kw)
    return f"substr({dag_id}, 1, strpos({dag_id}, '{SEPARATOR}'))"


def qualify(team: str, dag_id: str) -> str:
    """Prefix a plain id with ``team``; an id that already has a prefix is returned unchanged."""
    if SEPARATOR in dag_id:
        return dag_id
    return f"{team}{SEPARATOR}{dag_id}"


def validate_team_dag_id(dag_id: str, max_length: int = 250) -> None:
    """Check a multi-team dag_id: exactly one valid team prefix, and a name upstream would accept."""
    from airflow.utils.helpers import validate_key

    team, name = split(dag_id)
    if team is None:
        raise TeamIdError(
            f"DAG id {dag_id!r} has no team: with [core] multi_team = True every dag_id is "
            f"'<team>{SEPARATOR}<name>'. DAGs get the prefix when they are parsed for a team."
        )
    if problem := team_name_problem(team):
        raise TeamIdError(f"DAG id {dag_id!r} has an invalid team prefix {team!r}: {problem}.")
    if SEPARATOR in name:
        raise TeamIdError(f"DAG id {dag_id!r} has more than one team prefix; only one is allowed.")
    validate_key(name, max_length=max_length - len(team) - len(SEPARATOR))
