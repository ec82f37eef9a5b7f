"""Any body a team's component can send gets a 2xx or a 4xx from its team's internal API, never a 500, and
changes nothing of another team (issue 25; patches internal-api-problem-responses,
teams-internal-api-policies, teams-dataset-triggering).

Property test: for EVERY method of the internal API's method map, hypothesis generates arguments of the
method's declared types (plus the rows of team_a and team_b that a parameter of that name names, and values
of the wrong type), serializes them as Airflow's client does and sends them, signed with team_a's valid
key, through team_a's running internal API (the deployment of test_team_internal_apis.py, one for this
module). Then hand-made bodies: a 10,000-deep JSON, a 10 MB body, NUL bytes, wrong types, and the cases
an attacker as team_a found."""

from __future__ import annotations

import datetime
import inspect
import os
import re

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from airflow.models.taskinstancekey import TaskInstanceKey
from tests.api_internal.test_team_internal_apis import (
    TeamObjects,
    call,
    deployment,  # noqa: F401  (the module's deployment: two isolated teams, team_b's rows to protect)
    key,
    post,
    serialize,
    team_b_state,
    token,
    url,
)

pytestmark = pytest.mark.e2e

# Bounded: every method gets this many generated calls (about 0.05 s each), no shrinking.
EXAMPLES_PER_METHOD = int(os.environ.get("ANY_BODY_EXAMPLES", "6"))
FUZZ = settings(max_examples=EXAMPLES_PER_METHOD, deadline=None, derandomize=True, database=None,
                phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
UTC = datetime.timezone.utc

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
NUL_TEXT = st.builds(lambda a, b: f"{a}\x00{b}", TEXT, TEXT)
INTEGERS = st.one_of(st.integers(-3, 3), st.integers(-(2**70), 2**70))
DATETIMES = st.datetimes(min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30),
                         timezones=st.just(UTC))
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, st.floats(allow_nan=False), TEXT, NUL_TEXT, DATETIMES)
ANYTHING = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)


