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
The internal APIs of several teams of one host from one parent: ``airflow internal-api --teams a,b``.

A team's internal API (``internal-api --team T``) is a gunicorn whose one worker imports Airflow and
builds the app: about 130 MB per team, nearly all of it the same in every team's worker. This command
builds the app once, in a parent that serves no team and answers no request, and forks each team's
``internal-api --team T`` from it, which runs its gunicorn in its own process (no ``exec``), so the
pages of the imports and the app stay shared until written. Each team keeps its own server: the port
of its ``internal_api_url``, its key and policies, its pid file, its log (``--teams-log-dir``). The
parent restarts a team's server that exits, alone; the other teams' servers do not notice.
"""

from __future__ import annotations

import copy
import gc
import inspect
import logging
import os
import signal
import sys
import time
from urllib.parse import urlparse

from airflow.teams import config, forked_child, internal_api, multi_team_enabled, process_team

log = logging.getLogger(__name__)

# A team's server that exits sooner than this after its start is restarted after a growing delay.
STABLE_AFTER = 30.0
MAX_RESTART_DELAY = 60.0


def teams_of(args) -> list[str]:
    """Return the teams of ``--teams`` (none without it); exit with one line if they are wrong."""
    given = getattr(args, "teams", None)
    if not given:
        return []
    teams = [team.strip() for team in given.split(",") if team.strip()]
    if not multi_team_enabled():
        raise SystemExit("airflow internal-api --teams needs [core] multi_team = True.")
    if getattr(args, "team", None):
        raise SystemExit("airflow internal-api takes --team (one team) or --teams (several), not both.")
    if getattr(args, "daemon", False) or getattr(args, "debug", False):
        raise SystemExit("airflow internal-api --teams runs in the foreground, without --daemon or --debug.")
    if len(set(teams)) != len(teams):
        raise SystemExit(f"airflow internal-api --teams names a team twice: {given!r}.")
    configured = config.load().teams
    if unknown := [team for team in teams if team not in configured]:
        raise SystemExit(
            f"airflow internal-api --teams: {', '.join(map(repr, unknown))} is not a configured team. "
            f"Configured teams: {', '.join(configured)}."
        )
    for team in teams:
        internal_api.check_server(team)
        port_of(team)
    return teams


def port_of(team: str) -> int:
    """Return the port of the team's ``internal_api_url``: where its components call its server."""
    try:
        url = urlparse(internal_api.endpoint(team))
        port = url.port
    except (config.TeamsConfigError, ValueError) as err:
        raise SystemExit(str(err))
    if port is None:
        raise SystemExit(
            f"Invalid configuration: {config.team_env_var(team, 'core', 'internal_api_url')} names no port; "
            "airflow internal-api --teams serves each team on the port of its internal_api_url."
        )
    return port


def serve_teams(args) -> bool:
    """Run ``internal-api --teams``, until stopped; return False without ``--teams``."""
    teams = teams_of(args)
    if not teams:
        return False
    _build_the_app_of_every_team()
    _Parent(args, teams).run()
    return True


def _build_the_app_of_every_team() -> None:
    """
    Build, once and for every team, the app each team's worker serves (``cached_app()``).

    The app reads the team it serves per request (``process_team``, the team's keys and policies),
    never when it is built, so one app fits every team's server; each worker forked from here gets
    its own copy of the pages it writes.
    """
    import sqlalchemy.orm

    from airflow import settings
    from airflow.cli.commands import internal_api_command

    # Python's advice for fork without exec (gc.freeze): no collection leaving holes in the parent's
    # pages, which the children's new objects would fill (copying the pages); the children collect.
    gc.disable()
    import gunicorn.app.wsgiapp  # what each team's gunicorn master and worker import: shared as well
    import gunicorn.arbiter
    import gunicorn.workers.gthread  # noqa: F401

    internal_api_command.cached_app()
    sqlalchemy.orm.configure_mappers()
    if settings.engine is not None:
        settings.engine.dispose()  # the CLI's audit row's connection: no team's server inherits it
    gc.freeze()


class _Parent:
    """Forks, watches and stops one team's server per team."""

    def __init__(self, args, teams: list[str]):
        self.args = args
        self.teams = teams
        self.children: dict[int, tuple[str, float]] = {}  # pid: (team, start time)
        self.delays = dict.fromkeys(teams, 1.0)
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for team in self.teams:
            self._start(team)
        log.info("The internal APIs of teams %s run (parent pid %s)", ", ".join(self.teams), os.getpid())
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in self.children:
                continue
            team, started = self.children.pop(pid)
            if not self.stopping:
                self._restart(team, started, os.waitstatus_to_exitcode(status))

    def _restart(self, team: str, started: float, code: int) -> None:
        delay = self.delays[team] if time.monotonic() - started < STABLE_AFTER else 1.0
        self.delays[team] = min(delay * 2, MAX_RESTART_DELAY)
        exited = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        log.error("The internal API of team %s %s; restarting it in %.0f s", team, exited, delay)
        deadline = time.monotonic() + delay
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.5))
        if not self.stopping:
            self._start(team)

    def _stop(self, signum, _frame) -> None:
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _start(self, team: str) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid:
            self.children[pid] = (team, time.monotonic())
            return
        forked_child.run_and_exit(
            lambda: _serve_team(self.args, team), f"The internal API of team {team} failed"
        )


def _serve_team(args, team: str) -> None:
    """In a forked child: become ``internal-api --team <team>`` on the team's port, gunicorn in-process."""
    gc.enable()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    if args.teams_log_dir:
        _log_to(os.path.join(args.teams_log_dir, f"internal-api-{team}.log"))
    team_args = copy.copy(args)
    team_args.team, team_args.teams, team_args.port = team, None, port_of(team)
    team_args.pid = None  # the team's own pid file (internal-api-<team>.pid)
    process_team.serve_team_of_flag(team_args, "internal-api")  # as `internal-api --team <team>` does
    internal_api.run_gunicorn_in_process()
    from airflow.cli.commands.internal_api_command import internal_api as internal_api_command

    # without its CLI decorators: the parent logged the command and loaded the providers' configuration
    inspect.unwrap(internal_api_command)(team_args)


def _log_to(path: str) -> None:
    """Send this process's output (and its gunicorn's) to the team's log file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)
