"""An executor that completes every task instantly, for measuring the scheduler loop alone.

Loaded by the scheduler of both sides (vanilla 2.11.2 and the fork) from ``PYTHONPATH``. The scheduler
heartbeats its executors in the order it loaded them; the last one's heartbeat marks the tasks handed
to every instance since the last loop ``success`` in one UPDATE (as the tasks' own processes would) and
reports each to the executor that got it, so the scheduler processes them in the same loop. A scheduler
that does not heartbeat an idle executor in every loop (the fork's team executors) may skip the last
one: then the first read of an event buffer in that loop, after the heartbeats, does the same. So the
benchmark executor costs one transaction per loop whether one executor or a hundred run, and its CPU
time is recorded, for the benchmark to subtract from the scheduler's. Its statements carry the comment
``instant-executor`` for pg_stat_statements; it writes its numbers to ``$BENCH_EXECUTOR_STATS_DIR`` at
the end.
"""

from __future__ import annotations

import json
import os
import time

from sqlalchemy import text

from airflow.executors.base_executor import BaseExecutor
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState

COMPLETE = text(
    "/* instant-executor */ UPDATE task_instance SET state = 'success', start_date = now(), "
    "end_date = now(), duration = 0 "
    "WHERE dag_id = :dag_id AND task_id = :task_id AND run_id = :run_id AND map_index = :map_index"
)

_instances: list[InstantExecutor] = []  # in load order, which is the scheduler's heartbeat order
_pending: list[tuple[InstantExecutor, object]] = []
_totals = {"cpu": 0.0, "transactions": 0, "completed": 0, "first_cpu": None, "first_wall": None,
           "last_cpu": None, "last_wall": None}


class InstantExecutor(BaseExecutor):
    supports_multi_team = True  # read by the fork only

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reports = 0
        _instances.append(self)

    def execute_async(self, key, command, queue=None, executor_config=None):
        if _totals["first_cpu"] is None:
            _totals["first_cpu"], _totals["first_wall"] = time.process_time(), time.time()
        _pending.append((self, key))

    def sync(self):
        if self is _instances[-1]:
            _complete_pending()

    def get_event_buffer(self, dag_ids=None):
        _complete_pending()
        return super().get_event_buffer(dag_ids)

    def end(self):
        _complete_pending()
        if self is _instances[-1]:
            path = os.path.join(os.environ.get("BENCH_EXECUTOR_STATS_DIR", "."), "executor.json")
            with open(path, "w") as out:
                json.dump({**_totals, "reports": sum(e.reports for e in _instances)}, out)

    def terminate(self):
        pass


def _complete_pending():
    """Mark every task handed to an instance since the last call success, in one transaction."""
    if not _pending:
        return
    started = time.process_time()
    items = list(_pending)
    _pending.clear()
    with create_session() as session:
        session.execute(COMPLETE, [
            {"dag_id": k.dag_id, "task_id": k.task_id, "run_id": k.run_id, "map_index": k.map_index}
            for _, k in items
        ])
    reporting = set()
    for executor, key in items:
        executor.change_state(key, TaskInstanceState.SUCCESS)
        reporting.add(id(executor))
    for executor in _instances:
        executor.reports += id(executor) in reporting
    _totals["transactions"] += 1
    _totals["completed"] += len(items)
    _totals["last_cpu"], _totals["last_wall"] = time.process_time(), time.time()
    _totals["cpu"] += time.process_time() - started
