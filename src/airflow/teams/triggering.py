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
Triggering across teams (AIP-67 'Dataset triggering access control'), by datasets and directly.

Any team may produce events for any dataset. An event queues a consumer DAG only when the consumer
may be triggered by the event's producing team(s) and the producer admits the consumer's team (consent
at both ends, :mod:`airflow.teams.trigger_permissions`); and when the
scheduler creates a dataset-triggered run it attaches only events the DAG may consume, so queue rows
written behind the manager's back neither trigger a run nor leak other teams' events into it.
A process serving a team (a task of a TriggerDagRunOperator) triggers another team's DAG directly
only when that DAG allows it, and clearing follows an ExternalTaskMarker into another team's DAG only
when that DAG allows the marker's team. Every refusal is logged with producer, consumer and reason,
and counted in ``teams.trigger_denied``.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Callable, Collection

from airflow.exceptions import AirflowException
from airflow.teams import denials, ids, multi_team_enabled, tables, trigger_permissions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow.models.dag import DAG, DagModel
    from airflow.models.dataset import DatasetEvent
    from airflow.models.taskinstance import TaskInstance

log = logging.getLogger(__name__)


def record_source_teams(
    event: DatasetEvent,
    task_instance: TaskInstance | None,
    source_teams: Collection[str] | None,
    session: Session,
) -> None:
    """
    In multi-team mode, record the producing team(s) of a new event (an API event: the caller's).

    And the teams it may reach: the producing DAG's ``allow_consuming_by_teams`` (as the database holds
    it, written when the team's dag-processor parsed the DAG) matched against the configured teams; an
    event with no producing DAG reaches its producing teams only. A process that serves a team (its
    task, triggerer, ...) records events of its own team only: naming other producing teams is refused,
    also where the process holds the database (no isolation).
    """
    if not multi_team_enabled():
        return
    allow_consuming = None
    if task_instance is not None:
        team = ids.team_of(task_instance.dag_id)
        teams = [team] if team else []
        allow_consuming = tables.consumer_lists([task_instance.dag_id], session)[task_instance.dag_id]
    else:
        teams = sorted(set(source_teams or ()))
        from airflow.teams import process_team

        if (serving := process_team.serving_team()) is not None:
            if foreign := [team for team in teams if team != serving]:
                raise process_team.ForeignTeamError(
                    f"This process serves team {serving!r}; it cannot record a dataset event as produced "
                    f"by team(s) {foreign!r}."
                )
            teams = [serving]
    from airflow.teams import config

    consumers = trigger_permissions.consenting_consumers(teams, allow_consuming, config.load().teams)
    tables.record_source_teams(event, teams, consumers, session)


def producer_teams(event: DatasetEvent) -> list[str]:
    if (recorded := tables.source_teams(event)) is not None:
        return list(recorded)
    team = ids.team_of(event.source_dag_id) if event.source_dag_id else None
    return [team] if team else []


def events_reaching(teams: Collection[str], own_events):
    """
    Return the condition that keeps the dataset events that may reach ``teams`` (a user's, a task's).

    ``own_events`` is the condition on the events whose producing DAG they read (or are); the others
    must have been admitted to one of ``teams`` by their producer. An event with no producing DAG and no
    consumer teams recorded (while multi-team mode was off) names no team: it reaches every team.
    """
    from sqlalchemy import and_, not_, or_

    from airflow.models.dataset import DatasetEvent

    return or_(
        own_events,
        tables.reaches_teams(DatasetEvent.id, teams),
        and_(DatasetEvent.source_dag_id.is_(None), not_(tables.has_consumer_teams(DatasetEvent.id))),
    )


def events_reaching_team(team: str | None) -> list:
    """
    Return the conditions that keep dataset events to those that may reach ``team``'s DAGs.

    Its own team's, and those other teams' producers admitted it to; none outside multi-team mode or
    without a team.
    """
    if not multi_team_enabled() or team is None:
        return []
    from airflow.models.dataset import DatasetEvent

    return [events_reaching([team], ids.sql_of_team(DatasetEvent.source_dag_id, team))]


