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
What the provider does differently on the Airflow 2.11 multi-team fork (AIP-67).

That fork's core has upstream 3.2's team API (``BaseExecutor(team_name=...)``, ``ExecutorConf``,
``[core] multi_team``) and an ``airflow.teams`` package. Each function here is called from a one-line
hook guarded by ``AIRFLOW_TEAMS_FORK``, so nothing changes on any other Airflow.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowTaskTimeout, Stats

if TYPE_CHECKING:
    from argparse import Namespace

    from airflow.providers.celery.executors.celery_executor import CeleryExecutor

BROKER_RETRY_SECONDS = 5.0


def serve_team_of_worker(args: Namespace) -> None:
    """Validate ``celery worker --team`` (required in multi-team mode) and make the worker serve that team."""
    from airflow.teams.process_team import serve_team_of_flag

    serve_team_of_flag(args, "celery worker")


def waiting_for_broker(executor: CeleryExecutor) -> bool:
    """Whether a team executor's broker was unreachable moments ago: its workloads then stay queued."""
    return bool(executor.team_name) and time.monotonic() < executor.broker_retry_at


def keep_queued_if_broker_unreachable(executor: CeleryExecutor, key: Any, result: Any) -> bool:
    """
    Keep a team's workload queued when its broker cannot be reached, and try again in a few seconds.

    A team's broker outage must not lose its tasks nor stop the other teams (AIP-67 fault isolation):
    the workload stays in the executor's queue and is sent once the broker answers again.
    """
    from kombu.exceptions import OperationalError

    exception = getattr(result, "exception", None)
    unreachable = isinstance(exception, (OperationalError, ConnectionError, AirflowTaskTimeout))
    if not executor.team_name or not unreachable:
        return False
    Stats.incr("celery.broker_unreachable", tags={"team_name": executor.team_name})
    executor.log.warning(
        "Broker of team %s unreachable, %s stays queued: %s", executor.team_name, key, exception
    )
    executor.broker_retry_at = time.monotonic() + BROKER_RETRY_SECONDS
    return True
