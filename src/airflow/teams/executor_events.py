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
The executor events of every team executor, processed by the scheduler as one buffer.

``SchedulerJobRunner._process_executor_events`` reads the task instances of an executor's events with
one query (and one more for their DAGs). It runs once per executor and scheduler loop, so with an
executor per team a loop that finishes one task in each of 100 teams costs 200 queries instead of 2;
measured with benchmarks/scheduler_throughput.py it was most of the multi-team scheduler overhead.
``event_sources`` hands the scheduler one object standing in for all team executors instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from airflow.teams import multi_team_enabled

if TYPE_CHECKING:
    from airflow.callbacks.callback_requests import CallbackRequest
    from airflow.executors.base_executor import BaseExecutor
    from airflow.models.taskinstance import TaskInstance


def event_sources(executors: Sequence[BaseExecutor]) -> Sequence[Any]:
    """Return what the scheduler reads executor events from: each executor, or all team executors as one."""
    if not multi_team_enabled() or len(executors) < 2:
        return executors
    return [TeamExecutorEvents(executors)]


def with_task_event_logs(executors: Sequence[BaseExecutor]) -> Sequence[BaseExecutor]:
    """
    Return the executors whose task event logs the scheduler saves in this loop.

    Upstream opens a database session for each executor in every loop, also for one that logged nothing;
    in multi-team mode (an executor per team) only the executors with log entries are returned.
    """
    if not multi_team_enabled():
        return executors
    return [executor for executor in executors if getattr(executor, "_task_event_logs", None)]


class _MergedBuffer(dict):
    """The merged event buffer; popping a task's event tells the owner which executor reported it."""

    def __init__(self, owner: TeamExecutorEvents):
        super().__init__()
        self._owner = owner

    def pop(self, key, *default):
        self._owner.reporting = self._owner.executor_of(key)
        return super().pop(key, *default)


class TeamExecutorEvents:
    """
    The parts of the executor interface the scheduler's event processing uses, over many executors.

    The scheduler pops a task's event before it logs or handles it, so ``str(self)`` (in its log lines)
    and ``has_task`` name the executor that reported the task being handled.
    """

    def __init__(self, executors: Sequence[BaseExecutor]):
        self.executors = executors
        self.reporting: BaseExecutor | None = None
        self._by_task: dict[tuple, BaseExecutor] = {}

    def get_event_buffer(self) -> _MergedBuffer:
        merged = _MergedBuffer(self)
        for executor in self.executors:
            events = executor.get_event_buffer()
            for key in events:
                self._by_task[key.primary] = executor
            merged.update(events)
        return merged

    def executor_of(self, key) -> BaseExecutor | None:
        return self._by_task.get(key.primary)

    def has_task(self, ti: TaskInstance) -> bool:
        executor = self.executor_of(ti.key)
        return executor is not None and executor.has_task(ti)

    def send_callback(self, request: CallbackRequest) -> None:
        # Every executor of the scheduler shares its callback sink.
        (self.reporting or self.executors[0]).send_callback(request)

    def __str__(self) -> str:
        return str(self.reporting) if self.reporting else f"{len(self.executors)} team executors"

    __repr__ = __str__
