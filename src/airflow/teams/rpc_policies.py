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
What the internal API of a team (``airflow internal-api --team T``) lets its callers do, method by method.

Default deny: a method without a policy here is refused. Every parameter that names team data is
checked by its name (``PARAMETER_CHECKS``): DAG ids by their ``<team>:`` prefix; task instances, DAG
runs, DAGs, operators and task instance keys by their ``dag_id`` and those of the objects they carry
(``dag_run``, ``task_instance``, ...); files by the team's DAG folders; pools by their ``<team>:``
prefix (a team's pools are its own, patch teams-pools); triggers through the task
instances that use them; jobs through the team recorded when the job was created here
(``teams_job``) or their DAG. Every other parameter name is listed in ``UNSCOPED_PARAMETERS``: it
selects rows only together with a checked one (a task id within a checked DAG) or names no team data.
A test keeps both lists complete for the method map. Methods that return rows of several teams
return only T's; Connection and Variable methods are refused (a team's come from its secrets backend).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from sqlalchemy import case, delete, select

from airflow.teams import config, dag_writes, ids, internal_api, process_team, tables
from airflow.utils.types import AttributeRemoved

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class Refused(Exception):
    """A call that its policy refuses: ``str()`` is the reason, ``obj`` what it named."""

    def __init__(self, reason: str, obj: object = None):
        super().__init__(reason)
        self.obj = obj


# ---- parameter checks ------------------------------------------------------------------------


def _dag_id(team: str, value: Any, session: Session) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise Refused(f"{type(value).__name__} is not a DAG id", value)
    if ids.team_of(value) != team:
        raise Refused(f"DAG {value!r} is not a DAG of team {team!r}", value)


def _dag_ids(team: str, values: Any, session: Session) -> None:
    for value in _items(values):
        _dag_id(team, value, session)


def _items(values: Any) -> Iterable[Any]:
    if values is None:
        return ()
    if isinstance(values, dict):
        return values
    if isinstance(values, (list, tuple, set, frozenset)):
        return values
    raise Refused(f"{type(values).__name__} is not a list", values)


# The attributes through which an object names further team objects: ti.dag_run, a context's ti, ...
_CARRIED = ("dag_run", "task_instance", "ti", "dag_model", "dag")


def _attribute(obj: Any, name: str) -> Any:
    try:
        value = getattr(obj, name, None)
    except Exception:  # a lazy attribute the object cannot load, BaseOperator.dag without a DAG: nothing
        return None
    return None if callable(value) or isinstance(value, AttributeRemoved) else value


def _object_dag_id(obj: Any) -> Any:
    return _attribute(obj, "dag_id")


def _operator(team: str, value: Any, session: Session) -> None:
    """Check an operator's DAG, if it comes with one (the internal API gets tasks without their DAG)."""
    if (dag := _attribute(value, "dag")) is not None:
        _objects(team, dag, session)


def _check_object(team: str, obj: Any, session: Session) -> None:
    _dag_id(team, _object_dag_id(obj), session)
    for name in _CARRIED:
        if (carried := _attribute(obj, name)) is not None:
            _dag_id(team, _object_dag_id(carried), session)
    _operator(team, _attribute(obj, "task"), session)
    # a task instance written back must not point at a trigger that runs another team's task
    if (trigger_id := _attribute(obj, "trigger_id")) is not None:
        _trigger_id(team, trigger_id, session)


def _objects(team: str, value: Any, session: Session) -> None:
    """Check a task instance, DAG run, DAG, operator or key: it must name a DAG of the team, as all it carries."""
    if value is None:
        return
    if not isinstance(_object_dag_id(value), str):
        raise Refused(f"{type(value).__name__} names no DAG", type(value).__name__)
    _check_object(team, value, session)


def _context(team: str, value: Any, session: Session) -> None:
    """Check the objects of a task's context that name team data: its task instance, DAG run, DAG, task."""
    if value is None:
        return
    if not isinstance(value, Mapping):  # a dict, or airflow.utils.context.Context
        raise Refused(f"{type(value).__name__} is not a task's context", type(value).__name__)
    for name in ("ti", "task_instance", "dag_run", "dag"):  # not .items(): some keys warn when read
        if (item := value.get(name)) is not None:
            _objects(team, item, session)
    _operator(team, value.get("task"), session)


