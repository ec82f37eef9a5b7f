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
The keys that sign and verify the webserver's requests to the log servers of workers and triggerers.

Upstream signs these requests with ``[webserver] secret_key``, the key that also signs every UI session
and the DAG-source file tokens: a component that serves logs must hold it, and code running there could
forge an Admin's session. Here the requests are signed with ``[logging] log_server_secret_key``, which
defaults to ``[webserver] secret_key`` (so nothing changes until it is set). In multi-team mode each
team can have its own (``AIRFLOW__<TEAM>___LOGGING__LOG_SERVER_SECRET_KEY`` or ``[<team>=logging]``):
the webserver, which holds every team's, signs a request for a log file with the key of the file's team,
and a team's workers and triggerers, given only their own key, accept only requests signed with it,
and only for files of their team. The team of a file is the team prefix of the dag_id in its path
(``dag_id=team_a:etl/...`` with the default ``[logging] log_filename_template``).
"""

from __future__ import annotations

import logging
import posixpath

from airflow.configuration import conf
from airflow.teams import ids, multi_team_enabled, process_team

log = logging.getLogger(__name__)

SECTION, OPTION = "logging", "log_server_secret_key"


def global_key() -> str:
    """Return ``[logging] log_server_secret_key``, or ``[webserver] secret_key`` (upstream's) when it is not set."""
    from airflow.utils.jwt_signer import get_signing_key

    return conf.get(SECTION, OPTION, fallback="") or get_signing_key("webserver", "secret_key")


def team_key(team: str) -> str | None:
    """Return the team's own log-server key (its configuration only: no global fallback), or None."""
    from airflow.teams.config import TeamConf

    return TeamConf(team).team_value(SECTION, OPTION) or None


def team_of_log_file(filename: str) -> str | None:
    """Return the configured team whose dag_id names a folder (or file) of the log's relative path, or None."""
    from airflow.teams import config as teams_config

    path = posixpath.normpath(filename)
    if path.startswith(("/", "../")) or path == "..":
        return None
    teams = teams_config.load().teams
    for segment in path.split("/"):
        name = segment[len("dag_id=") :] if segment.startswith("dag_id=") else segment
        if (team := ids.team_of(name)) in teams:
            return team
    return None


def key_for_team(team: str | None) -> str:
    return (team_key(team) if team else None) or global_key()


def signing_key(log_relative_path: str) -> str:
    """Return the key the webserver signs a request for this log file with."""
    if not multi_team_enabled():
        return global_key()
    return key_for_team(team_of_log_file(log_relative_path))


def request_signer(signer, filename: str):
    """
    Return the signer that verifies a log server's request for ``filename``.

    That is ``signer`` (built by upstream with ``[webserver] secret_key``) unless a log-server key applies.
    A log server of a team refuses (403, one log line) a file of another team.
    """
    from flask import abort

    from airflow.utils.jwt_signer import JWTSigner

    if not multi_team_enabled():
        key = global_key()
    else:
        file_team, serving = team_of_log_file(filename), process_team.serving_team()
        if serving is not None and file_team != serving:
            log.warning(
                "Refusing log request for %s: this log server serves team %r, the file is %s.",
                filename,
                serving,
                f"of team {file_team!r}" if file_team else "of no team",
            )
            abort(403)
        key = key_for_team(serving or file_team)
    if key == signer._secret_key:
        return signer
    return JWTSigner(
        secret_key=key,
        expiration_time_in_seconds=signer._expiration_time_in_seconds,
        audience=signer._audience,
        leeway_in_seconds=signer._leeway_in_seconds,
        algorithm=signer._algorithm,
    )
