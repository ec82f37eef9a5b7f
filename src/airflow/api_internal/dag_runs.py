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
"""Clearing a DAG run from a task (``TriggerDagRunOperator(reset_dag_run=True)``), also in isolation mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.api_internal.internal_api_call import internal_api_call
from airflow.utils.session import NEW_SESSION, provide_session

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session


@internal_api_call
@provide_session
def clear_dag_run(dag_id: str, logical_date: datetime, session: Session = NEW_SESSION) -> None:
    """Clear the task instances of ``dag_id``'s run at ``logical_date``, with the DAG as it is serialized."""
    from airflow.models.serialized_dag import SerializedDagModel

    dag = SerializedDagModel.get_dag(dag_id, session=session)
    if dag is None:
        from airflow.exceptions import DagNotFound

        raise DagNotFound(f"Dag id {dag_id} not found in the serialized DAGs")
    dag.clear(start_date=logical_date, end_date=logical_date, session=session)