def _dags_by_id(team: str, value: Any, session: Session) -> None:
    for dag_id in _items(value):
        _dag_id(team, dag_id, session)
    for dag in value.values() if isinstance(value, dict) else ():
        _objects(team, dag, session)


def _path(team: str, value: Any, session: Session) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise Refused(f"{type(value).__name__} is not a file path", value)
    if not config.load().team(team).owns_path(value):
        raise Refused(f"{value} is not in the DAG folders of team {team!r}", value)


def _paths(team: str, values: Any, session: Session) -> None:
    for value in _items(values):
        _path(team, value, session)


def _files_below(team: str, values: Any, session: Session) -> None:
    """Check files whose import errors are cleared by prefix: each must be below a team folder."""
    for value in _items(values):
        _path(team, value, session)
        if not dag_writes.clears_only_team_files(value, team):
            raise Refused(
                f"{value} is not a file below the DAG folders of team {team!r} (import errors are "
                "cleared for every path that starts with it)",
                value,
            )


def _trigger_rows(values: Any, session: Session) -> list[tuple[int, str]]:
    """Return the (trigger id, DAG id) of the task instances that use the triggers ``values``."""
    from airflow.models.taskinstance import TaskInstance

    wanted = _integer_trigger_ids(values)
    return session.execute(
        select(TaskInstance.trigger_id, TaskInstance.dag_id).where(TaskInstance.trigger_id.in_(wanted))
    ).all()


def _integer_trigger_ids(values: Any) -> set[int]:
    wanted = set(_items(values))
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in wanted):
        raise Refused("trigger ids must be integers", sorted(map(repr, wanted)))
    return wanted


def _trigger_ids(team: str, values: Any, session: Session) -> None:
    for trigger_id, dag_id in _trigger_rows(values, session):
        if ids.team_of(dag_id) != team:
            raise Refused(
                f"trigger {trigger_id} runs a task of DAG {dag_id!r}, not of team {team!r}", trigger_id
            )


def _trigger_id(team: str, value: Any, session: Session) -> None:
    _trigger_ids(team, [value], session)


# A job's team never changes once known (job ids are not reused), so each is looked up once per process.
_job_teams: dict[int, str] = {}


def job_team(job_id: int, session: Session) -> str | None:
    """Return the team of a job: recorded when its team's internal API created it, or the team of its DAG."""
    from airflow.jobs.job import Job

    if (known := _job_teams.get(job_id)) is not None:
        return known
    team = tables.recorded_job_team(job_id, session)
    if team is None and (dag_id := session.scalar(select(Job.dag_id).where(Job.id == job_id))):
        team = ids.team_of(dag_id)
    if team is not None:
        if len(_job_teams) > 100_000:
            _job_teams.clear()
        _job_teams[job_id] = team
    return team


def _job_id(team: str, value: Any, session: Session) -> None:
    if value is None:
        return
    if isinstance(value, str) and value.isdigit():  # the task supervisor sends its job id as text
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Refused(f"{type(value).__name__} is not a job id", value)
    if (owner := job_team(value, session)) != team:
        raise Refused(f"job {value} is not a job of team {team!r} (team {owner!r})", value)


def _job(team: str, value: Any, session: Session) -> None:
    if value is None:
        return
    _dag_id(team, _object_dag_id(value), session)
    if (job_id := getattr(value, "id", None)) is not None:  # a new job (no id yet) becomes the team's
        _job_id(team, job_id, session)


def _dag_run_id(team: str, value: Any, session: Session) -> None:
    from airflow.models.dagrun import DagRun

    if not isinstance(value, int) or isinstance(value, bool):
        raise Refused(f"{type(value).__name__} is not a DAG run id", value)
    _dag_id(team, session.scalar(select(DagRun.dag_id).where(DagRun.id == value)) or "", session)


