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
A team's LocalExecutor starts its worker processes when tasks wait for one, not ``parallelism`` at start.

Upstream's LocalExecutor with ``parallelism`` N starts N worker processes and a multiprocessing manager
process when the scheduler starts, and keeps them while nothing runs: with one LocalExecutor per team
that is N + 1 idle processes per team. A team's LocalExecutor keeps the same queue semantics (a worker
takes tasks from a queue, at most ``parallelism`` run at once) but without the manager process, with
no worker while no task waits, and a worker leaves after ``IDLE_SECONDS`` without a task. With database
isolation a worker runs its tasks in forks of its task fork server (``teams.task_fork_server``), not in
a new interpreter each.
"""

from __future__ import annotations

import multiprocessing
import subprocess
from contextlib import suppress
from queue import Empty
from typing import TYPE_CHECKING, Any

from airflow.api_internal import isolation
from airflow.executors.base_executor import BaseExecutor
from airflow.executors.local_executor import QueuedLocalWorker
from airflow.teams import environments
from airflow.teams.task_fork_server import ForkServerClient
from airflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from airflow.executors.base_executor import CommandType
    from airflow.executors.local_executor import LocalExecutor
    from airflow.models.taskinstance import TaskInstanceKey

# A worker without a task for this long leaves; the next task starts a new one (a fork: milliseconds).
IDLE_SECONDS = 30.0


class IdleLeavingWorker(QueuedLocalWorker):
    """A queued local worker that leaves after ``idle_seconds`` without a task."""

    def __init__(self, task_queue, result_queue, idle_seconds: float, team: str | None = None):
        super().__init__(task_queue, result_queue)
        self.idle_seconds = idle_seconds
        self.team = team
        # starts its server at the first isolated task, from the team's environment, as the team's user
        self.fork_server = ForkServerClient(environments.python(team), environments.unix_user(team))

    def do_work(self) -> None:
        try:
            while True:
                try:
                    key, command = self.task_queue.get(timeout=self.idle_seconds)
                except (Empty, EOFError):
                    return
                try:
                    if key is None or command is None:
                        return
                    self.execute_work(key=key, command=command)
                finally:
                    self.task_queue.task_done()
        finally:
            self.fork_server.close()

    def _execute_work_in_fork(self, command: CommandType) -> TaskInstanceState:
        """Fork the scheduler for the task, unless the team has its own environment: that needs its Python."""
        if environments.of_team(self.team) is not None:
            return self._execute_in_team_environment(command)
        return super()._execute_work_in_fork(command)

    def _execute_work_in_subprocess(self, command: CommandType) -> TaskInstanceState:
        """With database isolation, run the task in a fork of the worker's task fork server."""
        if not isolation.enabled():
            if environments.of_team(self.team) is not None:
                return self._execute_in_team_environment(command)
            # [core] execute_tasks_new_python_interpreter: upstream's new interpreter
            return super()._execute_work_in_subprocess(command)
        # A team's executor runs only its team's tasks: one server, started with the team's environment.
        env = isolation.task_environment(BaseExecutor.validate_airflow_tasks_run_command(command)[0])
        if (code := self.fork_server.run(command, env)) != 0:
            self.log.error("Failed to execute task %s: exit code %s.", command, code)
            return TaskInstanceState.FAILED
        return TaskInstanceState.SUCCESS

    def _execute_in_team_environment(self, command: CommandType) -> TaskInstanceState:
        """Run the task as a new interpreter of the team's own environment (upstream's way, its Python)."""
        try:
            subprocess.check_call(environments.task_command(self.team, command), close_fds=True)
        except subprocess.CalledProcessError as err:
            self.log.error("Failed to execute task %s.", err)
            return TaskInstanceState.FAILED
        return TaskInstanceState.SUCCESS


class WorkersOnDemand:
    """
    The LocalExecutor's implementation for a team executor (as ``LocalExecutor.LimitedParallelism``).

    Every task given and not yet reported holds a worker or waits in the queue, so the executor keeps
    at least min(parallelism, tasks not reported) workers alive: it starts them when a task is given
    and, at each sync, replaces those that left.
    """

    def __init__(self, executor: LocalExecutor):
        self.executor = executor
        self.idle_seconds = IDLE_SECONDS
        self.queue: multiprocessing.JoinableQueue | None = None
        self.not_reported = 0

    def start(self) -> None:
        self.queue = multiprocessing.JoinableQueue()
        self.executor.result_queue = multiprocessing.JoinableQueue()
        self.executor.workers = []
        self.executor.workers_used = 0

    def execute_async(
        self,
        key: TaskInstanceKey,
        command: Any,
        queue: str | None = None,
        executor_config: Any | None = None,
    ) -> None:
        self.queue.put((key, command))
        self.not_reported += 1
        self._keep_enough_workers()

    def sync(self) -> None:
        with suppress(Empty):
            while True:
                results = self.executor.result_queue.get_nowait()
                try:
                    self.executor.change_state(*results)
                finally:
                    self.executor.result_queue.task_done()
                    self.not_reported -= 1
        self._keep_enough_workers()

    def end(self) -> None:
        """Let every given task finish, then stop the workers."""
        self._keep_enough_workers()
        for _ in self.executor.workers:
            self.queue.put((None, None))
        for worker in self.executor.workers:
            worker.join()
        self.executor.sync()
        self.executor.workers = []

    def _keep_enough_workers(self) -> None:
        workers = [worker for worker in self.executor.workers if worker.is_alive()]  # reaps those that left
        wanted = min(self.executor.parallelism, self.not_reported)
        while len(workers) < wanted:
            worker = IdleLeavingWorker(
                self.queue, self.executor.result_queue, self.idle_seconds, self.executor.team_name
            )
            worker.start()
            workers.append(worker)
        self.executor.workers = workers
        self.executor.workers_used = len(workers)


def start(executor: LocalExecutor) -> None:
    """Start a team's LocalExecutor: no manager process, workers on demand (``executor.manager`` stays None)."""
    executor.manager = None
    executor.impl = WorkersOnDemand(executor)
    executor.impl.start()
