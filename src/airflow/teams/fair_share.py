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

import functools
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

from sqlalchemy import and_, func, nullsfirst, select

from airflow.teams import multi_team_enabled
from airflow.teams.ids import team_prefix

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from sqlalchemy.sql import Select

    from airflow.executors.base_executor import BaseExecutor


class _Turns(NamedTuple):
    """Each candidate row's turn within its team (a CTE), how to join it, and the order within a team."""

    cte: Any
    on_keys: Any
    order: tuple


def _turns(dag_id: Any, keys: tuple, candidates: tuple, order: tuple) -> _Turns:
    turn = func.row_number().over(partition_by=team_prefix(dag_id), order_by=order).label("turn")
    # A window function cannot be in a query that locks rows (FOR UPDATE), so the turns are computed
    # apart, once: a materialized CTE. As a subquery, PostgreSQL (its estimates of freshly written rows
    # at one row) joined it in a nested loop that computed the turns again for every candidate row.
    turns = select(*keys, turn).where(*candidates).cte("team_turns")
    turns = turns.prefix_with("MATERIALIZED", dialect="postgresql")
    return _Turns(turns, and_(*(turns.c[key.key] == key for key in keys)), order)


def _in_turns(query: Select, turns: _Turns) -> Select:
    """Order ``query`` by each row's turn within its team, then by the order within a team."""
    return query.join(turns.cte, turns.on_keys).order_by(None).order_by(turns.cte.c.turn, *turns.order)


# The clauses are the same in every scheduler loop: built once per process (and state and dialect).
@functools.lru_cache(maxsize=None)
def _task_instance_turns() -> _Turns:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.state import TaskInstanceState

    return _turns(
        TI.dag_id,
        keys=(TI.dag_id, TI.task_id, TI.run_id, TI.map_index),
        # Every scheduled task instance takes a turn; those of runs not running are then left out by the
        # query itself. (With the runs' state here, PostgreSQL scanned every running run per candidate.)
        candidates=(
            TI.state == TaskInstanceState.SCHEDULED,
            DagRun.dag_id == TI.dag_id,
            DagRun.run_id == TI.run_id,
        ),
        # SchedulerJobRunner._executable_task_instances_to_queued's order
        order=(-TI.priority_weight, DagRun.execution_date, TI.map_index),
    )


@functools.lru_cache(maxsize=None)
def _run_turns(state: str, dialect: str) -> _Turns:
    from airflow.models.dagrun import DagRun

    # DagRun.next_dagruns_to_examine's order (airflow.utils.sqlalchemy.nulls_first for ``dialect``)
    last_decision = DagRun.last_scheduling_decision
    return _turns(
        DagRun.dag_id,
        keys=(DagRun.id,),
        candidates=(DagRun.state == state,),
        order=(
            nullsfirst(last_decision) if dialect == "postgresql" else last_decision,
            DagRun.execution_date,
        ),
    )


def take_turns(query: Select) -> Select:
    """Order the scheduler's query of task instances to queue so that the teams take turns."""
    if not multi_team_enabled():
        return query
    return _in_turns(query, _task_instance_turns())


def runs_take_turns(query: Select, state: str, session: Session) -> Select:
    """Order the scheduler's query of DAG runs to examine (``state``) so that the teams take turns."""
    if not multi_team_enabled():
        return query
    return _in_turns(query, _run_turns(str(state), session.bind.dialect.name))


def parallelism(executors: Sequence[BaseExecutor], parallelism: int) -> int:
    """Return the scheduler-wide limit of running task instances: in multi-team mode, its executors' sum."""
    if not multi_team_enabled():
        return parallelism
    limits = [executor.parallelism for executor in executors]
    return 0 if 0 in limits else sum(limits)
