"""A team's dag-processor takes its callbacks and its files' parsing requests with one call per loop, and only
its own folder's (patch teams-dag-processor-one-call-per-loop); a dag-processor of no team keeps upstream's
calls."""

from __future__ import annotations

import json
from collections import deque
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import select

from airflow.api_internal.internal_api_call import InternalApiConfig
from airflow.callbacks.callback_requests import DagCallbackRequest
from airflow.dag_processing.manager import DagFileProcessorManager
from airflow.models.dagbag import DagPriorityParsingRequest
from airflow.models.db_callback_request import DbCallbackRequest
from airflow.serialization.serialized_objects import BaseSerialization
from airflow.teams import dag_processor_polling, process_team
from airflow.utils.session import create_session

# "sales" is a string prefix of "sales_eu": a plain prefix match on the folder would take both.
TEAMS = {"sales": [{"name": "s", "class": "LocalExecutor"}], "sales_eu": [{"name": "e", "class": "LocalExecutor"}]}


def callback(folder: str, dag_id: str) -> DagCallbackRequest:
    return DagCallbackRequest(full_filepath=f"{folder}/{dag_id}.py", dag_id=dag_id, run_id="r",
                              processor_subdir=folder, is_failure_callback=True)


@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")
def test_one_call_takes_the_callbacks_and_parsing_requests_of_its_folder_only(multi_team):
    dags = multi_team(TEAMS)
    sales, sales_eu = str(dags / "sales"), str(dags / "sales_eu")
    with create_session() as session:
        for folder in (sales, sales_eu):
            session.add(DbCallbackRequest(callback=callback(folder, "d"), priority_weight=1))
            session.add(DagPriorityParsingRequest(fileloc=f"{folder}/d.py"))

    try:
        callbacks, filelocs = dag_processor_polling.take_callbacks_and_parsing_requests(20, sales)

        assert [(c.processor_subdir, c.dag_id) for c in callbacks] == [(sales, "d")]
        assert filelocs == [f"{sales}/d.py"]
        with create_session() as session:  # sales_eu's are left for sales_eu's dag-processor
            assert session.scalars(select(DagPriorityParsingRequest.fileloc)).all() == [f"{sales_eu}/d.py"]
            assert [r.get_callback_request().processor_subdir for r in session.scalars(select(DbCallbackRequest))] == [
                sales_eu]
    finally:
        with create_session() as session:
            session.query(DbCallbackRequest).delete()
            session.query(DagPriorityParsingRequest).delete()


def manager(folder: str):
    """What _refresh_requested_filelocs uses of a DagFileProcessorManager."""
    queued = []
    return SimpleNamespace(_file_path_queue=deque(["/queued.py"]), get_dag_directory=lambda: folder,
                           _add_callback_to_queue=queued.append, queued_callbacks=queued)


def test_a_teams_dag_processor_takes_both_with_one_internal_api_call(multi_team, monkeypatch):
    dags = multi_team(TEAMS)
    folder = str(dags / "sales")
    monkeypatch.setenv("AIRFLOW__SALES___CORE__INTERNAL_API_URL", "http://sales:9080")
    monkeypatch.setenv("AIRFLOW__SALES___CORE__INTERNAL_API_SECRET_KEY", "sales-key")
    monkeypatch.setattr(InternalApiConfig, "_use_internal_api", True)
    made = []

    def post(url, data, headers, timeout):
        made.append((url, json.loads(data)["method"], BaseSerialization.deserialize(json.loads(data)["params"])))
        answer = BaseSerialization.serialize(([callback(folder, "d")], [f"{folder}/requested.py"]))
        return SimpleNamespace(status_code=200, content=json.dumps(answer).encode())

    monkeypatch.setattr(requests, "post", post)
    process_team.serve("sales")
    processor = manager(folder)

    DagFileProcessorManager._refresh_requested_filelocs(processor)

    assert made == [("http://sales:9080/internal_api/v1/rpcapi",
                     "airflow.teams.dag_processor_polling.take_callbacks_and_parsing_requests",
                     {"max_callbacks": 20, "dag_directory": folder})]
    assert [c.dag_id for c in processor.queued_callbacks] == ["d"]
    assert list(processor._file_path_queue) == [f"{folder}/requested.py", "/queued.py"]


def test_a_dag_processor_of_no_team_keeps_upstreams_call(monkeypatch):
    monkeypatch.setattr(DagFileProcessorManager, "_get_priority_filelocs", classmethod(lambda cls: ["/r.py"]))
    monkeypatch.setattr(dag_processor_polling, "take_callbacks_and_parsing_requests",
                        lambda *args: pytest.fail("a dag-processor of no team made the team's call"))
    processor = manager("/dags")

    DagFileProcessorManager._refresh_requested_filelocs(processor)

    assert list(processor._file_path_queue) == ["/r.py", "/queued.py"]
    assert processor.queued_callbacks == []
