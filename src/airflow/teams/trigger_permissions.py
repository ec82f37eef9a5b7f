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

The producer consents too: a dataset event reaches the producing team's DAGs, and another team's only
when the producing DAG names that team in its ``allow_consuming_by_teams`` (the same glob patterns,
matched against the configured teams when the event is recorded). An event of a team-less producer
reaches every team (only the consumers decide).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Collection, Iterable, NamedTuple

from airflow.exceptions import AirflowException
from airflow.teams import ids

_PATTERN = re.compile(r"^[A-Za-z0-9_*-]{1,50}\Z")


class Decision(NamedTuple):
    """Whether a trigger is allowed, and why."""

    allowed: bool
    reason: str


def validate_allow_list(patterns: object, argument: str = "allow_triggering_by_teams") -> list[str] | None:
    """Validate a DAG argument of team patterns (``argument``): None, or a list of team-name globs."""
    if patterns is None:
        return None
    if isinstance(patterns, str) or not isinstance(patterns, (list, tuple, set, frozenset)):
        raise AirflowException(
            f"{argument} must be a list of team name patterns, e.g. ['team_a', 'team-marketing-*'], "
            f"not {patterns!r}."
        )
    for pattern in patterns:
        if not isinstance(pattern, str) or not _PATTERN.match(pattern):
            raise AirflowException(
                f"{argument}: {pattern!r} is not a team name pattern: use 1 to 50 letters, digits, "
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


ANY_TEAM = "*"


def consenting_consumers(
    producer_teams: Iterable[str], allow_patterns: Iterable[str] | None, teams: Iterable[str]
) -> list[str]:
    """
    Return the teams an event of ``producer_teams`` may reach.

    Theirs, and those of ``teams`` matching the producer's ``allow_consuming_by_teams``; ``*`` for any
    (a team-less producer, or the pattern ``*``).
    """
    producers = set(producer_teams)
    patterns = set(allow_patterns or ())
    if not producers or ANY_TEAM in patterns:
        return [ANY_TEAM]
    admitted = {team for team in teams for pattern in patterns if fnmatch.fnmatchcase(team, pattern)}
    return sorted(producers | admitted)


def producer_admits(
    consumer_dag_id: str, consumer_teams: Collection[str] | None, producer_teams: Iterable[str]
) -> Decision:
    """
    Whether the producer of an event that may reach ``consumer_teams`` admits ``consumer_dag_id``.

    ``consumer_teams`` None: none were recorded with the event (written behind the dataset manager's
    back, or while multi-team mode was off): it reaches its producing teams only, any team if none.
    """
    producers = ", ".join(sorted(set(producer_teams)))
    if consumer_teams is None:
        if not producers or ids.team_of(consumer_dag_id) in set(producer_teams):
            return Decision(True, "no consumer teams recorded: the producer's own team, or no producer team")
        return Decision(
            False, f"no teams it may reach were recorded with the event: it reaches {producers} only"
        )
    if ANY_TEAM in consumer_teams or ids.team_of(consumer_dag_id) in consumer_teams:
        return Decision(True, "admitted by the producer")
    others = sorted(set(consumer_teams) - set(producer_teams))
    if not others:
        return Decision(
            False, f"the producer {producers} admits no other team (its allow_consuming_by_teams names none)"
        )
    return Decision(
        False, f"the producer {producers} admits only {', '.join(others)} (allow_consuming_by_teams)"
    )
