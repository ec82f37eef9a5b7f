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
Each team's fair share of the scheduler's queuing, so that one team's backlog cannot starve another.

The scheduler queues task instances in batches (``[scheduler] max_tis_per_query``), taken in one order
for all DAGs: priority, then the oldest run first. With many teams this order lets one team that
schedules thousands of tasks fill every batch until its backlog is gone, and the scheduler-wide
``[core] parallelism`` lets a team whose tasks run long hold every slot of the scheduler, although each
team executor has its own ``parallelism``. In multi-team mode:

* ``take_turns`` makes the teams take turns within a batch: each team's first task instance (in the
  usual order), then each team's second, and so on; ``runs_take_turns`` does the same for the DAG
  runs the scheduler examines per loop (``[scheduler] max_dagruns_per_loop_to_schedule``), so a team
  with many runs does not delay the scheduling of another team's run;
* ``parallelism`` makes the scheduler-wide limit the sum of the executors' own limits, so
  a team is limited by its own executors only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy import and_, func, select

from airflow.teams import multi_team_enabled
from airflow.teams.ids import team_prefix

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from sqlalchemy.sql import Select

    from airflow.executors.base_executor import BaseExecutor


def _in_turns(query: Select, dag_id: Any, keys: tuple, candidates: tuple, order: tuple) -> Select:
    """Order ``query`` by each row's turn within its team (``order`` within a team), then by ``order``."""
    turn = func.row_number().over(partition_by=team_prefix(dag_id), order_by=order).label("turn")
    # A window function cannot be in a query that locks rows (FOR UPDATE), so it is in a subquery.
    turns = select(*keys, turn).where(*candidates).subquery("team_turns")
    on_keys = and_(*(turns.c[key.key] == key for key in keys))
    return query.join(turns, on_keys).order_by(None).order_by(turns.c.turn, *order)


def take_turns(query: Select) -> Select:
    """Order the scheduler's query of task instances to queue so that the teams take turns."""
    if not multi_team_enabled():
        return query
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.state import DagRunState, TaskInstanceState

    return _in_turns(
        query,
        TI.dag_id,
        keys=(TI.dag_id, TI.task_id, TI.run_id, TI.map_index),
        candidates=(
            TI.state == TaskInstanceState.SCHEDULED,
            DagRun.dag_id == TI.dag_id,
            DagRun.run_id == TI.run_id,
            DagRun.state == DagRunState.RUNNING,
        ),
        # SchedulerJobRunner._executable_task_instances_to_queued's order
        order=(-TI.priority_weight, DagRun.execution_date, TI.map_index),
    )


def runs_take_turns(query: Select, state: str, session: Session) -> Select:
    """Order the scheduler's query of DAG runs to examine (``state``) so that the teams take turns."""
    if not multi_team_enabled():
        return query
    from airflow.models.dagrun import DagRun
    from airflow.utils.sqlalchemy import nulls_first

    return _in_turns(
        query,
        DagRun.dag_id,
        keys=(DagRun.id,),
        candidates=(DagRun.state == state,),
        # DagRun.next_dagruns_to_examine's order
        order=(nulls_first(DagRun.last_scheduling_decision, session=session), DagRun.execution_date),
    )


def parallelism(executors: Sequence[BaseExecutor], parallelism: int) -> int:
    """Return the scheduler-wide limit of running task instances: in multi-team mode, its executors' sum."""
    if not multi_team_enabled():
        return parallelism
    limits = [executor.parallelism for executor in executors]
    return 0 if 0 in limits else sum(limits)