def inlet_events_of_served_team() -> list:
    """
    Return the conditions that keep a task's ``inlet_events`` to the events that may reach its team.

    (With database isolation a task reads no events from the database.)
    """
    from airflow.teams import process_team

    return events_reaching_team(process_team.serving_team())


def _permitted(
    event: DatasetEvent,
    consumer: str,
    allow: list[str] | None,
    stage: str,
    session: Session,
    refused_by_producer: dict[str, list[str]] | None = None,
) -> bool:
    """
    Whether ``consumer`` admits the event's producer and the producer admits the consumer's team.

    ``refused_by_producer`` collects, per consumer team, the reasons of the producer's refusals.
    """
    producers = producer_teams(event)
    decision = trigger_permissions.may_trigger(consumer, allow, producers)
    if not decision.allowed:
        _deny(event, consumer, decision.reason, "consumer", stage, session)
        return False
    decision = trigger_permissions.producer_admits(consumer, tables.consumer_teams(event), producers)
    if not decision.allowed:
        _deny(event, consumer, decision.reason, "producer", stage, session)
        if refused_by_producer is not None:
            refused_by_producer.setdefault(str(ids.team_of(consumer)), []).append(decision.reason)
    return decision.allowed


def _producer_team(teams: list[str]) -> str | None:
    """Return an event's producing teams as one audit and metric tag value ("+" joins several)."""
    return "+".join(teams) or None


def _deny(
    event: DatasetEvent, consumer: str, reason: str, refused_by: str, stage: str, session: Session
) -> None:
    """Log, count and audit (on the consumer's DAG) a refused event."""
    teams = producer_teams(event)
    producers = ", ".join(teams) or "no team"
    producer_team, consumer_team = _producer_team(teams), ids.team_of(consumer)
    denials.record(
        "teams.trigger_denied",
        f"Dataset event {event.id} on {event.uri} from {producers} ({event.source_dag_id or 'API'}) "
        f"may not trigger {consumer}: {reason} [{stage}]",
        # the team refused: the producer's, by the consumer; the consumer's, by the producer
        team=producer_team if refused_by == "consumer" else consumer_team,
        target_team=consumer_team if refused_by == "consumer" else producer_team,
        dag_id=consumer,
        obj=f"dataset event {event.id} on {event.uri}",
        reason=reason,
        tags={"consumer": consumer, "kind": "dataset", "stage": stage, "refused_by": refused_by},
        session=session,
        refs={
            "dataset_event_id": event.id,
            "dataset_uri": event.uri,
            "stage": stage,
            "producer_team": producer_team,
            "consumer_dag_id": consumer,
            "refused_by": refused_by,
        },
    )


def allowed_consumers(event: DatasetEvent, dags: set[DagModel]) -> set[DagModel]:
    """
    Return the consumer DAGs an event may queue; the others are refused (logged and counted).

    Where the producer refused, its DAG's audit log gets one row per consuming team, naming the team
    and how many of its DAGs asked, not the DAGs: a team does not learn another team's DAG ids.
    """
    if not multi_team_enabled():
        return dags
    from sqlalchemy.orm import object_session

    session = object_session(event)
    if not dags:
        return dags
    allow = tables.allow_lists([dag.dag_id for dag in dags], session)
    refused_by_producer: dict[str, list[str]] = {}
    allowed = {
        dag
        for dag in dags
        if _permitted(event, dag.dag_id, allow[dag.dag_id], "queue", session, refused_by_producer)
    }
    for team, reasons in sorted(refused_by_producer.items()):
        _tell_producer(event, team, reasons, session)
    return allowed


def _tell_producer(event: DatasetEvent, consumer_team: str, reasons: list[str], session: Session) -> None:
    """Write the producer's refusal of one consuming team's DAGs on the producing DAG's audit log."""
    if event.source_dag_id is None:
        return  # an API event: no DAG of the producer to write it on (the consumers' rows say it)
    producer_team = _producer_team(producer_teams(event))
    details = {
        "team": consumer_team,
        "target_team": producer_team,
        "object": f"dataset event {event.id} on {event.uri}",
        "reason": reasons[0],
        "dataset_event_id": event.id,
        "dataset_uri": event.uri,
        "stage": "queue",
        "producer_team": producer_team,
        "producer_dag_id": event.source_dag_id,
        "consumer_team": consumer_team,
        "consumer_dags": len(reasons),
        "refused_by": "producer",
    }
    denials.write_audit_row("teams.trigger_denied", event.source_dag_id, details, session)


