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
SLA misses in database access isolation.

``DagFileProcessor.manage_slas`` parses the DAG file, then reads and writes the database, then runs the
DAG's ``sla_miss_callback`` and sends the SLA emails. As an internal API call it would parse DAG files
in the internal API, so upstream skips SLA checks in isolation mode. Here it is split where the DAG code
is: the internal API records the new misses from the serialized DAG (the timetable and the tasks'
``sla``, no DAG code) and returns those no one was told about, with the tasks blocking them; the
dag-processor, which has the DAG, runs the callbacks and sends the emails as ``manage_slas`` does, and
has the misses marked as notified.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, tuple_, update

from airflow.api_internal.internal_api_call import internal_api_call
from airflow.utils.session import NEW_SESSION, provide_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow.models.dag import DAG


@internal_api_call
@provide_session
def record_sla_misses(dag_id: str, session: Session = NEW_SESSION) -> tuple[list[dict[str, Any]], list]:
    """
    Record the SLA misses of ``dag_id`` since each task's latest success (the internal API's side).

    Return the misses not notified yet (``task_id``, ``execution_date``, ``timestamp``) and the task
    instances of those dates that have not succeeded.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.slamiss import SlaMiss
    from airflow.models.taskinstance import TaskInstance
    from airflow.stats import Stats
    from airflow.utils import timezone
    from airflow.utils.state import TaskInstanceState

    dag = SerializedDagModel.get_dag(dag_id, session=session)
    slas = {task.task_id: task.sla for task in dag.tasks if isinstance(task.sla, timedelta)} if dag else {}
    if not slas:
        return [], []
    latest = session.execute(
        select(TaskInstance.task_id, func.max(DagRun.execution_date))
        .join(TaskInstance.dag_run)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.task_id.in_(slas),
            TaskInstance.state.in_((TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED)),
        )
        .group_by(TaskInstance.task_id)
    ).all()
    recorded = set(
        session.execute(select(SlaMiss.task_id, SlaMiss.execution_date).where(SlaMiss.dag_id == dag_id)).all()
    )
    now = timezone.utcnow()
    for task_id, execution_date in latest:
        dag_run = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.execution_date == execution_date)
        )
        # The runs due after the latest success, as manage_slas counts them.
        info = dag.next_dagrun_info(dag.get_run_data_interval(dag_run), restricted=False)
        while info and info.logical_date < now:
            info = dag.next_dagrun_info(info.data_interval, restricted=False)
            if info is None:
                break
            if (task_id, info.logical_date) in recorded or info.logical_date + slas[task_id] >= now:
                continue
            session.add(
                SlaMiss(task_id=task_id, dag_id=dag_id, execution_date=info.logical_date, timestamp=now)
            )
            recorded.add((task_id, info.logical_date))
            Stats.incr("sla_missed", tags={"dag_id": dag_id, "task_id": task_id})
    session.flush()
    pending = session.scalars(
        select(SlaMiss).where(SlaMiss.dag_id == dag_id, ~SlaMiss.notification_sent)
    ).all()
    blocking = session.scalars(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.execution_date.in_({miss.execution_date for miss in pending}),
            TaskInstance.state != TaskInstanceState.SUCCESS,
            TaskInstance.task_id.in_(dag.task_ids),
        )
    ).all()
    misses = [
        {"task_id": miss.task_id, "execution_date": miss.execution_date, "timestamp": miss.timestamp}
        for miss in pending
    ]
    return misses, list(blocking)


@internal_api_call
@provide_session
def mark_sla_misses_notified(
    dag_id: str, misses: list[tuple[str, datetime]], email_sent: bool, session: Session = NEW_SESSION
) -> None:
    """Mark the SLA misses ``(task_id, execution_date)`` of ``dag_id`` as notified (the internal API's side)."""
    from airflow.models.slamiss import SlaMiss

    session.execute(
        update(SlaMiss)
        .where(
            SlaMiss.dag_id == dag_id,
            tuple_(SlaMiss.task_id, SlaMiss.execution_date).in_([tuple(miss) for miss in misses]),
        )
        .values(notification_sent=True, email_sent=email_sent)
        .execution_options(synchronize_session=False)
    )


def manage_slas(dag: DAG, log) -> None:
    """Check the SLAs of ``dag`` in an isolated dag-processor; run its callbacks and send its SLA emails."""
    from airflow.configuration import conf
    from airflow.exceptions import TaskNotFound
    from airflow.models.slamiss import SlaMiss
    from airflow.stats import Stats
    from airflow.utils.email import get_email_address_list, send_email

    log.info("Running SLA Checks for %s (through the internal API)", dag.dag_id)
    misses, blocking_tis = record_sla_misses(dag.dag_id)
    if not misses:
        return
    slas = [SlaMiss(dag_id=dag.dag_id, **miss) for miss in misses]  # not attached to any session
    # (the serialized DAG may still have a task this parse no longer has)
    blocking_tis = [ti for ti in blocking_tis if ti.task_id in dag.task_dict]
    for ti in blocking_tis:
        ti.task = dag.get_task(ti.task_id)
    task_list = "\n".join(f"{sla.task_id} on {sla.execution_date.isoformat()}" for sla in slas)
    blocking_task_list = "\n".join(f"{ti.task_id} on {ti.execution_date.isoformat()}" for ti in blocking_tis)
    notified = False
    callbacks = dag.sla_miss_callback
    for callback in callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []:
        log.info("Calling SLA miss callback %s", callback)
        try:
            callback(dag, task_list, blocking_task_list, slas, blocking_tis)
            notified = True
        except Exception:
            Stats.incr(
                "sla_callback_notification_failure",
                tags={"dag_id": dag.dag_id, "func_name": callback.__name__},
            )
            log.exception("Could not call sla_miss_callback(%s) for DAG %s", callback.__name__, dag.dag_id)
    emails: set[str] = set()
    for sla in slas:
        try:
            email = dag.get_task(sla.task_id).email
        except TaskNotFound:
            log.warning("Task %s doesn't exist in DAG anymore, skipping SLA miss notification.", sla.task_id)
            continue
        emails.update(get_email_address_list(email) if email else ())
    email_sent = False
    if emails:
        content = (
            f"Here's a list of tasks that missed their SLAs:\n<pre><code>{task_list}\n<code></pre>\n"
            f"Blocking tasks:\n<pre><code>{blocking_task_list}<code></pre>\n"
            f"Airflow Webserver URL: {conf.get(section='webserver', key='base_url')}\n"
        )
        try:
            send_email(emails, f"[airflow] SLA miss on DAG={dag.dag_id}", content)
            email_sent = notified = True
        except Exception:
            Stats.incr("sla_email_notification_failure", tags={"dag_id": dag.dag_id})
            log.exception("Could not send SLA Miss email notification for DAG %s", dag.dag_id)
    if notified:
        mark_sla_misses_notified(dag.dag_id, [(sla.task_id, sla.execution_date) for sla in slas], email_sent)