def _split_top(annotation: str, separator: str) -> list[str]:
    """Split ``annotation`` on ``separator`` outside brackets: "dict[str, int] | None" -> two options."""
    pieces, depth, start = [], 0, 0
    for index, char in enumerate(annotation):
        depth += (char == "[") - (char == "]")
        if depth == 0 and annotation.startswith(separator, index):
            pieces.append(annotation[start:index])
            start = index + len(separator)
    pieces.append(annotation[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


class Values:
    """What a parameter can be: values of its declared type, the two teams' rows, values of other types."""

    def __init__(self, deployment):  # noqa: F811
        from airflow.datasets import Dataset, DatasetAlias
        from airflow.exceptions import AirflowException, AirflowRescheduleException, TaskDeferred
        from airflow.triggers.temporal import DateTimeTrigger

        self.teams = {team: TeamObjects(deployment, team) for team in ("team_a", "team_b")}
        strings = [f"{team}:victim" for team in self.teams] + [objects.folder for objects in self.teams.values()] + [
            objects.ti.run_id for objects in self.teams.values()] + ["push", "wait", "team_a:nothing", "team_b:p"]
        self.named = {
            "str": st.one_of(TEXT, NUL_TEXT, st.sampled_from(strings)),
            "int": st.one_of(INTEGERS, st.sampled_from(
                [objects.job.id for objects in self.teams.values()] + [objects.dag_run.id for objects in
                                                                        self.teams.values()])),
            "bool": st.booleans(),
            "float": st.floats(allow_nan=False),
            "datetime": DATETIMES, "DateTime": DATETIMES, "pendulum.DateTime": DATETIMES,
            "datetime.datetime": DATETIMES,
            "None": st.none(),
            "Any": ANYTHING, "dict": st.dictionaries(TEXT, ANYTHING, max_size=3),
            "TaskInstance": self._rows("ti"), "TaskInstancePydantic": self._rows("ti"),
            "DagRun": self._rows("dag_run"), "DagRunPydantic": self._rows("dag_run"),
            "Job": self._rows("job"), "JobPydantic": self._rows("job"),
            "TaskInstanceKey": st.builds(TaskInstanceKey, st.sampled_from([f"{t}:victim" for t in self.teams]),
                                         st.sampled_from(["push", "wait"]), st.sampled_from(strings), INTEGERS,
                                         INTEGERS),
            "Dataset": st.builds(Dataset, st.sampled_from(["s3://shared/x", "file:///tmp/x", "x"])),
            "DatasetAlias": st.builds(DatasetAlias, TEXT.filter(bool)),
            "BaseTrigger": st.builds(DateTimeTrigger, DATETIMES),
            "BaseException": st.sampled_from([AirflowException("x"), KeyError("x"), RuntimeError("\x00")]),
            "AirflowRescheduleException": st.builds(AirflowRescheduleException, DATETIMES),
            "TaskDeferred": st.builds(lambda when: TaskDeferred(trigger=DateTimeTrigger(when), method_name="x"),
                                      DATETIMES),
            "TaskInstanceState": st.sampled_from(["success", "failed", "deferred", "bogus"]),
            "DagRunState": st.sampled_from(["success", "running", "bogus"]),
            "Context": st.builds(lambda ti: {"ti": ti}, self._rows("ti")),
            "CreateIfNecessary": st.sampled_from([False, "db", "memory"]),
        }

    def _rows(self, name: str):
        return st.sampled_from([objects.value(name) for objects in self.teams.values()])

    def of(self, annotation: str):
        """A strategy for ``annotation`` (the method's declared type, as text)."""
        options = _split_top(annotation, "|")
        if len(options) > 1:
            return st.one_of(*map(self.of, options))
        annotation = options[0] if options else "Any"
        outer, _, inner = annotation.partition("[")
        arguments = _split_top(inner[:-1], ",") if inner else []
        if outer in ("list", "set", "Iterable", "Collection", "Container") and arguments:
            items = self.of(arguments[0])
            return st.lists(items, max_size=3) if outer != "set" else st.lists(items, max_size=3).map(
                lambda values: set(values) if all(isinstance(v, (str, int)) for v in values) else values)
        if outer == "dict" and len(arguments) == 2:
            return st.dictionaries(self.of(arguments[0]), self.of(arguments[1]), max_size=3)
        if outer == "tuple":
            return st.tuples(*map(self.of, arguments))
        return self.named.get(annotation, ANYTHING)

    def parameter(self, name: str, annotation: str):
        """The declared type, the teams' rows a parameter of this name names, or anything at all."""
        rows = [value for objects in self.teams.values() if (value := objects.value(name)) is not None]
        return st.one_of(self.of(annotation), *([st.sampled_from(rows)] if rows else []), ANYTHING)


def arguments_of(values: Values, handler):
    signature = inspect.signature(handler)
    fields = {
        name: values.parameter(name, "Any" if parameter.annotation is inspect.Parameter.empty
                               else str(parameter.annotation))
        for name, parameter in signature.parameters.items()
        if name not in ("session", "cls", "self", "kwargs")
    }
    required = {name for name in fields if signature.parameters[name].default is inspect.Parameter.empty}
    return st.fixed_dictionaries({name: fields[name] for name in required},
                                 optional={name: fields[name] for name in fields if name not in required})


def _serializable(params: dict):
    try:
        return serialize(params)
    except Exception:  # a value Airflow's client cannot send either
        return None


def test_every_method_answers_any_arguments_with_2xx_or_4xx_and_team_b_is_unchanged(deployment):  # noqa: F811
    from airflow.api_internal.endpoints.rpc_api_endpoint import initialize_method_map

    values = Values(deployment)
    before = team_b_state(deployment)
    statuses: dict[str, set[int]] = {}
    server_errors: dict[str, list[str]] = {}

    def fuzz(method: str, handler):
        @FUZZ
        @given(params=arguments_of(values, handler))
        def send(params):
            body = _serializable(params)
            if body is None:
                return
            response = call(deployment, method, body)
            statuses.setdefault(method, set()).add(response.status_code)
            if response.status_code >= 500:
                server_errors.setdefault(method, []).append(f"{params!r:.300} -> {response.text[:200]}")

        return send

    for method, handler in sorted(initialize_method_map().items()):
        fuzz(method, handler)()

    assert set(statuses) == set(initialize_method_map())  # every method got calls
    assert server_errors == {}, "\n".join(
        f"{method}: {error}" for method, errors in sorted(with_exceptions(deployment, server_errors).items())
        for error in errors)
    assert all(status < 500 for codes in statuses.values() for status in codes)
    assert team_b_state(deployment) == before


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Found|Exit|Timeout)\w*)(?::.*)?$", re.M)


