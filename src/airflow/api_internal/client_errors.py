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
How an isolated component's calls to the internal API fail.

A call that cannot reach the internal API (connection refused or timed out, or a gateway answering
502/504) is retried with exponential backoff, each retry logged with the URL, the method and the error,
so an operator sees which internal API a component cannot reach. A call that gets no answer within
``TIMEOUT`` fails instead of hanging the component; so does a call after its last attempt (a task
process then exits with that error, and its executor reports the task failed).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tenacity

log = logging.getLogger("airflow.api_internal.internal_api_call")

ATTEMPTS = 10
MAX_WAIT_SECONDS = 30  # 10 attempts then take about 2.5 minutes
TIMEOUT = (10, 300)  # seconds to connect, seconds for the answer (a DAG file's writes can take long)


def log_retry(retry_state: tenacity.RetryCallState) -> None:
    from airflow.api_internal.internal_api_call import InternalApiConfig

    method = retry_state.args[0] if retry_state.args else retry_state.kwargs.get("method_name")
    log.warning(
        "Internal API %s unreachable for %s (attempt %d of %d): %s; retrying in %.0fs.",
        InternalApiConfig.get_internal_api_endpoint(),
        method,
        retry_state.attempt_number,
        ATTEMPTS,
        retry_state.outcome.exception() if retry_state.outcome else None,
        retry_state.next_action.sleep if retry_state.next_action else 0,
    )