def _pool(team: str, value: Any, session: Session) -> None:
    """Check a pool name: a team uses its own pools ('<team>:<name>') and shared ones, never another team's."""
    from airflow.teams.pools import pool_owner_outside

    if value is None:
        return
    if not isinstance(value, str):
        raise Refused(f"{type(value).__name__} is not a pool name", value)
    if (owner := pool_owner_outside(value, {team})) is not None:
        raise Refused(f"pool {value!r} is a pool of team {owner!r}, not of team {team!r}", value)


def _pools_by_dag(team: str, value: Any, session: Session) -> None:
    """Check the pools of a DAG warnings update: ``{dag_id: {pool, ...}}``."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise Refused(f"{type(value).__name__} is not a mapping of DAG ids to pools", type(value).__name__)
    for dag_id, pools in value.items():
        _dag_id(team, dag_id, session)
        for pool in _items(pools):
            _pool(team, pool, session)


CheckFunction = Callable[[str, Any, "Session"], None]

# Parameters that name team data, and how each is checked.
PARAMETER_CHECKS: dict[str, CheckFunction] = {
    "dag_id": _dag_id,
    "external_dag_id": _dag_id,
    "dag_ids": _dag_ids,
    "ti": _objects,
    "task_instance": _objects,
    "ti_key": _objects,
    "dag_run": _objects,
    "dag": _objects,
    "task": _operator,
    "context": _context,
    "dags": _dags_by_id,
    "dag_directory": _path,
    "processor_subdir": _path,
    "alive_dag_filelocs": _paths,
    "file_paths": _paths,
    "file_last_changed": _files_below,  # keyed by file
    "import_errors": _files_below,  # keyed by file
    "last_parsed": _paths,  # keyed by file
    "trigger_id": _trigger_id,
    "ids": _trigger_ids,
    "job": _job,
    "job_id": _job_id,
    "triggerer_id": _job_id,
    "dag_run_id": _dag_run_id,
    "pool": _pool,
    "pool_dict": _pools_by_dag,
}

# Parameters that name no team data on their own: they select rows only within a checked DAG, task
# instance or trigger, or are values, options or shared things (datasets, log templates).
UNSCOPED_PARAMETERS = frozenset(
    {
        "task_id",
        "task_ids",
        "run_id",
        "map_index",
        "map_indexes",
        "execution_date",
        "exec_date_or_run_id",
        "try_number",
        "key",
        "value",
        "state",
        "states",
        "event",
        "exc",
        "exception",
        "error",
        "extra",
        "rendered_fields",
        "description",
        "serialize_json",
        "include_prior_dates",
        "default",
        "is_mapped",
        "lock_for_update",
        "refresh_dag",
        "create_if_necessary",
        "verbose",
        "ignore_all_deps",
        "ignore_depends_on_past",
        "wait_for_past_depends_before_skipping",
        "ignore_task_deps",
        "ignore_ti_state",
        "mark_success",
        "test_mode",
        "hostname",
        "host_name",
        "external_executor_id",
        "force_fail",
        "fail_stop",
        "actual_start_date",
        "reschedule_exception",
        "ignore_param_exceptions",
        "tasks",
        "branch_task_ids",
        "dttm_filter",
        "external_task_ids",
        "external_task_group_id",
        "sub_command",
        "user",
        "full_command",
        "owner",
        "owner_display_name",
        "kwargs",
        "conf",
        "replace_microseconds",
        "pickle_dags",
        "stale_dag_threshold",
        "max_callbacks",
        "standalone_dag_processor",
        "capacity",
        "health_check_threshold",
        "job_type",
        "log_template_id",
        "alias",
        "dataset",
        "source_alias_names",
        "trigger",
        "dag_run_state",
        "conn_id",
        "misses",
        "email_sent",
        "logical_date",
    }
)


# ---- method policies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """What a team's internal API checks for one method, beyond the parameter checks."""

    rule: str
    refused: bool = False
    required: tuple[str, ...] = ()  # must be given (None would widen the query to every team)
    gated: tuple[str, ...] = ()  # not checked here: a cross-team gate or the method itself handles them
    check: Callable[..., None] | None = None  # a further check: (team, params, session), raises Refused
    call: Callable[..., Any] | None = None  # what runs instead of the method: (team, params, session)
    after: Callable[..., Any] | None = None  # (team, params, output, session) -> output


