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
A team's triggerer takes its triggers with one call per loop.

Upstream's triggerer loop, once a second, assigns itself unassigned triggers and then lists the triggers
assigned to it: two queries, and with database isolation two internal API calls a second per team while
nothing happens. A team's triggerer makes both in one call, in one transaction of its internal API, and
while it runs no trigger, makes it at most every 5 s (``idle_pacing.IDLE_TRIGGERER_POLL``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.api_internal.internal_api_call import internal_api_call
from airflow.teams import idle_pacing, process_team
from airflow.utils.session import NEW_SESSION, provide_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow.jobs.triggerer_job_runner import TriggererJobRunner


@internal_api_call
@provide_session
def assign_and_list(
    triggerer_id: int, capacity: int, health_check_threshold: float, session: Session = NEW_SESSION
) -> list[int]:
    """Assign unassigned triggers to the triggerer (up to its capacity), then return the ids of its triggers."""
    from airflow.models.trigger import Trigger

    Trigger.assign_unassigned(triggerer_id, capacity, health_check_threshold, session=session)
    return Trigger.ids_for_triggerer(triggerer_id, session=session)


def load_in_one_call(runner: TriggererJobRunner) -> bool:
    """Load a team triggerer's triggers with one call; False (nothing done) in a process of no team."""
    if process_team.serving_team() is None:
        return False
    if idle_pacing.trigger_runner_idle(runner.trigger_runner) and not idle_pacing.IDLE_TRIGGERER_POLL.due():
        return True
    ids = assign_and_list(runner.job.id, runner.capacity, runner.health_check_threshold)
    runner.trigger_runner.update_triggers(set(ids))
    return True
