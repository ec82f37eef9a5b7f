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
One internal API per team (``airflow internal-api --team T``).

In multi-team mode each team's isolated components (dag-processor, triggerer, workers, tasks) call
their own team's internal API, at the team's ``[core] internal_api_url``, with tokens signed by the
team's own ``[core] internal_api_secret_key`` that name the team and the method. ``internal-api --team
T`` serves team T only: it verifies with T's key alone, refuses tokens that do not name T, and runs as a
process of team T (so the team checks of the processes it serves apply to it as well). Every refusal is
logged with its reason and counted as ``teams.rpc_denied``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from urllib.parse import urlparse

from airflow.teams import config, ids, multi_team_enabled, process_team

log = logging.getLogger(__name__)

DEFAULT_PATH = "/internal_api/v1/rpcapi"


def per_team() -> bool:
    """Whether internal API calls go to each team's own internal API (multi-team mode)."""
    return multi_team_enabled()


def _team_option(team: str, key: str) -> str | None:
    return config.TeamConf(team).team_value("core", key)


def _missing(team: str, key: str, why: str) -> str:
    return (
        f"Invalid configuration: team {team!r} has no [core] {key} of its own ({why}). Set "
        f"{config.team_env_var(team, 'core', key)} or [{config.team_section(team, 'core')}] {key}; "
        "the global value is not used in multi-team mode."
    )


def api_key(team: str) -> str:
    """Return the team's internal API key: its components sign their calls with it, its server verifies them."""
    key = _team_option(team, "internal_api_secret_key")
    if not key:
        raise config.TeamsConfigError(_missing(team, "internal_api_secret_key", "it signs the team's calls"))
    return key


def verifying_keys(team: str) -> list[str]:
    """Return the keys a team's internal API accepts: its key, then its previous key while rotating."""
    previous = _team_option(team, "internal_api_previous_secret_key")
    return [api_key(team), *([previous] if previous else [])]


def check_keys_are_the_teams_own(team: str) -> None:
    """Refuse a key of ``team`` that another team has as well: its components could sign ``team``'s calls."""
    keys = set(verifying_keys(team))
    for other in config.load().teams:
        if other == team:
            continue
        others = {
            _team_option(other, key)
            for key in ("internal_api_secret_key", "internal_api_previous_secret_key")
        }
        if keys & others:
            raise config.TeamsConfigError(
                f"Invalid configuration: teams {team!r} and {other!r} share an internal API key ([core] "
                "internal_api_secret_key or internal_api_previous_secret_key); each team needs a key of "
                "its own, or one team's components could sign the other's calls."
            )


def endpoint(team: str) -> str:
    url = _team_option(team, "internal_api_url")
    if not url:
        raise config.TeamsConfigError(_missing(team, "internal_api_url", "its components call it"))
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise config.TeamsConfigError(
            f"Invalid configuration: [core] internal_api_url of team {team!r} is {url!r}; it must be an "
            "http:// or https:// URL of the team's `airflow internal-api --team`."
        )
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path if parsed.path not in ('', '/') else DEFAULT_PATH}"


def check_client(team: str) -> None:
    """Stop an isolated component of ``team`` at start, with one line, if it cannot call its internal API."""
    try:
        api_key(team)
        endpoint(team)
    except config.TeamsConfigError as err:
        raise SystemExit(str(err))


# An isolated command's name, by its argparse subcommand.
COMMANDS = {"worker": "celery worker"}


def prepare_command(args) -> None:
    """
    Before a command runs: check ``internal-api --team``, and make an isolated command serve its team.

    An isolated command must serve its team before its first call (the CLI's action log comes first),
    so its team is set here, by the same functions the command calls: the team of ``--team``, or of the
    DAG that ``tasks run`` runs. A team without its own internal API URL and key stops the command here,
    with one line.
    """
    from airflow.api_internal.internal_api_call import InternalApiConfig

    if args.subcommand == "internal-api":
        from airflow.teams import internal_api_server

        if not internal_api_server.teams_of(args):  # --teams: each team's server is checked
            check_server(process_team.serve_team_of_flag(args, "internal-api"))
        return
    if not (per_team() and InternalApiConfig.get_use_internal_api()):
        return
    if hasattr(args, "team"):
        team = process_team.serve_team_of_flag(args, COMMANDS.get(args.subcommand, args.subcommand))
    else:
        team = process_team.serve_team_of_dag(args.dag_id)
    check_client(team)


