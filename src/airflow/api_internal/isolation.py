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
Database access isolation (AIP-44) as this fork supports it.

With ``[core] database_access_isolation = True`` the components that run DAG authors' code (the
dag-processor, the triggerer, Celery workers and ``airflow tasks run``) hold no database credentials:
every database access of theirs is a call to ``airflow internal-api`` (``[core] internal_api_url``).
The scheduler, the webserver and the internal API itself keep direct access.
"""

from __future__ import annotations

from urllib.parse import urlparse

from airflow.configuration import conf

# The commands that run DAG authors' code (``args.subcommand`` of ``airflow celery worker``, ``airflow
# dag-processor``, ``airflow triggerer`` and ``airflow tasks run``), as upstream's __main__ lists them.
UNTRUSTED_SUBCOMMANDS = ("worker", "dag-processor", "triggerer", "run")


def enabled() -> bool:
    return conf.getboolean("core", "database_access_isolation", fallback=False)


def check_configuration(subcommand: str) -> None:
    """Stop an isolated component with one line when ``[core] internal_api_url`` cannot be used."""
    if not enabled() or subcommand not in UNTRUSTED_SUBCOMMANDS:
        return
    from airflow.teams import multi_team_enabled

    if multi_team_enabled():
        return  # each team's own URL and key, checked when the component's team is known (teams.internal_api)
    url = conf.get("core", "internal_api_url", fallback=None)
    if not url:
        raise SystemExit(
            f"Invalid configuration: [core] database_access_isolation is True, so `{subcommand}` reaches the "
            "database through the internal API, but [core] internal_api_url is not set. Set it to the URL of "
            "`airflow internal-api`, e.g. http://internal-api:9080."
        )
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SystemExit(
            f"Invalid configuration: [core] internal_api_url is {url!r}; it must be an http:// or https:// URL "
            "of `airflow internal-api`, e.g. http://internal-api:9080."
        )


# The settings that could give a task process the database: the URL and its _cmd/_secret forms.
_DATABASE_URL_VARIABLES = tuple(
    f"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN{suffix}" for suffix in ("", "_CMD", "_SECRET")
) + tuple(f"AIRFLOW__CORE__SQL_ALCHEMY_CONN{suffix}" for suffix in ("", "_CMD", "_SECRET"))


def task_environment(dag_id: str) -> dict[str, str] | None:
    """
    Return the environment of a task process the LocalExecutor starts: without the database URL.

    The LocalExecutor runs in the scheduler, which holds the credentials; in isolation mode its task
    processes are new interpreters whose environment has ``none://`` as the database URL, so they reach
    the database only through the internal API. In multi-team mode they also get only their own team's
    ``AIRFLOW__<TEAM>___...`` variables (the task of ``dag_id``'s team). None (inherit) when isolation is off.
    """
    import os

    if not enabled():
        return None
    env = {key: value for key, value in os.environ.items() if key not in _DATABASE_URL_VARIABLES}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "none://"
    from airflow.teams import config, ids, multi_team_enabled

    if multi_team_enabled():
        own_prefix = config.team_env_prefix(ids.team_of(dag_id) or "")
        env = {
            key: value
            for key, value in env.items()
            if not config.is_team_env_var(key) or key.startswith(own_prefix)
        }
    return env