def _require_standalone(team: str, params: dict, session: Session) -> None:
    if params.get("standalone_dag_processor") is not True:
        raise Refused("a team's dag-processor fetches only the callbacks of its own folder (standalone)")


def _own_triggers(team: str, params: dict, output: Any, session: Session) -> Any:
    """Keep the triggers that run a task of the team (a trigger whose task moved on is dropped)."""
    own = {trigger_id for trigger_id, dag_id in _trigger_rows(output, session) if ids.team_of(dag_id) == team}
    return {trigger_id: trigger for trigger_id, trigger in output.items() if trigger_id in own}


def _team_job_type(team: str, params: dict, session: Session) -> None:
    if (job_type := _attribute(params.get("job"), "job_type")) not in tables.TEAM_JOB_TYPES:
        raise Refused(f"a team's components run no job of type {job_type!r}", job_type)


def _own_priority_filelocs(team: str, params: dict, session: Session) -> list[str]:
    """Take (and delete) the parsing requests of the team's files only."""
    from airflow.teams import dag_processor_polling

    return dag_processor_polling.take_parsing_requests(config.load().team(team).owns_path, session)


def _clear_own_import_errors(team: str, params: dict, session: Session) -> None:
    """Clear the import errors of the team's files that are gone; never another team's (nor all)."""
    from airflow.models.errors import ParseImportError

    owned = config.load().team(team)
    alive = set(params.get("file_paths") or ())
    stale = [
        error.id
        for error in session.scalars(
            select(ParseImportError).where(ParseImportError.processor_subdir == params["processor_subdir"])
        )
        if error.filename not in alive and owned.owns_path(error.filename)
    ]
    if stale:
        session.execute(delete(ParseImportError).where(ParseImportError.id.in_(stale)))


def _own_most_recent_job(team: str, params: dict, session: Session):
    from airflow.jobs.job import Job
    from airflow.utils.state import JobState

    return session.scalar(
        select(Job)
        .where(Job.job_type == params.get("job_type"), Job.id.in_(tables.job_ids_of_team(team)))
        .order_by(case({JobState.RUNNING: 0}, value=Job.state, else_=1), Job.latest_heartbeat.desc())
        .limit(1)
    )


_SCOPED = "every parameter naming team data is the team's"
_FILES = "the files and folder are in the team's DAG folders"
_JOB = "the job is the team's"
_JOB_OF_TEAM_TYPE = "the job is the team's, of a type a team runs"
_VARIABLE_WRITES = Policy("refused: a team's variables live in its secrets backend", refused=True)

