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
An isolated team's task processes are forks of a credential-less interpreter that has Airflow imported.

With database access isolation the scheduler's LocalExecutor must not fork its task processes (a fork of
the scheduler holds the database credentials), so upstream's way is a new interpreter per task: about two
seconds of imports before each task starts. A worker of a team's LocalExecutor starts one fork server
instead: a new interpreter with the task environment (no database URL, only its team's variables) that
imports Airflow once and then forks a child per task, which runs the task command as ``airflow`` would.
The server holds nothing a task may not hold, and runs one task at a time: the worker's.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Sequence

from airflow.teams import forked_child

log = logging.getLogger(__name__)

# What every task process imports before its DAG file: imported once by the server.
PRELOAD = (
    "airflow.cli.commands.task_command",
    "airflow.jobs.local_task_job_runner",
    "airflow.task.task_runner.standard_task_runner",
    "airflow.models.dagbag",
    "airflow.operators.python",
)


class ForkServerClient:
    """The worker's side: start the server (at the first task), send it a command, read its exit code."""

    def __init__(self, python: str = sys.executable, user: str | None = None):
        self.python = python  # the interpreter of the team's environment
        # The team's Unix user: the server and every task run as it, its primary group only, its home.
        self.as_user: dict = {}
        self.user_environment: dict[str, str] = {}
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            self.as_user = {"user": user, "group": entry.pw_gid, "extra_groups": []}
            self.user_environment = {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user}
        self.process: subprocess.Popen | None = None
        self.commands = None
        self.results = None

    def run(self, command: Sequence[str], env: dict[str, str]) -> int:
        """
        Run ``airflow ...`` (``command``) in a fork of the server with environment ``env``; return its exit code.

        A server started with another environment imported Airflow with it: give a client one team's tasks.
        """
        if self.process is not None and self.process.poll() is not None:
            self.close()  # it died between two tasks
        env = {**env, **self.user_environment}
        if self.process is None:
            self._start(env)
        try:
            self.commands.write(json.dumps({"argv": list(command), "env": env}) + "\n")
            self.commands.flush()
            answer = self.results.readline()
        except (BrokenPipeError, ValueError):
            answer = ""
        if not answer:  # the server died: this task failed, the next one starts a new server
            log.error("The task fork server (pid %s) stopped: %s failed", self.process.pid, command)
            self.close()
            return 1
        return int(answer)

    def _start(self, env: dict[str, str]) -> None:
        command_read, command_write = os.pipe()
        result_read, result_write = os.pipe()
        self.process = subprocess.Popen(
            [self.python, "-m", __name__, str(command_read), str(result_write)],
            env=env,
            pass_fds=(command_read, result_write),
            close_fds=True,
            **self.as_user,
        )
        os.close(command_read)
        os.close(result_write)
        self.commands = os.fdopen(command_write, "w")
        self.results = os.fdopen(result_read)

    def close(self) -> None:
        """Stop the server: it exits when its command pipe closes."""
        for stream in (self.commands, self.results):
            if stream is not None:
                stream.close()
        if self.process is not None:
            self.process.wait()
        self.process = self.commands = self.results = None


def _run_in_child(request: dict, command_fd: int, result_fd: int) -> None:
    """In the forked child: run the command as the ``airflow`` entry point would; never return."""
    os.close(command_fd)  # the task cannot read the next command or write a result
    os.close(result_fd)
    command = request["argv"]

    def run_command() -> None:
        from setproctitle import setproctitle

        from airflow.__main__ import main

        setproctitle(f"airflow task supervisor: {command}")  # as upstream's LocalExecutor names a forked task

        os.environ.clear()
        os.environ.update(request["env"])  # e.g. the task's parsing context (AIRFLOW_PARSING_CONTEXT_*)
        sys.argv = ["airflow", *command[1:]]
        main()

    forked_child.run_and_exit(run_command, f"Task command {command} failed")


def _warm_up() -> None:
    """Do once what every ``airflow tasks run`` does first: its configuration, providers' options, CLI parser."""
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed
    from airflow.providers_manager import ProvidersManager

    write_default_airflow_configuration_if_needed()
    ProvidersManager().initialize_providers_configuration()
    cli_parser.get_parser()  # cached


def serve_commands(command_fd: int, result_fd: int) -> None:
    """Serve the worker: for each command line read, fork a child that runs it; write the child's exit code."""
    import importlib
    import signal

    from setproctitle import setproctitle

    setproctitle("airflow task fork server -- LocalExecutor")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the worker, whose pipe's end stops the server
    for module in PRELOAD:
        importlib.import_module(module)
    _warm_up()
    with os.fdopen(command_fd) as commands, os.fdopen(result_fd, "w") as results:
        for line in commands:
            pid = os.fork()
            if pid == 0:
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
                    signal.signal(signum, signal.SIG_DFL)
                _run_in_child(json.loads(line), command_fd, result_fd)
            _, status = os.waitpid(pid, 0)
            results.write(f"{os.waitstatus_to_exitcode(status)}\n")
            results.flush()


if __name__ == "__main__":
    serve_commands(int(sys.argv[1]), int(sys.argv[2]))
