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
A task's failure and retry callbacks in database access isolation.

``_handle_failure`` is a call to the internal API: the server records the failed or up-for-retry
state (and sends the email alert, from the serialized task's email settings). The server has no DAG
code, so it cannot run the task's ``on_failure_callback`` or ``on_retry_callback``; the process that
handled the failure (the task process, or the dag-processor for a failure reported by the scheduler)
runs them here once the state is recorded, as direct database access runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.api_internal.internal_api_call import InternalApiConfig
from airflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from airflow.serialization.pydantic.taskinstance import TaskInstancePydantic
    from airflow.utils.context import Context


def run_callbacks_after_recorded_failure(
    ti: TaskInstancePydantic,
    error: None | str | BaseException,
    context: Context | None,
    test_mode: bool | None,
) -> None:
    """Run the callbacks of the state the internal API recorded for ``ti`` (failed or up for retry)."""
    from airflow.models.taskinstance import _log_state, _run_finished_callback

    task = getattr(ti, "task", None)
    if not InternalApiConfig.get_use_internal_api() or task is None:
        return
    if not (test_mode if test_mode is not None else ti.test_mode):
        ti.refresh_from_db()
    _log_state(task_instance=ti)
    if ti.state == TaskInstanceState.FAILED:
        callbacks = task.on_failure_callback
    elif ti.state == TaskInstanceState.UP_FOR_RETRY:
        callbacks = task.on_retry_callback
    else:
        return
    if not callbacks:
        return
    if context is None:
        context = ti.get_template_context()
    context["exception"] = error
    _run_finished_callback(callbacks=callbacks, context=context)