POLICIES: dict[str, Policy] = {
    "airflow.utils.cli_action_loggers._default_action_log_internal": Policy(_SCOPED),
    "airflow.models.taskinstance._defer_task": Policy(_SCOPED),
    "airflow.models.taskinstance._get_template_context": Policy(_SCOPED),
    "airflow.cli.commands.task_command._get_ti_db_access": Policy(_SCOPED),
    "airflow.models.xcom_arg._get_task_map_length": Policy(_SCOPED),
    "airflow.utils.sensor_helper._get_count": Policy(
        "the external DAG is the team's", required=("external_dag_id",)
    ),
    "airflow.models.taskinstance._update_rtif": Policy(_SCOPED),
    "airflow.sensors.base._orig_start_date": Policy(_SCOPED),
    "airflow.models.taskinstance._handle_failure": Policy(_SCOPED),
    "airflow.models.taskinstance._handle_reschedule": Policy(_SCOPED),
    "airflow.models.taskinstance._add_log": Policy(_SCOPED),
    "airflow.models.taskinstance._xcom_pull": Policy(
        "the task instance and the DAG pulled from are the team's"
    ),
    "airflow.models.taskinstance._record_task_map_for_downstreams": Policy(_SCOPED),
    "airflow.api_internal.dag_runs.clear_dag_run": Policy(_SCOPED, required=("dag_id",)),
    "airflow.api.common.trigger_dag.trigger_dag": Policy(
        "any DAG, if its allow_triggering_by_teams admits the team (the direct-triggering gate)",
        gated=("dag_id",),
    ),
    "airflow.models.dagcode.DagCode.remove_deleted_code": Policy(_FILES, required=("processor_subdir",)),
    "airflow.models.dag.DagModel.deactivate_deleted_dags": Policy(_FILES, required=("processor_subdir",)),
    "airflow.models.dag.DagModel.get_paused_dag_ids": Policy(_SCOPED, required=("dag_ids",)),
    "airflow.models.dag.DagModel.get_current": Policy(_SCOPED, required=("dag_id",)),
    "airflow.api_internal.sla_misses.record_sla_misses": Policy(_SCOPED, required=("dag_id",)),
    "airflow.api_internal.sla_misses.mark_sla_misses_notified": Policy(_SCOPED, required=("dag_id",)),
    "airflow.dag_processing.processor.DagFileProcessor.save_dag_to_db": Policy(
        _SCOPED + "; " + _FILES + " (and the DAG-write check of teams.dag_writes)",
        required=("dag_directory",),
    ),
    "airflow.dag_processing.processor.DagFileProcessor.update_import_errors": Policy(
        _FILES + " (files below them: import errors are cleared by path prefix)",
        required=("processor_subdir",),
    ),
    "airflow.dag_processing.processor.DagFileProcessor._validate_task_pools_and_update_dag_warnings": Policy(
        _SCOPED, required=("dag_ids",)
    ),
    "airflow.dag_processing.manager.DagFileProcessorManager._fetch_callbacks": Policy(
        "only the callbacks of the team's folder", required=("dag_directory",), check=_require_standalone
    ),
    "airflow.dag_processing.manager.DagFileProcessorManager._get_priority_filelocs": Policy(
        "only the parsing requests of the team's files are taken", call=_own_priority_filelocs
    ),
    "airflow.dag_processing.manager.DagFileProcessorManager.clear_nonexistent_import_errors": Policy(
        _FILES + "; only the team's files' errors are cleared",
        required=("processor_subdir",),
        call=_clear_own_import_errors,
    ),
    "airflow.dag_processing.manager.DagFileProcessorManager.deactivate_stale_dags": Policy(
        _FILES, required=("dag_directory",)
    ),
    "airflow.models.dagwarning.DagWarning.purge_inactive_dag_warnings": Policy(
        "shared maintenance: deletes only the warnings of inactive DAGs"
    ),
    "airflow.datasets.expand_alias_to_datasets": Policy("shared: datasets and aliases belong to no team"),
    "airflow.datasets.manager.DatasetManager.register_dataset_change": Policy(
        "the producing task instance is the team's (the event's team is its team); consumers of other "
        "teams through the dataset gate",
        required=("task_instance",),
    ),
    "airflow.utils.log.file_task_handler.FileTaskHandler._render_filename_db_access": Policy(_SCOPED),
    "airflow.jobs.job.Job._add_to_db": Policy(
        "a new job of a team's type becomes the team's (recorded in teams_job)",
        required=("job",),
        check=_team_job_type,  # the job's team is recorded by Job._add_to_db (tables.record_job_of_serving_team)
    ),
    "airflow.jobs.job.Job._fetch_from_db": Policy(_JOB),
    "airflow.jobs.job.Job._kill": Policy(_JOB, required=("job_id",)),
    "airflow.jobs.job.Job._update_heartbeat": Policy(
        _JOB_OF_TEAM_TYPE, required=("job",), check=_team_job_type
    ),
    "airflow.jobs.job.Job._update_in_db": Policy(_JOB_OF_TEAM_TYPE, required=("job",), check=_team_job_type),
    "airflow.jobs.job.most_recent_job": Policy(
        "only the team's jobs are considered", call=_own_most_recent_job
    ),
    "airflow.secrets.metastore.MetastoreBackend._fetch_connection": Policy(
        "refused: a team's connections come from its secrets backend", refused=True
    ),
    "airflow.secrets.metastore.MetastoreBackend._fetch_variable": Policy(
        "refused: a team's variables come from its secrets backend", refused=True
    ),
    "airflow.models.xcom.BaseXCom.get_value": Policy(_SCOPED, required=("ti_key",)),
    "airflow.models.xcom.BaseXCom.get_one": Policy(_SCOPED, required=("dag_id",)),
    "airflow.models.xcom.BaseXCom.clear": Policy(_SCOPED, required=("dag_id",)),
    "airflow.models.xcom.BaseXCom.set": Policy(_SCOPED, required=("dag_id",)),
    "airflow.models.variable.Variable._set": _VARIABLE_WRITES,
    "airflow.models.variable.Variable._update": _VARIABLE_WRITES,
    "airflow.models.variable.Variable._delete": _VARIABLE_WRITES,
    "airflow.models.dag.DAG.fetch_dagrun": Policy(_SCOPED, required=("dag_id",)),
    "airflow.models.dagrun.DagRun.fetch_task_instances": Policy(_SCOPED, required=("dag_id",)),
    "airflow.models.dagrun.DagRun.get_previous_dagrun": Policy(_SCOPED, required=("dag_run",)),
    "airflow.models.dagrun.DagRun.get_previous_scheduled_dagrun": Policy(_SCOPED, required=("dag_run_id",)),
    "airflow.models.dagrun.DagRun.get_task_instances": Policy(
        "refused: not called through the internal API (DagRun.fetch_task_instances is)", refused=True
    ),
    "airflow.models.dagrun.DagRun.fetch_task_instance": Policy(
        _SCOPED + " (its dag_run_id is a run id of that DAG)", required=("dag_id",), gated=("dag_run_id",)
    ),
    "airflow.models.dagrun.DagRun._get_log_template": Policy("shared: log templates belong to no team"),
    "airflow.models.renderedtifields.RenderedTaskInstanceFields._update_runtime_evaluated_template_fields": Policy(
        _SCOPED, required=("ti",)
    ),
    "airflow.models.serialized_dag.SerializedDagModel.get_serialized_dag": Policy(
        _SCOPED, required=("dag_id",)
    ),
    "airflow.models.serialized_dag.SerializedDagModel.remove_deleted_dags": Policy(
        _FILES, required=("processor_subdir",)
    ),
    "airflow.models.skipmixin.SkipMixin._skip": Policy(_SCOPED, required=("dag_run",)),
    "airflow.models.skipmixin.SkipMixin._skip_all_except": Policy(_SCOPED, required=("ti",)),
    "airflow.models.taskinstance.TaskInstance._check_and_change_state_before_execution": Policy(
        _SCOPED + " (the job too)", required=("task_instance",)
    ),
    "airflow.models.taskinstance.TaskInstance.get_task_instance": Policy(_SCOPED, required=("dag_id",)),
    "airflow.models.taskinstance.TaskInstance._get_dagrun": Policy(_SCOPED, required=("dag_id",)),
    "airflow.models.taskinstance.TaskInstance._set_state": Policy(_SCOPED, required=("ti",)),
    "airflow.models.taskinstance.TaskInstance.save_to_db": Policy(_SCOPED, required=("ti",)),
    "airflow.models.taskinstance.TaskInstance._clear_xcom_data": Policy(_SCOPED, required=("ti",)),
    "airflow.models.trigger.Trigger.from_object": Policy(
        "shared: a new trigger row runs only once a task of the team defers to it"
    ),
    "airflow.models.trigger.Trigger.bulk_fetch": Policy(
        "only the triggers running the team's tasks are returned",
        required=("ids",),
        gated=("ids",),
        check=lambda team, params, session: _integer_trigger_ids(params["ids"]),
        after=_own_triggers,
    ),
    "airflow.models.trigger.Trigger.clean_unused": Policy("shared maintenance: deletes only unused triggers"),
    "airflow.models.trigger.Trigger.submit_event": Policy(
        "the trigger runs no task of another team", required=("trigger_id",)
    ),
    "airflow.models.trigger.Trigger.submit_failure": Policy(
        "the trigger runs no task of another team", required=("trigger_id",)
    ),
    "airflow.models.trigger.Trigger.ids_for_triggerer": Policy(
        "the triggerer job is the team's; only triggers of the team's tasks (teams.trigger_rows)",
        required=("triggerer_id",),
    ),
    "airflow.models.trigger.Trigger.assign_unassigned": Policy(
        "the triggerer job is the team's; only triggers of the team's tasks (teams.trigger_rows)",
        required=("triggerer_id",),
    ),
    "airflow.teams.dag_processor_polling.take_callbacks_and_parsing_requests": Policy(
        "only the callbacks of the team's folder and the parsing requests of its files",
        required=("dag_directory",),
    ),
    "airflow.teams.trigger_loading.assign_and_list": Policy(
        "the triggerer job is the team's; only triggers of the team's tasks (teams.trigger_rows)",
        required=("triggerer_id",),
    ),
}


