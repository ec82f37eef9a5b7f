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
The gunicorn configuration of a team's internal API, read by path so that gunicorn's master imports no Airflow.

Upstream's configuration (``python:airflow.api_internal.gunicorn_config``) and a logger class named by
its dotted path import the ``airflow`` package into the master: about 50 MB in a process that only
watches its one worker, which loads the app itself. This file imports only gunicorn; Airflow is
imported by the worker, which needs it anyway.
"""

from __future__ import annotations

from gunicorn.glogging import Logger


class ProblemsOnlyLogger(Logger):
    """
    Gunicorn's logger, writing an access-log line only for a response of 400 or more.

    A team's idle components call their internal API hundreds of times a minute (heartbeats, trigger
    and callback polls): a line for each made the log grow with idle time. Refusals are also logged by
    the API itself, with the team and the reason (``internal_api.deny``). ``[core]
    internal_api_access_log = all`` puts gunicorn's own logger back on the command line.
    """

    def access(self, resp, req, environ, request_time) -> None:
        if getattr(resp, "status_code", None) is None or resp.status_code >= 400:
            super().access(resp, req, environ, request_time)


logger_class = ProblemsOnlyLogger


def post_worker_init(worker):
    """Mark the worker ready, with upstream's hook: the worker has imported Airflow by now."""
    from airflow.api_internal import gunicorn_config

    gunicorn_config.post_worker_init(worker)