def consumable_events(
    dag: DAG, dag_model: DagModel, events: list[DatasetEvent], session: Session
) -> list | None:
    """
    Return the events a new dataset-triggered run of ``dag`` may consume.

    None when they do not satisfy its dataset condition: the run is not created, and queue rows without
    an allowed event are dropped.
    """
    if not multi_team_enabled():
        return events
    from sqlalchemy import delete

    from airflow.models.dataset import DatasetDagRunQueue

    tables.load_event_teams(events)
    allowed = [
        e for e in events if _permitted(e, dag.dag_id, dag_model.allow_triggering_by_teams, "run", session)
    ]
    if dag.timetable.dataset_condition.evaluate({event.uri: True for event in allowed}):
        return allowed
    with_allowed_events = {event.dataset_id for event in allowed}
    session.execute(
        delete(DatasetDagRunQueue)
        .where(DatasetDagRunQueue.target_dag_id == dag.dag_id)
        .where(DatasetDagRunQueue.dataset_id.not_in(with_allowed_events))
        .execution_options(synchronize_session=False)
    )
    log.warning(
        "Not creating a dataset-triggered run of %s: its allowed events do not satisfy its schedule.",
        dag.dag_id,
    )
    return None


class TriggerDeniedError(AirflowException):
    """A team tried to trigger a DAG of another team that does not allow it."""


def check_direct_trigger(dag_model: DagModel) -> None:
    """Refuse a trigger by a process of another team (e.g. a TriggerDagRunOperator task) unless allowed."""
    from airflow.teams import process_team

    caller = process_team.serving_team()
    if caller is None or not multi_team_enabled():
        return
    decision = trigger_permissions.may_trigger(
        dag_model.dag_id, dag_model.allow_triggering_by_teams, [caller]
    )
    if not decision.allowed:
        _refuse(
            "direct",
            "trigger",
            team=caller,
            consumer=dag_model.dag_id,
            obj=f"a run of {dag_model.dag_id}",
            reason=decision.reason,
            message=f"Team {caller!r} may not trigger DAG {dag_model.dag_id!r}: {decision.reason}.",
        )


def check_clear_through_marker(marker: TaskInstance, dag_id: str, session: Session) -> None:
    """
    Refuse clearing tasks of another team's DAG through an ExternalTaskMarker unless that DAG allows it.

    Clearing reruns the tasks, so it needs the same permission as triggering the DAG. The whole clear is
    refused (in the UI, the REST API and ``airflow tasks clear``), and nothing is cleared.
    """
    team = ids.team_of(marker.dag_id)
    if not multi_team_enabled() or ids.team_of(dag_id) == team:
        return
    allow = tables.allow_lists([dag_id], session)[dag_id]
    decision = trigger_permissions.may_trigger(dag_id, allow, [team] if team else [])
    if not decision.allowed:
        _refuse(
            "clear",
            "clear",
            team=team,
            consumer=dag_id,
            obj=f"ExternalTaskMarker {marker.task_id} of {marker.dag_id}",
            reason=decision.reason,
            message=f"ExternalTaskMarker {marker.task_id!r} of {marker.dag_id!r} may not clear tasks of {dag_id!r}: "
            f"{decision.reason}. Clear without dependent DAGs, or add {team!r} to its allow_triggering_by_teams.",
        )


def refusal_in_one_line(command: Callable) -> Callable:
    """Let a CLI command that a team's gate refuses stop with the refusal's message, not a traceback."""

    @functools.wraps(command)
    def run(args):
        try:
            return command(args)
        except TriggerDeniedError as refused:
            raise SystemExit(str(refused))

    return run


def _refuse(
    kind: str, stage: str, *, team: str | None, consumer: str, obj: str, reason: str, message: str
) -> None:
    denials.record(
        "teams.trigger_denied",
        message,
        team=team,
        target_team=ids.team_of(consumer),
        dag_id=consumer,
        obj=obj,
        reason=reason,
        tags={"consumer": consumer, "kind": kind, "stage": stage},
    )
    raise TriggerDeniedError(message)