def with_exceptions(deployment, server_errors: dict[str, list[str]]) -> dict[str, list[str]]:  # noqa: F811
    """Add the exception that the internal API's log shows for each 500 (by its error_id)."""
    log = deployment.log_of(deployment.internal_api("team_a"))
    found = {}
    for method, errors in server_errors.items():
        for error in errors:
            error_id = re.search(r"error_id=([0-9a-f-]{36})", error)
            position = log.find(error_id.group(1)) if error_id else -1
            exception = _EXCEPTION_LINE.search(log, position) if position >= 0 else None
            found.setdefault(method, []).append(f"{exception.group(0)[:200] if exception else '?'} <- {error}")
    return found


GET_CURRENT = "airflow.models.dag.DagModel.get_current"


def signed_post(deployment, body, method: str = GET_CURRENT) -> requests.Response:  # noqa: F811
    return post(url(deployment, "team_a"), body, token(key(deployment, "team_a"), method=method, team="team_a"))


@pytest.mark.parametrize("authorized", [False, True], ids=["before-authentication", "signed"])
def test_a_10000_deep_body_is_refused_before_it_is_parsed(deployment, authorized):  # noqa: F811
    deep = '{"jsonrpc": "2.0", "method": "%s", "params": %s}' % (GET_CURRENT, "[" * 10_000 + "]" * 10_000)

    response = (signed_post(deployment, deep) if authorized else
                requests.post(url(deployment, "team_a"), data=deep, timeout=60,
                              headers={"Content-Type": "application/json", "Accept": "application/json"}))

    assert response.status_code == 400, response.text[:300]
    assert "nested deeper than" in response.text


def test_a_10_mb_body_gets_a_4xx_or_is_served(deployment):  # noqa: F811
    body = {"jsonrpc": "2.0", "method": GET_CURRENT,
            "params": {"__type": "dict", "__var": {"dag_id": "team_a:" + "x" * 10_000_000}}}

    response = signed_post(deployment, body)

    assert response.status_code == 200, response.text[:300]  # below the limit: served (no such DAG)


def test_a_body_above_the_size_limit_is_refused_with_413_before_it_is_read(deployment):  # noqa: F811
    import http.client
    from urllib.parse import urlparse

    from airflow.api_internal.problems import MAX_BODY_BYTES

    target = urlparse(url(deployment, "team_a"))
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    connection.putrequest("POST", target.path)
    for name, value in {"Content-Type": "application/json", "Accept": "application/json",
                        "Content-Length": str(MAX_BODY_BYTES + 1)}.items():
        connection.putheader(name, value)
    connection.endheaders(b'{"jsonrpc": "2.0", "params": "')  # the rest never comes: refused on its length
    response = connection.getresponse()

    assert response.status == 413, response.read()[:300]
    connection.close()


