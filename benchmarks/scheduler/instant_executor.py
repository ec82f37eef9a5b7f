"""An executor that completes every task instantly, for measuring the scheduler loop alone.

Loaded by the scheduler of both sides (vanilla 2.11.2 and the fork) from ``PYTHONPATH``. Each heartbeat
marks all tasks handed to it since the last one ``success`` in one UPDATE (as a task's own process would)
and reports them to the scheduler. Its own CPU time is measured, so the benchmark can subtract it
from the scheduler's. Statements it sends carry the comment ``instant-executor`` for pg_stat_statements.
"""

from __future__ import annotations

import json
import os
import time

from sqlalchemy import text

from airflow.executors.base_executor import BaseExecutor
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState

STATS_DIR = os.environ.get("BENCH_EXECUTOR_STATS_DIR", ".")

COMPLETE = text(
    "/* instant-executor */ UPDATE task_instance SET state = 'success', start_date = now(), "
    "end_date = now(), duration = 0, try_number = try_number "
    "WHERE dag_id = :dag_id AND task_id = :task_id AND run_id = :run_id AND map_index = :map_index"
)


class InstantExecutor(BaseExecutor):
    supports_multi_team = True  # read by the fork only

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending = []
        self.own_cpu = 0.0
        self.batches = 0
        self.completed = 0
        self.first_cpu = None
        self.first_wall = None
        self.last_cpu = None
        self.last_wall = None

    def execute_async(self, key, command, queue=None, executor_config=None):
        if self.first_cpu is None:
            self.first_cpu, self.first_wall = time.process_time(), time.time()
        self.pending.append(key)

    def sync(self):
        if not self.pending:
            return
        started = time.process_time()
        keys, self.pending = self.pending, []
        with create_session() as session:
            session.execute(COMPLETE, [
                {"dag_id": k.dag_id, "task_id": k.task_id, "run_id": k.run_id, "map_index": k.map_index}
                for k in keys
            ])
        for key in keys:
            self.change_state(key, TaskInstanceState.SUCCESS)
        self.batches += 1
        self.completed += len(keys)
        self.last_cpu, self.last_wall = time.process_time(), time.time()
        self._write_stats()
        self.own_cpu += time.process_time() - started

    def _write_stats(self):
        name = getattr(getattr(self, "name", None), "alias", None) or "default"
        path = os.path.join(STATS_DIR, f"executor-{name}.json")
        with open(path + ".tmp", "w") as out:
            json.dump({"own_cpu": self.own_cpu, "batches": self.batches, "completed": self.completed,
                       "first_cpu": self.first_cpu, "first_wall": self.first_wall,
                       "last_cpu": self.last_cpu, "last_wall": self.last_wall}, out)
        os.replace(path + ".tmp", path)

    def end(self):
        self.sync()

    def terminate(self):
        pass
