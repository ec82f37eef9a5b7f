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
A team's dag-processor takes its callbacks and its files' parsing requests with one call per loop.

Upstream's dag-processor loop fetches the callbacks of its folder, then takes every parsing request (the
UI's "reparse"): two queries, and with database isolation two internal API calls per loop and team while
nothing happens. A team's dag-processor makes one call, in one transaction, and takes only the requests
for files in its folder: upstream's query takes (and deletes) every team's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sqlalchemy import select

from airflow.api_internal.internal_api_call import internal_api_call
from airflow.configuration import conf
from airflow.teams import paths, process_team
from airflow.utils.session import NEW_SESSION, provide_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow.callbacks.callback_requests import CallbackRequest
    from airflow.dag_processing.manager import DagFileProcessorManager


@internal_api_call
@provide_session
def take_callbacks_and_parsing_requests(
    max_callbacks: int, dag_directory: str, session: Session = NEW_SESSION
) -> tuple[list[CallbackRequest], list[str]]:
    """Take (delete) up to ``max_callbacks`` callbacks of ``dag_directory`` and the parsing requests of its files."""
    from airflow.dag_processing.manager import DagFileProcessorManager

    callbacks = DagFileProcessorManager._fetch_callbacks_with_retries(
        max_callbacks, True, dag_directory, session
    )
    return callbacks, take_parsing_requests(lambda fileloc: paths.below(fileloc, dag_directory), session)


def take_parsing_requests(owns: Callable[[str], bool], session: Session) -> list[str]:
    """Take (delete) the UI's parsing requests of the files ``owns`` accepts; leave the others' requests."""
    from airflow.models.dagbag import DagPriorityParsingRequest

    taken = [
        request for request in session.scalars(select(DagPriorityParsingRequest)) if owns(request.fileloc)
    ]
    for request in taken:
        session.delete(request)
    return [request.fileloc for request in taken]


def in_one_call() -> bool:
    """Whether this dag-processor takes callbacks and parsing requests in one call: a team's does."""
    return process_team.serving_team() is not None


def take_in_one_call(manager: DagFileProcessorManager) -> list[str]:
    """Queue a team dag-processor's callbacks on ``manager``; return its files' parsing requests."""
    callbacks, filelocs = take_callbacks_and_parsing_requests(
        conf.getint("scheduler", "max_callbacks_per_loop"), manager.get_dag_directory()
    )
    for callback in callbacks:
        manager._add_callback_to_queue(callback)
    return filelocs