@pytest.mark.parametrize(("method", "params"), [
    (GET_CURRENT, {"dag_id": "team_a:vic\x00tim"}),
    ("airflow.models.xcom.BaseXCom.get_one", {"dag_id": "team_a:victim", "run_id": "r\x00", "key": "k"}),
    ("airflow.dag_processing.manager.DagFileProcessorManager.deactivate_stale_dags",
     {"last_parsed": {}, "dag_directory": "{folder}/\x00", "stale_dag_threshold": 5}),
], ids=["dag-id", "run-id", "folder"])
def test_a_nul_byte_in_a_string_gets_400(deployment, method, params):  # noqa: F811
    folder = str(deployment.team_folder("team_a"))
    params = {name: value.replace("{folder}", folder) if isinstance(value, str) else value
              for name, value in params.items()}

    response = call(deployment, method, serialize(params))

    assert response.status_code == 400, response.text[:300]


def test_another_team_s_run_named_with_the_team_s_own_dag_gets_404(deployment):  # noqa: F811
    team_b_run = TeamObjects(deployment, "team_b").ti.run_id
    before = team_b_state(deployment)

    answers = {
        method: call(deployment, method, serialize(params)) for method, params in {
            "airflow.models.taskinstance.TaskInstance._get_dagrun": {"dag_id": "team_a:victim", "run_id": team_b_run},
        }.items()
    }

    assert {method: response.status_code for method, response in answers.items()} == dict.fromkeys(answers, 404)
    assert team_b_state(deployment) == before


def test_dag_ids_of_the_wrong_type_get_400(deployment):  # noqa: F811
    method = "airflow.dag_processing.processor.DagFileProcessor._validate_task_pools_and_update_dag_warnings"

    response = call(deployment, method, serialize({"pool_dict": {}, "dag_ids": ["team_a:victim"]}))

    assert response.status_code == 400, response.text[:300]


@pytest.mark.parametrize(("method", "params"), [
    ("airflow.models.taskinstance.TaskInstance._check_and_change_state_before_execution",
     {"task_instance": "{ti}", "pool": "team_b:pool"}),
    ("airflow.dag_processing.processor.DagFileProcessor._validate_task_pools_and_update_dag_warnings",
     {"pool_dict": {"team_a:victim": {"team_b:pool"}}, "dag_ids": {"team_a:victim"}}),
], ids=["pool", "pool-dict"])
def test_another_team_s_pool_is_refused_naming_the_team(deployment, statsd, method, params):  # noqa: F811
    ti = TeamObjects(deployment, "team_a").ti
    params = {name: ti if value == "{ti}" else value for name, value in params.items()}
    before = team_b_state(deployment), ti_state(deployment)

    response = call(deployment, method, serialize(params))

    assert response.status_code == 403, response.text[:300]
    assert response.json()["detail"] == ("Refused: pool 'team_b:pool' is a pool of team 'team_b', not of team 'team_a'.")
    assert re.search(rf"Refused internal API call {re.escape(method)} for team team_a naming 'team_b:pool'",
                     deployment.log_of(deployment.internal_api("team_a")))
    deployment.wait_for(lambda: any(p.startswith("airflow.teams.rpc_denied,") and f"method={method}," in p
                                    for p in statsd.packets), "the refusal's teams.rpc_denied metric")
    assert (team_b_state(deployment), ti_state(deployment)) == before


def ti_state(deployment):  # noqa: F811
    return deployment.rows("SELECT task_id, state, pool FROM task_instance WHERE dag_id = 'team_a:victim' ORDER BY 1")


@pytest.mark.parametrize(("params", "status"), [
    ({"__type": "dict", "__var": {"dag_id": ["team_a:victim"]}}, 403),
    ({"__type": "dict", "__var": {"dag_id": {"__type": "datetime", "__var": "x"}}}, 400),
    ({"__type": "dict", "__var": {"dag_id": {"__type": "dict", "__var": None}}}, 400),
    ({"__type": "dict", "__var": {"dag_id": "team_a:victim", "extra": 1}}, 403),
    ("team_a:victim", 400),
    (12, 400),
], ids=["list", "bad-datetime", "dict-of-none", "unknown-parameter", "string", "number"])
def test_parameters_of_the_wrong_type_get_a_4xx(deployment, params, status):  # noqa: F811
    response = signed_post(deployment, {"jsonrpc": "2.0", "method": GET_CURRENT, "params": params})

    assert response.status_code == status, response.text[:300]


