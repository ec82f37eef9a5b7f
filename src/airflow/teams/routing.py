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
Scheduler-side routing of a team's task instances to the team's own executors, and fault isolation.

One team's broken executor (its broker or cluster down, a bug in its code) must not stop the scheduler
from queuing the other teams' tasks: every call the scheduler makes to a team executor is isolated, its
failures logged and counted, and an executor whose start failed retries its start at each heartbeat.

A team executor with nothing queued or running is heartbeaten at most every ``IDLE_HEARTBEAT_SECONDS``
(and once more in the first loop it is idle, so its gauges report it idle), not in every scheduler loop:
with an executor per team, upstream's heartbeat of every executor in every loop (a tracing span, three
gauges, ``trigger_tasks`` and ``sync``) cost the 100-team scheduler more than all its busy executors.
An executor with queued or running tasks (adopted ones included) is heartbeaten in every loop, as
upstream does; what an idle executor's ``sync`` looks after (a Kubernetes watcher's health, completed
pods it adopted, a LocalExecutor's workers that left) waits up to those seconds. Executors without a
team keep upstream's pace.
"""

from __future__ import annotations

import logging
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from airflow.exceptions import UnknownExecutorException
from airflow.teams import ids, multi_team_enabled

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow.executors.base_executor import BaseExecutor
    from airflow.models.taskinstance import TaskInstance

log = logging.getLogger(__name__)

FAILURE_LOG_INTERVAL = 60.0  # seconds between tracebacks of one executor's repeated failures in one stage
IDLE_HEARTBEAT_SECONDS = 5.0  # an idle team executor's heartbeats are at most this often


def routing_team(dag_id: str | None) -> str | None:
    """
    Return the team whose executors may run tasks of ``dag_id``; None outside multi-team mode.

    In multi-team mode a DAG without a team (e.g. left over from before multi-team was enabled) has no
    executor at all, rather than falling back to some team's.
    """
    if not multi_team_enabled():
        return None
    if dag_id is None or (team := ids.team_of(dag_id)) is None:
        raise UnknownExecutorException(
            f"DAG {dag_id!r} belongs to no team; in multi-team mode only tasks of team DAGs are executed."
        )
    return team


def report_unroutable(dag_id: str | None, executor_name: str | None, error: Exception) -> bool:
    """Log why a task cannot be routed; False outside multi-team mode (upstream logs its own warning)."""
    if not multi_team_enabled():
        return False
    log.error("Tasks of DAG %s with executor=%r cannot be queued: %s", dag_id, executor_name, error)
    return True


def fail_unroutable(ti: TaskInstance, session: Session) -> None:
    """In multi-team mode, fail a task that has no executor of its team, so it is never queued anywhere."""
    from airflow.stats import Stats
    from airflow.utils.state import TaskInstanceState

    if not multi_team_enabled():
        return
    log.error(
        "Failing %s: no executor of team %r matches executor=%r, and a task only runs on its own team's "
        "executors.",
        ti,
        ids.team_of(ti.dag_id),
        ti.executor,
    )
    ti.set_state(TaskInstanceState.FAILED, session=session)
    Stats.incr("teams.unroutable_task", tags={"dag_id": ti.dag_id, "task_id": ti.task_id})


@dataclass
class ExecutorHealth:
    """What the scheduler knows of one team executor's failures."""

    started: bool = True
    last_traceback: dict[str, float] = field(default_factory=dict)  # stage -> monotonic time
    failing: set[str] = field(default_factory=set)  # stages whose failure was reported
    last_heartbeat: float | None = None  # monotonic time
    busy_at_last_heartbeat: bool = True


_health: weakref.WeakKeyDictionary[BaseExecutor, ExecutorHealth] = weakref.WeakKeyDictionary()


def health(executor: BaseExecutor) -> ExecutorHealth:
    if (state := _health.get(executor)) is None:
        state = _health[executor] = ExecutorHealth()
    return state


def start(executor: BaseExecutor) -> None:
    health(executor).started = _started(executor)


def heartbeat(executor: BaseExecutor) -> None:
    """Heartbeat a team's executor; one whose start failed retries its start instead."""
    state = health(executor)
    if not state.started:
        state.started = _started(executor)
        if not state.started:
            return
    if not _heartbeat_due(executor, state):
        return
    _isolated(executor, "heartbeat", executor.heartbeat)