def _check(method: str, handler: Callable, params: Any, team: str, session: Session) -> None:
    policy = POLICIES.get(method)
    if policy is None:
        raise Refused("the method has no policy for team internal APIs (default deny)")
    if policy.refused:
        raise Refused(policy.rule)
    if not isinstance(params, dict):
        raise Refused("the parameters are not a mapping of names to values")
    if unknown := sorted(set(params) - _signature(handler)[1], key=str):
        raise Refused(f"unknown parameter(s) {unknown}")
    for name in policy.required:
        if params.get(name) is None:
            raise Refused(f"parameter {name!r} is required for a team (without it the call spans all teams)")
    for name, value in params.items():
        if name in policy.gated:
            continue
        if check := PARAMETER_CHECKS.get(name):
            check(team, value, session)
        elif name not in UNSCOPED_PARAMETERS:
            raise Refused(f"parameter {name!r} has no team check (default deny)")
    if policy.check:
        policy.check(team, params, session)


@functools.lru_cache(maxsize=None)
def _signature(handler: Callable) -> tuple[inspect.Signature, frozenset[str]]:
    """Return a method's signature and the parameters a call may send (not the server's session)."""
    signature = inspect.signature(handler)
    return signature, frozenset(signature.parameters) - {"session", "cls"}


def _fit(handler: Callable, params: dict) -> None:
    """Refuse parameters the method cannot be called with (a missing one), instead of failing with a 500."""
    signature = _signature(handler)[0]
    session = {"session": None} if "session" in signature.parameters else {}  # the server passes its own
    try:
        signature.bind(**params, **session)
    except TypeError as err:
        raise Refused(f"the parameters do not fit the method: {err}")


def refuse(method: str, handler: Callable, params: Any):
    """Return a 403 response (logged and counted) if the call is outside the team's policy, else None."""
    team = process_team.serving_team()
    if team is None:
        return None
    from flask import Response

    from airflow import settings

    session = settings.Session()  # the request's session, in which the method then runs
    try:
        _check(method, handler, params, team, session)
        _fit(handler, params)
    except Refused as refused:
        session.rollback()
        internal_api.deny(method, str(refused), team, refused.obj, audit=True)
        return Response(
            json.dumps({"status": 403, "title": "Forbidden", "detail": f"Refused: {refused}."}),
            status=403,
            mimetype="application/problem+json",
        )
    return None


def call(method: str, handler: Callable, params: dict, session: Session) -> Any:
    """Run the method, as its policy says for a team's internal API (only the team's rows)."""
    team = process_team.serving_team()
    policy = POLICIES.get(method) if team is not None else None
    if policy is None:
        return handler(**params, session=session)
    output = policy.call(team, params, session) if policy.call else handler(**params, session=session)
    return policy.after(team, params, output, session) if policy.after else output
