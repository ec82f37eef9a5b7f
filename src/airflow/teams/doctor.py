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
``airflow teams doctor``: the whole deployment checked from the scheduler's side, one line per problem.

Each check returns the problems it finds, each naming its team (if any) and the fix. What the
scheduler warns of at its start (settings of no team, missing folders) is asked here too, so each rule
is written once.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from airflow.teams import config, ids, multi_team_enabled, tables

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the deployment, found by ``check``."""

    check: str
    team: str | None
    message: str  # what is wrong and how to fix it, in one line

    def line(self) -> str:
        return f"{self.team}: {self.message}" if self.team else self.message

    def as_dict(self) -> dict:
        return asdict(self)


def fork_tables(session: Session | None = None) -> Iterator[Problem]:
    if (problem := tables.migration_problem()) is not None:
        yield Problem("fork_tables", None, problem)


def executors_import(session: Session | None = None) -> Iterator[Problem]:
    from airflow.teams import cli

    for team, _, message in cli.unimportable_executors():
        yield Problem("executors_import", team, message)


def team_settings(session: Session | None = None) -> Iterator[Problem]:
    if unknown := config.settings_of_unknown_teams():
        yield Problem(
            "team_settings",
            None,
            f"Settings of no configured team ({', '.join(config.load().teams)}) are ignored: "
            f"{', '.join(unknown)}. Fix the team name, or add the team to [core] executor.",
        )


def team_folders(session: Session | None = None) -> Iterator[Problem]:
    """
    Find each team's DAG folder that does not exist, where the teams' folders are on this host.

    When none of them is (the scheduler of a deployment whose teams run elsewhere, as in the chart),
    there is nothing to say: a team's dag-processor refuses a missing folder where it runs.
    """
    teams = config.load().teams.values()
    if not any(os.path.isdir(folder) for team in teams for folder in team.dags_folders):
        return
    for team in teams:
        for folder in team.dags_folders:
            if not os.path.isdir(folder):
                yield Problem("team_folders", team.name, config.missing_folder_problem(team.name, folder))


TEAM_COMPONENTS = {"DagProcessorJob": "dag-processor", "TriggererJob": "triggerer"}


def live_components(session: Session) -> Iterator[Problem]:
    """Each team has a live dag-processor and triggerer: a running job of the team with a recent heartbeat."""
    if tables.migration_problem() is not None:
        return  # the jobs' teams are in the fork's tables (see fork_tables)
    from sqlalchemy import select

    from airflow.jobs.job import Job
    from airflow.utils.state import JobState

    for team in config.load().teams:
        running = session.scalars(
            select(Job).where(
                Job.job_type.in_(TEAM_COMPONENTS),
                Job.state == JobState.RUNNING,
                Job.id.in_(tables.job_ids_of_team(team)),
            )
        ).all()
        for job_type, command in TEAM_COMPONENTS.items():
            if not any(job.job_type == job_type and _alive(job) for job in running):
                yield Problem(
                    "live_components",
                    team,
                    f"No live {command} of team {team!r} (no running {job_type} of the team with a recent "
                    f"heartbeat): start `airflow {command} --team {team}`, or see why it stopped in its log.",
                )


def _alive(job) -> bool:
    """
    ``Job.is_alive``, but at least ``[scheduler] scheduler_health_check_threshold`` for a team's dag-processor.

    An idle team dag-processor loops every 5 s and heartbeats at most every other loop; upstream's 2.1
    heartbeats (10.5 s) would call it dead at the first slow loop.
    """
    from airflow.configuration import conf
    from airflow.utils import timezone

    if job.is_alive():
        return True
    floor = conf.getint("scheduler", "scheduler_health_check_threshold")
    return (
        job.latest_heartbeat is not None
        and (timezone.utcnow() - job.latest_heartbeat).total_seconds() < floor
    )


def dag_teams(session: Session) -> Iterator[Problem]:
    """Active DAGs whose id names no configured team, and team-less DAGs left from single-team mode."""
    from sqlalchemy import select

    from airflow.models.dag import DagModel

    configured = config.load().teams
    active = session.scalars(select(DagModel.dag_id).where(DagModel.is_active)).all()
    unknown: dict[str, list[str]] = {}
    teamless = []
    for dag_id in active:
        team = ids.team_of(dag_id)
        if team is None:
            teamless.append(dag_id)
        elif team not in configured:
            unknown.setdefault(team, []).append(dag_id)
    for team, dag_ids in sorted(unknown.items()):
        yield Problem(
            "dag_teams",
            None,
            f"{len(dag_ids)} active DAG(s) of team {team!r}, which is not configured ({_some(dag_ids)}): add "
            f"the team to [core] executor, or delete them (`airflow dags delete`).",
        )
    if teamless:
        yield Problem(
            "dag_teams",
            None,
            f"{len(teamless)} active DAG(s) without a team, left from single-team mode ({_some(teamless)}): "
            "no team's component runs them. Move their files into a team's folder (new ids) or delete them.",
        )


def plugin_folders(session: Session) -> Iterator[Problem]:
    """
    Find the plugin folders of teams that are not configured.

    A team with DAGs in the database but not in [core] executor (e.g. removed): its folder in
    [core] plugins_folder is no team's, so every component loads its plugins as shared ones.
    """
    from sqlalchemy import select

    from airflow.models.dag import DagModel
    from airflow.teams import plugins

    # the teams the database still has DAGs of
    named = {ids.team_of(dag_id) for dag_id in session.scalars(select(DagModel.dag_id))} - {None}
    for folder in plugins.folders_named_like_other_teams(named - set(config.load().teams)):
        yield Problem(
            "plugin_folders",
            None,
            f"{folder} holds the plugins of team {os.path.basename(folder)!r}, which is not configured: "
            "every component (scheduler, webserver, internal APIs, every team) loads them as shared plugins. "
            "Move the folder out of [core] plugins_folder, or add the team to [core] executor.",
        )


def team_pools(session: Session) -> Iterator[Problem]:
    from sqlalchemy import select

    from airflow.models.pool import Pool

    configured = config.load().teams
    for name in session.scalars(select(Pool.pool)).all():
        if (team := ids.team_of(name)) is not None and team not in configured:
            yield Problem(
                "team_pools",
                None,
                f"Pool {name!r} names team {team!r}, which is not configured: no task can use it. Delete it "
                f"(`airflow pools delete {name}`) or fix the team name.",
            )


# How far back ``executor_failures`` looks: the scheduler writes a failure's row at most once a minute.
RECENT_FAILURES_SECONDS = 600


def executor_failures(session: Session) -> Iterator[Problem]:
    """Team executors that failed in the last minutes and have not worked again since (the scheduler's rows)."""
    import json
    from datetime import timedelta

    from sqlalchemy import select

    from airflow.models.log import Log
    from airflow.teams import routing
    from airflow.utils import timezone

    since = timezone.utcnow() - timedelta(seconds=RECENT_FAILURES_SECONDS)
    rows = session.execute(
        select(Log.event, Log.extra)
        .where(Log.event.in_((routing.EXECUTOR_FAILED, routing.EXECUTOR_RECOVERED)), Log.dttm >= since)
        .order_by(Log.dttm, Log.id)
    )
    failing: dict[tuple[str, str, str], tuple[int, str]] = {}  # (team, executor, stage): (count, error)
    for event, extra in rows:
        try:
            details = json.loads(extra)
            where = (details["team"], details["executor"], details["stage"])
        except (TypeError, ValueError, KeyError):
            continue
        if event == routing.EXECUTOR_RECOVERED:
            failing.pop(where, None)
        else:
            failing[where] = (failing.get(where, (0, ""))[0] + 1, str(details.get("error", "")))
    for (team, executor, stage), (count, error) in sorted(failing.items()):
        yield Problem(
            "executor_failures",
            team,
            f"Executor {executor!r} of team {team!r} failed in {stage} ({count} time(s) in the last "
            f"{RECENT_FAILURES_SECONDS // 60} minutes, not working since: {error}); its tasks wait queued. "
            "See the scheduler's log for the traceback, and fix what the executor reaches (broker, cluster).",
        )


def dag_references(session: Session) -> Iterator[Problem]:
    """Tasks whose trigger_dag_id or external_dag_id names no active DAG (renamed, moved, or of no team)."""
    from sqlalchemy import select

    from airflow.models.dag import DagModel
    from airflow.teams import references

    active = set(session.scalars(select(DagModel.dag_id).where(DagModel.is_active)))
    for reference in references.of_serialized_dags(session):
        if reference.dag_id in active and reference.other not in active and "{{" not in reference.other:
            yield Problem(
                "dag_references",
                ids.team_of(reference.dag_id),
                f"Task {reference.task_id!r} of {reference.dag_id} {reference.does} {reference.other!r}, which "
                "is no active DAG (renamed, moved to a team, or deleted): fix the id in the DAG file.",
            )


def internal_apis(session: Session | None = None) -> Iterator[Problem]:
    """With isolation: each team's internal API answers, is that team's, and takes its key (and previous key)."""
    from airflow.api_internal import isolation
    from airflow.teams import internal_api

    if not isolation.enabled():
        return
    served_by: dict[str, str] = {}
    for team in config.load().teams:
        try:
            url = internal_api.endpoint(team)
        except config.TeamsConfigError:
            continue  # no URL of the team here (its components have it): nothing to ask from this host
        if (other := served_by.setdefault(url, team)) != team:
            yield Problem(
                "internal_apis",
                team,
                f"Teams {other!r} and {team!r} have the same internal API URL {url}: each team needs its own "
                "`airflow internal-api --team`.",
            )
            continue
        yield from _check_internal_api(team, url)


def _check_internal_api(team: str, url: str) -> Iterator[Problem]:
    import requests

    from airflow.teams import internal_api

    try:
        unsigned = requests.post(  # refused, naming the team the server serves
            url,
            json={"jsonrpc": "2.0", "method": "doctor", "params": {}},
            headers={"Authorization": "doctor", "Accept": "application/json"},
            timeout=10,
        )
    except requests.RequestException as err:
        yield Problem(
            "internal_apis",
            team,
            f"Its internal API {url} does not answer ({type(err).__name__}): "
            f"start `airflow internal-api --team {team}`, or fix its internal_api_url.",
        )
        return
    served = internal_api.served_team(unsigned)
    if served != team:
        what = f"the internal API of team {served!r}" if served else "not a team's internal API of this fork"
        yield Problem(
            "internal_apis",
            team,
            f"Its internal_api_url {url} is {what}: point "
            f"{config.team_env_var(team, 'core', 'internal_api_url')} at team {team!r}'s own.",
        )
        return
    try:
        keys = internal_api.verifying_keys(team)
    except config.TeamsConfigError:
        return  # no key of the team here: whether the server takes it is asked where the team's key is
    for label, key in zip(("key", "previous key"), keys):
        response = _signed_call(url, team, key)
        if response.status_code == 403:
            detail = internal_api.problem_detail(response)
            yield Problem(
                "internal_apis",
                team,
                f"Its internal API refuses a call signed with the team's "
                f"{label} ({detail}): give the server and the team's components the same keys.",
            )


def _signed_call(url: str, team: str, key: str):
    import requests

    from airflow.serialization.serialized_objects import BaseSerialization
    from airflow.utils.jwt_signer import JWTSigner

    method = "airflow.models.dag.DagModel.get_current"  # harmless: reads one DAG of the team, here none
    token = JWTSigner(secret_key=key, expiration_time_in_seconds=30, audience="api").generate_signed_token(
        {"method": method, "team": team}
    )
    params = BaseSerialization.serialize({"dag_id": ids.qualify(team, "doctor")}, use_pydantic_models=True)
    return requests.post(
        url,
        json={"jsonrpc": "2.0", "method": method, "params": params},
        timeout=30,
        headers={"Authorization": token, "Accept": "application/json"},
    )


def _some(names: list[str], shown: int = 5) -> str:
    return ", ".join(sorted(names)[:shown]) + (", ..." if len(names) > shown else "")


CHECKS: tuple[Callable[..., Iterator[Problem]], ...] = (
    fork_tables,
    executors_import,
    team_settings,
    team_folders,
    live_components,
    dag_teams,
    plugin_folders,
    team_pools,
    dag_references,
    executor_failures,
    internal_apis,
)


def diagnose() -> list[Problem]:
    """Run every check; a check whose own question fails is a problem of its own, not a traceback."""
    if not multi_team_enabled():
        return []
    from airflow.utils.session import create_session

    problems = []
    with create_session() as session:
        for check in CHECKS:
            try:
                problems.extend(check(session))
            except Exception as err:
                session.rollback()
                message = f"The check could not run: {type(err).__name__}: {str(err).splitlines()[0]}"
                problems.append(Problem(check.__name__, None, message))
    return problems
