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
Cross-team decisions: may team X trigger a DAG of team Y.

A DAG is triggered (by a dataset event or directly) by its own team, and by another team only when
that team matches one of the glob patterns (``*`` wildcard) in the DAG's ``allow_triggering_by_teams``.
A producer with no team (a dataset event posted through the API by a user the auth manager gives no
team) matches only the pattern ``*``.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable, NamedTuple

from airflow.exceptions import AirflowException
from airflow.teams import ids

_PATTERN = re.compile(r"^[A-Za-z0-9_*-]{1,50}\Z")


class Decision(NamedTuple):
    """Whether a trigger is allowed, and why."""

    allowed: bool
    reason: str


def validate_allow_list(patterns: object) -> list[str] | None:
    """Validate the DAG argument ``allow_triggering_by_teams``: None, or a list of team-name globs."""
    if patterns is None:
        return None
    if isinstance(patterns, str) or not isinstance(patterns, (list, tuple, set, frozenset)):
        raise AirflowException(
            f"allow_triggering_by_teams must be a list of team name patterns, e.g. ['team_a', 'team-marketing-*'], "
            f"not {patterns!r}."
        )
    for pattern in patterns:
        if not isinstance(pattern, str) or not _PATTERN.match(pattern):
            raise AirflowException(
                f"allow_triggering_by_teams: {pattern!r} is not a team name pattern: use 1 to 50 letters, digits, "
                "'_', '-' and the wildcard '*'."
            )
    return sorted(set(patterns))


def may_trigger(
    consumer_dag_id: str, allow_patterns: Iterable[str] | None, producer_teams: Iterable[str]
) -> Decision:
    """Whether any of ``producer_teams`` may trigger ``consumer_dag_id`` (no producer team = team-less)."""
    consumer_team = ids.team_of(consumer_dag_id)
    producers = sorted(set(producer_teams))
    patterns = tuple(allow_patterns or ())
    if consumer_team in producers:
        return Decision(True, "same team")
    if not producers:
        if "*" in patterns:
            return Decision(True, "team-less producer, allowed by '*'")
        return Decision(False, "the producer has no team and allow_triggering_by_teams does not contain '*'")
    if any(fnmatch.fnmatchcase(team, pattern) for team in producers for pattern in patterns):
        return Decision(True, f"allowed by allow_triggering_by_teams {list(patterns)}")
    if not patterns:
        return Decision(
            False, f"{', '.join(producers)} is another team and the DAG sets no allow_triggering_by_teams"
        )
    return Decision(
        False, f"{', '.join(producers)} matches none of allow_triggering_by_teams {list(patterns)}"
    )
