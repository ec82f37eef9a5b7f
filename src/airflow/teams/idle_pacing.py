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
Housekeeping a team's component does less often than every loop.

Upstream's triggerer and dag-processor run their housekeeping queries in every loop, about once a
second. With one triggerer and one dag-processor per team that is a query per team per second each
(with database isolation, an internal API call each) while nothing happens. A team's component runs
them at most every ``seconds``; a component of no team keeps upstream's pace.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from airflow.teams import process_team

if TYPE_CHECKING:
    from airflow.jobs.triggerer_job_runner import TriggerRunner


class AtMostEvery:
    """Whether a housekeeping step is due: at most every ``seconds`` in a team's process, else always."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.done_at: float | None = None

    def due(self) -> bool:
        if process_team.serving_team() is None:
            return True
        now = time.monotonic()
        if self.done_at is not None and now - self.done_at < self.seconds:
            return False
        self.done_at = now
        return True


# An unused trigger runs up to this much longer: its events change nothing (they update only the task
# instances still deferred on it).
CLEAN_UNUSED_TRIGGERS = AtMostEvery(30.0)
# Warnings of DAGs that became inactive stay up to this much longer.
PURGE_INACTIVE_DAG_WARNINGS = AtMostEvery(30.0)


# A team's idle dag-processor loops this often (upstream: every second). Its loop still wakes when a
# parsing process finishes; callbacks, parsing requests from the UI and files due for parsing wait up to
# this long, and each loop is one internal API call per poll with database isolation.
TEAM_DAG_PROCESSOR_LOOP_SECONDS = 5.0


# A team's triggerer that runs no trigger asks for new ones at most this often (upstream: every 1 s loop):
# a task deferred in an idle team waits up to this long for its trigger to start. While it runs triggers,
# it asks every loop, so cancelled triggers stop as upstream's do.
IDLE_TRIGGERER_POLL = AtMostEvery(5.0)


def trigger_runner_idle(trigger_runner: TriggerRunner) -> bool:
    """Whether a triggerer's runner runs no trigger and has none to start and no event or failure to hand over."""
    return not (
        trigger_runner.triggers
        or trigger_runner.to_create
        or trigger_runner.events
        or trigger_runner.failed_triggers
    )


def triggerer_loop_seconds(trigger_runner: TriggerRunner) -> float:
    """
    Return how long a triggerer's main loop sleeps: upstream's 1 s, or the idle poll's 5 s in a team's idle one.

    An idle team triggerer's loop has nothing to do but the poll for new triggers (at most every 5 s) and
    its heartbeat (every 5 s), so it wakes for those only.
    """
    if process_team.serving_team() is not None and trigger_runner_idle(trigger_runner):
        return IDLE_TRIGGERER_POLL.seconds
    return 1.0


async def until_a_trigger_runs(trigger_runner: TriggerRunner) -> None:
    """
    In a team's triggerer, wait until its runner has a trigger (checking every second); else return at once.

    Upstream's watchdog of blocking triggers wakes ten times a second; with no trigger nothing can block
    the runner's event loop, so a team's idle triggerer does not watch it.
    """
    if process_team.serving_team() is None:
        return
    while not trigger_runner.stop and trigger_runner_idle(trigger_runner):
        await asyncio.sleep(1.0)


def dag_processor_loop_seconds() -> float:
    """Return how long a dag-processor's idle loop lasts: 5 s in a team's process, upstream's 1 s else."""
    return TEAM_DAG_PROCESSOR_LOOP_SECONDS if process_team.serving_team() is not None else 1.0


def heartbeat_in_one_call() -> bool:
    """
    Whether a job's heartbeat writes its row without reading it first: in a team's process.

    Upstream's ``Job.heartbeat`` reads the job's row (to stop a job set to restarting), then writes its
    heartbeat: two internal API calls every 5 s per component with database isolation. The write returns
    the row, so a team's job checks its state in the answer instead, in the same heartbeat.
    """
    return process_team.serving_team() is not None