@pytest.mark.db_test
def test_outside_isolation_a_team_s_code_cannot_record_a_dataset_event_as_another_team_s(multi_team, monkeypatch):
    from airflow.datasets import Dataset
    from airflow.datasets.manager import DatasetManager
    from airflow.models.dataset import DatasetEvent, DatasetModel
    from airflow.teams import process_team
    from airflow.utils.session import create_session

    multi_team({"team_a": ["LocalExecutor"], "team_b": ["LocalExecutor"]})
    uri = "s3://shared/forged-outside-isolation"
    with create_session() as session:
        if not session.query(DatasetModel).filter_by(uri=uri).count():
            session.add(DatasetModel(uri=uri))
    with create_session() as session:
        dataset_id = session.query(DatasetModel.id).filter_by(uri=uri).scalar()
    process_team.stop_serving()
    process_team.serve("team_a")  # as a task process of team_a does (no internal API: it holds the database)

    with pytest.raises(process_team.ForeignTeamError, match=(
            r"This process serves team 'team_a'; it cannot record a dataset event as produced by team\(s\) "
            r"\['team_b'\]\.")):
        DatasetManager().register_dataset_change(task_instance=None, dataset=Dataset(uri), source_teams=["team_b"])
    with create_session() as session:
        assert session.query(DatasetEvent).filter(DatasetEvent.dataset_id == dataset_id).count() == 0


def test_exceptions_map_to_a_status_by_their_class():
    from sqlalchemy.exc import (ArgumentError, DataError, IntegrityError, InvalidRequestError, MultipleResultsFound,
                                NoResultFound, PendingRollbackError, ProgrammingError, StatementError)

    from airflow.api_internal.problems import status_of

    wrapped = StatementError("bind", "SELECT 1", {}, ValueError("A string literal cannot contain NUL (0x00)"))
    found = {name: status_of(error) for name, error in {
        "no-result": NoResultFound(), "several": MultipleResultsFound(), "orm": InvalidRequestError("pk"),
        "pending-rollback": PendingRollbackError("rollback first"),
        "integrity": IntegrityError("INSERT", {}, Exception("duplicate key")),
        "data": DataError("SELECT", {}, Exception("out of range")),
        "programming": ProgrammingError("SELECT", {}, Exception("can't adapt type 'dict'")),
        "argument": ArgumentError("IN expression list expected, got True"), "type": TypeError("x"), "value": ValueError("x"), "recursion": RecursionError(), "wrapped": wrapped,
        # a threshold of -3.6e16 seconds (found by the test above): timedelta raises OverflowError
        "overflow": OverflowError("Python int too large to convert to C int"),
        "runtime": RuntimeError("x"), "key": KeyError("x"), "wrapped-runtime": StatementError(
            "x", "SELECT 1", {}, RuntimeError("x")),
    }.items()}

    assert found == {"no-result": 404, "several": 400, "orm": 400, "pending-rollback": 500, "integrity": 409,
                     "data": 400, "programming": 400, "type": 400, "value": 400, "recursion": 400, "wrapped": 400,
                     "runtime": 500, "key": 500, "wrapped-runtime": 500, "argument": 400, "overflow": 400}


@pytest.mark.parametrize(("body", "depth"), [
    (b'{"a": [1, {"b": []}]}', 4), (b'{"a": "[[[[{{{{"}', 1), (b'["\\"[[[", [[]]]', 3), (b"12", 0),
    (b"[" * 10_000 + b"]" * 10_000, 10_000),
], ids=["nested", "brackets-in-a-string", "escaped-quote", "scalar", "10000-deep"])
def test_the_depth_of_a_body_is_measured_without_parsing_it(body, depth):
    from airflow.api_internal.problems import body_depth

    assert body_depth(body) == depth
