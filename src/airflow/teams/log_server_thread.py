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
A team triggerer's log server runs in a thread of the triggerer, not as three processes beside it.

Upstream's triggerer starts ``serve_logs`` in a child process that becomes a gunicorn master with two
workers: three processes and about 100 MB per team for a server the webserver asks only when someone
reads a trigger log. A team's triggerer serves the same Flask app (``airflow.utils.serve_logs.create_app``:
the same signed-token check and log folder) from a threaded WSGI server in a daemon thread.
"""

from __future__ import annotations

import logging
import socket
import threading

from airflow.teams import process_team

log = logging.getLogger(__name__)


class LogServerThread:
    """Serve this process's logs on ``port`` from a thread; ``start``/``terminate`` as ``multiprocessing.Process``."""

    def __init__(self, port: int):
        self.port = port
        self._server = None

    def start(self) -> None:
        from werkzeug.serving import make_server

        from airflow.utils.serve_logs import create_app

        host = "::" if socket.has_dualstack_ipv6() else "0.0.0.0"  # as upstream's serve_logs binds
        team = process_team.serving_team()
        try:
            self._server = make_server(host, self.port, create_app(), threaded=True)
        except OSError as error:  # upstream's triggerer, too, runs on when its log server cannot start
            log.error("Team %s: cannot serve trigger logs on port %s: %s", team, self.port, error)
            return
        threading.Thread(target=self._server.serve_forever, name="log-server", daemon=True).start()
        log.info("Team %s: the triggerer serves its logs on port %s", team, self.port)

    def terminate(self) -> None:
        if self._server is not None:
            self._server.shutdown()


def in_thread(port: int) -> LogServerThread | None:
    """Return the log server of a team's process, run in a thread; None outside multi-team mode."""
    return LogServerThread(port) if process_team.serving_team() is not None else None
