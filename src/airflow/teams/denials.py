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
A refused cross-team action, recorded in one place: a log line, a tagged metric and an audit log row.

The row (``log`` table, event = the metric's name) carries the DAG the refusal concerns: the consumer of
a refused trigger, the DAG a refused clear would have reached, the task's DAG for a refused pool. The
audit log shows a user the rows of the DAGs it may read, so that team reads why (on the DAG's Audit Log
tab, in Browse > Audit Logs and ``GET /api/v1/eventLogs``); a refusal that concerns no DAG (an internal
API call naming none) is read by those who read every DAG. ``extra`` holds both teams, the object and
the reason as JSON.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def record(
    metric: str,
    message: str,
    *,
    team: str | None,
    target_team: str | None,
    dag_id: str | None,
    obj: str,
    reason: str,
    tags: dict[str, Any],
    session: Session | None = None,
    audit: bool = True,
    level: int = logging.WARNING,
    refs: dict[str, Any] | None = None,
) -> None:
    """
    Log, count and (``audit``) write the audit row of one refusal.

    ``team`` is the team refused, ``target_team`` the team whose DAG, pool or data it reached for.
    With ``session`` the row is written in that transaction (the caller commits it with its work);
    without, in a transaction of its own, as the caller is about to fail. A process without database
    access (its team's internal API records what it refuses) writes no row. ``refs`` adds the ids of
    the object (a dataset event's id and URI), for the pages that show it.
    """
    from airflow.stats import Stats

    log.log(level, "%s", message)
    Stats.incr(metric, tags={**tags, "refused_team": str(team), "target_team": str(target_team)})
    if not audit:
        return
    details = {"team": team, "target_team": target_team, "object": obj, "reason": reason, **(refs or {})}
    write_audit_row(metric, dag_id, details, session)


def write_audit_row(event: str, dag_id: str | None, details: dict[str, Any], session: Session | None) -> None:
    """
    Write an audit log row (``extra``: ``details`` as JSON).

    With ``session``, in that transaction; without, in a transaction of its own, as the caller is about
    to fail. A process without database access writes no row.
    """
    from airflow.models.log import Log

    row = Log(event=event, dag_id=dag_id, extra=json.dumps(details))
    if session is not None:
        session.add(row)
        return
    from airflow import settings
    from airflow.api_internal.internal_api_call import InternalApiConfig

    if InternalApiConfig.get_use_internal_api() or settings.engine is None:
        return
    from sqlalchemy.orm import Session as OwnSession

    try:
        # Not the thread's scoped session: committing that would commit the refused caller's work.
        with OwnSession(settings.engine) as own_session, own_session.begin():
            own_session.add(row)
    except Exception as err:  # what the row records stands and is logged and counted; only the row is lost
        log.warning("Could not write the audit log row %s: %s", event, err)


def refused_dataset_events(limit: int = 20) -> list[dict[str, Any]]:
    """
    Return the latest refused dataset events whose rows are on DAGs the UI's user may read, newest first.

    One entry per event and consumer (the latest of its refusals): the Datasets page lists them, so a
    team sees there that an event from another team did not trigger its DAG, or that its own event did
    not reach another team's DAG because it did not admit that team, and why.
    """
    from sqlalchemy import select

    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from airflow.www.extensions.init_auth_manager import get_auth_manager

    readable = get_auth_manager().get_permitted_dag_ids(methods=["GET"])
    if not readable:
        return []
    query = (
        select(Log.dttm, Log.dag_id, Log.extra)
        .where(Log.event == "teams.trigger_denied", Log.dag_id.in_(readable))
        .order_by(Log.dttm.desc())
        .limit(limit * 4)  # an event is refused again at each run creation: room for the repeats
    )
    refused: dict[tuple[int, str], dict[str, Any]] = {}
    with create_session() as session:
        for when, dag_id, extra in session.execute(query):
            try:
                details = json.loads(extra or "{}")
            except ValueError:
                continue
            if isinstance(details, dict) and "dataset_event_id" in details:
                # a consumer's row names its DAG; a producer's row the consuming team
                consumer = details.get("consumer_dag_id") or details.get("consumer_team") or dag_id
                # rows written before producers consented: a consumer's refusal, ``team`` the producer's
                defaults = {"refused_by": "consumer", "producer_team": details.get("team")}
                refused.setdefault(
                    (details["dataset_event_id"], consumer),
                    {"when": when, "dag_id": dag_id, **defaults, **details},
                )
    return list(refused.values())[:limit]