def client_team() -> str:
    """Return the team whose internal API this process calls: the team it serves."""
    team = process_team.serving_team()
    if team is None:
        raise config.TeamsConfigError(
            "Cannot call the internal API: in multi-team mode only a component of one team (started with "
            "--team, or a task) calls its team's internal API."
        )
    return team


def stop_if_another_teams_server(response) -> None:
    """
    Stop this process in one line when its internal API URL is another team's internal API.

    That server refuses every call of this team's (403, naming the team it serves); retrying or failing
    call after call with a traceback would only hide the misconfiguration.
    """
    if response.status_code != 403 or not per_team():
        return
    served = served_team(response)
    team = client_team()
    if served and served != team:
        raise SystemExit(
            f"Invalid configuration: {config.team_env_var(team, 'core', 'internal_api_url')} = "
            f"{_team_option(team, 'internal_api_url')} is the internal API of team {served!r}, not of team "
            f"{team!r}; point it at team {team!r}'s own internal API."
        )


def _problem(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def served_team(response) -> str | None:
    """Return the team a team's internal API said it serves in its refusal (``_forbidden``), or None."""
    team = _problem(response).get("team")
    return team if isinstance(team, str) else None


def problem_detail(response) -> str:
    """Return the reason of an internal API's refusal, or the start of its body."""
    return str(_problem(response).get("detail") or response.text[:200])


def client_signing(method: str) -> tuple[str, dict[str, str]]:
    """Return the signing key and token claims of a call of the team this process serves."""
    team = client_team()
    return api_key(team), {"method": method, "team": team}


# ---- the server: airflow internal-api --team T ---------------------------------------------------


def check_server(team: str | None) -> None:
    """Stop ``internal-api --team`` at start, with one line, if the team's key is not its own."""
    if team is None:
        return
    try:
        check_keys_are_the_teams_own(team)
    except config.TeamsConfigError as err:
        raise SystemExit(str(err))


_gunicorn_in_process = False


def run_gunicorn_in_process() -> None:
    """Make ``exec_gunicorn`` run gunicorn in this process: a team's server forked by ``internal-api --teams``."""
    global _gunicorn_in_process
    _gunicorn_in_process = True


def exec_gunicorn(gunicorn_command: list[str]) -> None:
    """
    Make the ``internal-api --team`` process gunicorn itself, instead of upstream's monitor beside it.

    Upstream's command runs gunicorn as a child and keeps running only to watch it and to replace a
    worker every 30 s (the webserver's way to load new plugins): one more process per team, and a new
    worker with new database connections twice a minute. A team's internal API is gunicorn alone, with
    a configuration that imports no Airflow into its master (``internal_api_gunicorn``); its access log
    has a line per refused or failed call only (``[core] internal_api_access_log``); its sync workers
    are gthread workers (``[core] internal_api_threads``), so one worker serves the whole team, and one
    worker loads the app itself (no ``--preload``: a master holding the app would share it with no
    other worker). A team's server forked by ``internal-api --teams`` runs gunicorn in its own process
    instead (``run_gunicorn_in_process``). Returns outside multi-team mode.
    """
    from airflow.configuration import conf
    from airflow.teams import internal_api_gunicorn

    if process_team.serving_team() is None:
        return
    command = list(gunicorn_command)
    command[command.index("--config") + 1] = internal_api_gunicorn.__file__
    if conf.get("core", "internal_api_access_log", fallback="refused") == "all":
        command[-1:-1] = ["--logger-class", "gunicorn.glogging.Logger"]
    if _option(command, "--worker-class") == "sync":
        command[-1:-1] = [
            "--worker-class",
            "gthread",
            "--threads",
            str(conf.getint("core", "internal_api_threads")),
        ]
    if _option(command, "--workers") == "1":
        command.remove("--preload")
    log.info("Team %s: the internal API runs as gunicorn (pid %s)", process_team.serving_team(), os.getpid())
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if _gunicorn_in_process:  # keeps the pages it shares with the other teams' servers (internal_api_server)
        from gunicorn.app.wsgiapp import run

        sys.argv = ["gunicorn", *command[command.index("gunicorn") + 1 :]]
        run()
        raise SystemExit(0)  # gunicorn exits by itself; upstream's monitor must never follow it
    os.execv(command[0], command)


def _option(command: list[str], name: str) -> str | None:
    """Return the value of an option of a command line (``--name value``), or None."""
    return command[command.index(name) + 1] if name in command else None


def process_name() -> str:
    """Return the name of this internal API's pid file: one per team."""
    team = process_team.serving_team()
    return f"internal-api-{team}" if team else "internal-api"


def server_key() -> str | None:
    """Return the key that verified this call's token in ``refuse``: the team's own, never the global one."""
    from flask import g

    return g.get("teams_verified_key") if process_team.serving_team() else None


def deny(
    method: object, reason: str, team: str | None = None, obj: object = None, audit: bool = False
) -> None:
    """
    Log and count a refused call; ``audit`` it (an audit log row) when the caller proved its team.

    A call with a bad token is not audited: anyone who can reach the server could fill the table.
    """
    from airflow.api_internal.endpoints.rpc_api_endpoint import initialize_method_map
    from airflow.teams import denials

    team = team or process_team.serving_team()
    method = str(method)[:200]  # it may come from the request
    # The metric's tag names only real methods: an unauthenticated caller must not grow its tag values.
    tag = method if method in initialize_method_map() else "unknown"
    named = f" naming {repr(obj)[:200]}" if obj is not None else ""
    dag_id = _dag_named(obj) if audit else None
    denials.record(
        "teams.rpc_denied",
        f"Refused internal API call {method} for team {team}{named}: {reason}",
        team=team,
        target_team=ids.team_of(dag_id) if dag_id else None,
        dag_id=dag_id,
        obj=f"{method}{named}",
        reason=reason,
        tags={"method": tag, "team": str(team)},
        audit=audit,
    )


def _dag_named(obj: object) -> str | None:
    """Return ``obj`` if it is the id of an existing DAG of a configured team (the row's DAG), else None."""
    from airflow.models.base import ID_LEN

    if not isinstance(obj, str) or len(obj) > ID_LEN or ids.team_of(obj) not in config.load().teams:
        return None
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from airflow import settings
    from airflow.models.dag import DagModel

    with Session(settings.engine) as session:  # not the request's session, which the caller rolled back
        return session.scalar(select(DagModel.dag_id).where(DagModel.dag_id == obj))


def refuse(authorization: str, body: object):
    """
    Verify a call to a team's internal API; return a 403 response (logged, counted) or None.

    The token must be signed with the team's key, name the team, and name the method of the body. In
    multi-team mode an internal API that serves no team (the webserver's, ``[webserver]
    run_internal_api``) refuses every call.
    """
    team = process_team.serving_team()
    if team is None and not per_team():
        return None
    from jwt import ExpiredSignatureError, ImmatureSignatureError, InvalidTokenError

    from airflow.configuration import conf

    method = body.get("method") if isinstance(body, dict) else None
    if team is None:
        return _forbidden(method, "in multi-team mode only `airflow internal-api --team` serves calls", None)
    clock_grace = conf.getint("core", "internal_api_clock_grace", fallback=30)
    reason = None
    try:
        claims = _verify(authorization, verifying_keys(team), clock_grace)
    except ExpiredSignatureError:
        reason = "the token has expired (are the clocks of the team's hosts synchronized?)"
    except ImmatureSignatureError:
        reason = "the token was issued in the future (are the clocks of the team's hosts synchronized?)"
    except InvalidTokenError as err:
        reason = f"the token is not one signed with the key of team {team!r} ({type(err).__name__})"
    else:
        if "team" not in claims:
            reason = "the token names no team"
        elif claims["team"] != team:
            reason = f"the token is of team {claims['team']!r}, this internal API serves team {team!r}"
        elif not method or claims.get("method") != method:
            reason = f"the token was signed for method {claims.get('method')!r}, not for {method!r}"
    return None if reason is None else _forbidden(method, reason, team)


def _verify(authorization: str, keys: list[str], clock_grace: int) -> dict:
    """Verify the token with the first key whose signature matches; remember it for upstream's check."""
    from flask import g
    from jwt import InvalidSignatureError

    from airflow.utils.jwt_signer import JWTSigner

    error: InvalidSignatureError | None = None
    for key in keys:
        signer = JWTSigner(
            secret_key=key,
            expiration_time_in_seconds=clock_grace,
            leeway_in_seconds=clock_grace,
            audience="api",
        )
        try:
            claims = signer.verify_token(authorization)
        except InvalidSignatureError as err:
            error = err
            continue
        g.teams_verified_key = key
        return claims
    raise error  # verifying_keys returns at least the team's key


def _forbidden(method: object, reason: str, team: str | None):
    from flask import Response

    deny(method, reason, team)
    return Response(
        # "team": which team this server serves, so a client sent to the wrong one can say so (served_team)
        json.dumps({"status": 403, "title": "Forbidden", "detail": f"Refused: {reason}.", "team": team}),
        status=403,
        mimetype="application/problem+json",
    )