def _busy(executor: BaseExecutor) -> bool:
    """Whether an executor has tasks queued or running; one without these attributes counts as busy."""
    queued, running = getattr(executor, "queued_tasks", None), getattr(executor, "running", None)
    return queued is None or running is None or bool(queued) or bool(running)


def _heartbeat_due(executor: BaseExecutor, state: ExecutorHealth) -> bool:
    """Whether to heartbeat ``executor`` in this loop: always, unless it is a team's and idle (see above)."""
    if not getattr(executor, "team_name", None):
        return True
    busy, now = _busy(executor), time.monotonic()
    if (
        not busy
        and not state.busy_at_last_heartbeat
        and state.last_heartbeat is not None
        and now - state.last_heartbeat < IDLE_HEARTBEAT_SECONDS
    ):
        return False
    state.last_heartbeat, state.busy_at_last_heartbeat = now, busy
    return True


def adopt(executor: BaseExecutor, tis: list[TaskInstance]) -> Sequence[TaskInstance]:
    """
    Let an executor adopt orphaned tasks and return those it did not adopt (to be reset).

    A team's executor that fails (e.g. its cluster API is down) adopts none and resets none: the tasks
    keep their state and are handled by the stuck-in-queued check once it works again.
    """
    return _isolated(
        executor, "try_adopt_task_instances", executor.try_adopt_task_instances, tis, fallback=[]
    )


def _name(executor: BaseExecutor) -> str:
    return str(executor.name.alias if executor.name else type(executor).__name__)


def log_failure_or_raise(executor: BaseExecutor, stage: str) -> None:
    """
    Call in an ``except`` block: log and count a team executor's failure, re-raise a team-less one's.

    Executors without a team (single-team mode) fail as upstream does. Every failure is counted; its
    traceback is logged at most once a minute.
    """
    from airflow.stats import Stats

    team = getattr(executor, "team_name", None)
    if not team:
        raise
    if (exiting := _exit_behind(sys.exc_info()[1])) is not None:
        raise exiting  # the scheduler is exiting (SIGTERM) and the executor failed on the way out
    name = _name(executor)
    Stats.incr("teams.executor_failure", tags={"team": team, "executor": name, "stage": stage})
    state, now = health(executor), time.monotonic()
    if now - state.last_traceback.get(stage, -FAILURE_LOG_INTERVAL) >= FAILURE_LOG_INTERVAL:
        state.last_traceback[stage] = now
        state.failing.add(stage)
        log.exception(
            "Executor %s of team %s failed in %s; the other teams' executors carry on.", name, team, stage
        )
        _audit(EXECUTOR_FAILED, executor, stage, error=_one_line(sys.exc_info()[1]))


def _exit_behind(error: BaseException | None) -> BaseException | None:
    """Return the SystemExit or KeyboardInterrupt during whose handling ``error`` was raised, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (SystemExit, KeyboardInterrupt)):
            return error
        seen.add(id(error))
        error = error.__context__
    return None


def _recovered(executor: BaseExecutor, stage: str) -> None:
    state = _health.get(executor)
    if state is not None and stage in state.failing:
        state.failing.discard(stage)
        log.info("Executor %s of team %s works again (%s).", _name(executor), executor.team_name, stage)
        _audit(EXECUTOR_RECOVERED, executor, stage)


# The audit log rows of a team executor's failures (at most one a minute per stage) and recoveries:
# ``airflow teams doctor`` reads them from another process.
EXECUTOR_FAILED = "teams.executor_failure"
EXECUTOR_RECOVERED = "teams.executor_recovered"


def _audit(event: str, executor: BaseExecutor, stage: str, **details: str) -> None:
    from airflow.teams import denials

    details = {"team": executor.team_name, "executor": _name(executor), "stage": stage, **details}
    denials.write_audit_row(event, None, details, None)


def _one_line(error: BaseException | None) -> str:
    text = f"{type(error).__name__}: {error}" if error is not None else ""
    return text.splitlines()[0][:300] if text else ""


def _started(executor: BaseExecutor) -> bool:
    return _isolated(executor, "start", lambda: executor.start() or True, fallback=False)


def _isolated(executor: BaseExecutor, stage: str, call: Callable, *args, fallback=None):
    """Run one executor call; a team executor's failure is logged and gives ``fallback``."""
    try:
        value = call(*args)
    except Exception:
        log_failure_or_raise(executor, stage)
        return fallback
    _recovered(executor, stage)
    return value
