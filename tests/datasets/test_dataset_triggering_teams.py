"""Cross-team dataset and direct triggering, enforced by a real scheduler on PostgreSQL (patch teams-datasets).

Teams A, B and C share the dataset ``s3://shared/orders``. A produces it and admits team B's DAGs to its
events (``allow_consuming_by_teams``); consumers in every team decide with ``allow_triggering_by_teams``
who may trigger them, and who may clear their tasks through an ExternalTaskMarker. A webserver takes dataset events posted by a user of team B and clears by a user of
team A (roles name the teams: FabTeamRolesAuthManager).
"""

from __future__ import annotations

import json

import pendulum
import pytest
import requests

from tests.test_utils.deployment import local_executors

pytestmark = [pytest.mark.e2e, pytest.mark.db_isolation]

CONSUMERS = """
    import pendulum
    from airflow import DAG
    from airflow.datasets import Dataset
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import PythonOperator

    def report(triggering_dataset_events):
        for uri, events in triggering_dataset_events.items():
            for event in events:
                print(f"TRIGGERED BY {{event.source_dag_id}} ON {{uri}}")

    for name, uri, allow in {consumers!r}:
        with DAG(name, schedule=[Dataset(uri)], start_date=pendulum.datetime(2024, 1, 1),
                 allow_triggering_by_teams=allow) as dag:
            if name in {reporting!r}:  # a task that reads the events that triggered it
                PythonOperator(task_id="consume", python_callable=report)
            else:
                EmptyOperator(task_id="consume")
        globals()[name] = dag
"""

PRODUCER = """
    import pendulum
    from airflow import DAG
    from airflow.datasets import Dataset
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator

    with DAG("produce", schedule=None, start_date=pendulum.datetime(2024, 1, 1), allow_consuming_by_teams=["team_b"]):
        EmptyOperator(task_id="produce", outlets=[Dataset("s3://shared/orders")])

    with DAG("notes", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):  # a dataset nobody consumes
        EmptyOperator(task_id="note", outlets=[Dataset("s3://shared/notes")])

    with DAG("trigger_b", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        TriggerDagRunOperator(task_id="trigger", trigger_dag_id="team_b:target")

    with DAG("trigger_c", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        TriggerDagRunOperator(task_id="trigger", trigger_dag_id="team_c:target")
"""

INLETS = """
    import pendulum
    from airflow import DAG
    from airflow.datasets import Dataset
    from airflow.operators.python import PythonOperator

    ORDERS = Dataset("s3://shared/orders")

    def read(inlet_events):
        print(f"INLET EVENTS {sorted(event.id for event in inlet_events[ORDERS])}")

    with DAG("read_inlets", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        PythonOperator(task_id="read", python_callable=read, inlets=[ORDERS])
"""

TARGET = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1), allow_triggering_by_teams={allow!r}):
        EmptyOperator(task_id="noop")
"""

MARKERS = """
    import pendulum
    from airflow import DAG
    from airflow.sensors.external_task import ExternalTaskMarker

    with DAG("mark", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        ExternalTaskMarker(task_id="to_b", external_dag_id="team_b:cleared", external_task_id="noop")
        ExternalTaskMarker(task_id="to_c", external_dag_id="team_c:cleared", external_task_id="noop")
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server, db_access):
    from tests.test_utils.deployment import Deployment

    root = tmp_path_factory.mktemp("datasets")
    database = postgres_server.create_database(f"e2e_datasets_{root.name.replace('-', '_')}")
    deployment = Deployment(
        root, database, local_executors("team_a", "team_b", "team_c"),
        core__auth_manager="airflow.teams.fab_auth_manager.FabTeamRolesAuthManager",
        api__auth_backends="airflow.api.auth.backend.basic_auth", webserver__workers="1",
        isolated=db_access == "isolated",
    )
    orders, api = "s3://shared/orders", "s3://shared/api"
    deployment.write_dag("team_a", "produce.py", PRODUCER)
    deployment.write_dag("team_a", "consume.py", CONSUMERS.format(reporting=[], consumers=[
        ("consume", orders, None), ("consume_api", api, None)]))
    deployment.write_dag("team_b", "consume.py", CONSUMERS.format(reporting=["consume"], consumers=[
        ("consume", orders, ["team_a"]), ("consume_api", api, None)]))
    deployment.write_dag("team_c", "consume.py", CONSUMERS.format(reporting=[], consumers=[
        ("consume", orders, None), ("consume_glob", orders, ["team_*"]), ("consume_api", api, ["team_a"])]))
    deployment.write_dag("team_a", "mark.py", MARKERS)
    for team in ("team_b", "team_c"):
        deployment.write_dag(team, "inlets.py", INLETS)
    for dag_id in ("target", "cleared"):
        deployment.write_dag("team_b", f"{dag_id}.py", TARGET.format(dag_id=dag_id, allow=["team_a"]))
        deployment.write_dag("team_c", f"{dag_id}.py", TARGET.format(dag_id=dag_id, allow=None))
    deployment.migrate()
    for user, team in (("alice", "team_a"), ("bob", "team_b"), ("dave", "team_c"), ("carol", "*")):
        deployment.airflow("roles", "create", f"team:{team}")
        deployment.create_user(user)
        deployment.airflow("users", "add-role", "--username", user, "--role", f"team:{team}")
    for team in ("team_a", "team_b", "team_c"):
        deployment.start(f"dag-processor-{team}", "dag-processor", "--team", team)
    deployment.start("scheduler", "scheduler")
    deployment.start_webserver()
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 18, "the DAGs")
    deployment.wait_for_webserver()
    yield deployment
    deployment.stop_all()


def runs(deployment, dag_id: str) -> list[tuple]:
    return deployment.rows("SELECT run_id, state FROM dag_run WHERE dag_id = :d", d=dag_id)


def latest_run(deployment, dag_id: str) -> int:
    return deployment.scalar("SELECT coalesce(max(id), 0) FROM dag_run WHERE dag_id = :d", d=dag_id)


def wait_for_new_run(deployment, dag_id: str, after: int) -> int:
    """Wait until a run of ``dag_id`` newer than run id ``after`` has succeeded; return its id."""
    return deployment.wait_for(lambda: deployment.scalar(
        "SELECT max(id) FROM dag_run WHERE dag_id = :d AND id > :a AND state = 'success'", d=dag_id, a=after),
        f"a new successful run of {dag_id}")


def refusals(deployment, dag_id: str, since=None) -> list[dict]:
    """The refusals recorded in the audit log against ``dag_id`` (airflow.teams.denials), oldest first."""
    rows = deployment.rows("SELECT extra FROM log WHERE event = 'teams.trigger_denied' AND dag_id = :d "
                           "AND dttm >= coalesce(CAST(:s AS timestamptz), '-infinity') ORDER BY id", d=dag_id, s=since)
    return [json.loads(extra) for (extra,) in rows]


def events_of_run(deployment, run_id: int) -> list[tuple]:
    """(source dag, source teams) of every event attached to one run."""
    return deployment.rows(
        "SELECT e.source_dag_id, s.source_teams::text FROM dagrun_dataset_event de "
        "JOIN dataset_event e ON e.id = de.event_id "
        "LEFT JOIN teams_dataset_event_source s ON s.dataset_event_id = e.id "
        "WHERE de.dag_run_id = :r ORDER BY e.id", r=run_id,
    )


def finished_run(deployment, dag_id: str, run_id: str) -> str:
    """Wait until the run ``run_id`` of ``dag_id`` finished; return its state."""
    return deployment.wait_for(lambda: deployment.scalar(
        "SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r AND state IN ('success', 'failed')",
        d=dag_id, r=run_id), f"run {run_id} of {dag_id} to finish")


def queued_since(deployment, target_dag_id: str, moment) -> int:
    return deployment.scalar("SELECT count(*) FROM dataset_dag_run_queue WHERE target_dag_id = :d "
                             "AND created_at >= :m", d=target_dag_id, m=moment)


def test_a_teams_event_triggers_only_the_consumers_that_allow_it_and_that_the_producer_admits(deployment):
    allowed = ("team_a:consume", "team_b:consume")
    before = {dag_id: latest_run(deployment, dag_id) for dag_id in allowed}
    started = deployment.scalar("SELECT now()")
    deployment.airflow("dags", "trigger", "team_a:produce", "--run-id", "consents")
    assert finished_run(deployment, "team_a:produce", "consents") == "success"

    for dag_id in allowed:
        events = events_of_run(deployment, wait_for_new_run(deployment, dag_id, before[dag_id]))
        assert ("team_a:produce", '["team_a"]') in events, dag_id
        # only events it may consume: team_a's (recorded teams, or the producing DAG's team if none recorded)
        assert all(teams == '["team_a"]' or (teams is None and source.startswith("team_a:"))
                   for source, teams in events), (dag_id, events)
    for dag_id in ("team_c:consume", "team_c:consume_glob"):
        assert runs(deployment, dag_id) == []
        assert queued_since(deployment, dag_id, started) == 0
    # the consumer's task reads the events that triggered it (isolated: objects through the internal API)
    assert "TRIGGERED BY team_a:produce ON s3://shared/orders" in deployment.task_logs("team_b:consume")
    # The producing task queued the allowed consumers only, and says why it left team C's out (isolated: the
    # internal API, which registered the task's event, says it).
    gate_log = deployment.log_of(deployment.internal_api("team_a")) if deployment.isolated else deployment.task_logs("team_a:produce")
    assert ("may not trigger team_c:consume: team_a is another team and the DAG sets no "
            "allow_triggering_by_teams [queue]") in gate_log
    # team_c:consume_glob admits team_a ('team_*'), but team_a's producer admits only team_b
    assert ("may not trigger team_c:consume_glob: the producer team_a admits only team_b "
            "(allow_consuming_by_teams) [queue]") in gate_log
    # ... and team C reads it in its DAG's audit log: both teams, the object, the reason.
    (refusal,) = refusals(deployment, "team_c:consume", since=started)
    assert refusal["team"] == "team_a" and refusal["target_team"] == "team_c", refusal
    assert refusal["object"].startswith("dataset event ") and refusal["object"].endswith(" on s3://shared/orders")
    assert refusal["reason"] == "team_a is another team and the DAG sets no allow_triggering_by_teams"
    assert refusal["refused_by"] == "consumer"
    # The producer's refusal: on the consumer's DAG and on the producing DAG, so both teams read it.
    (by_producer,) = refusals(deployment, "team_c:consume_glob", since=started)
    assert (by_producer["team"], by_producer["target_team"], by_producer["refused_by"]) == ("team_c", "team_a", "producer")
    assert by_producer["reason"] == "the producer team_a admits only team_b (allow_consuming_by_teams)"
    assert "producer_dag_id" not in by_producer  # team_c does not learn team_a's DAG ids ...
    (told,) = refusals(deployment, "team_a:produce", since=started)  # ... nor team_a team_c's: the team, a count
    assert (told["refused_by"], told["consumer_team"], told["consumer_dags"], told["reason"]) == (
        "producer", "team_c", 1, by_producer["reason"])
    assert "consumer_dag_id" not in told and "team_c:" not in json.dumps(told)


def test_a_forged_queue_row_does_not_create_a_run(deployment):
    started = deployment.scalar("SELECT now()")
    refusal = "may not trigger team_c:consume: team_a is another team and the DAG sets no allow_triggering_by_teams [run]"
    with deployment._engine.begin() as connection:
        # An event of team_a on the dataset (as if written behind the manager's back), and a queue row for
        # team_c's consumer, which does not allow team_a.
        connection.exec_driver_sql(
            "INSERT INTO dataset_event (dataset_id, extra, source_dag_id, source_task_id, source_run_id, timestamp) "
            "SELECT id, '{}', 'team_a:produce', 'forged', 'forged', now() FROM dataset WHERE uri = 's3://shared/orders'"
        )
        # ... and for team_c's consumer that admits team_a, but whose team team_a's producer does not admit
        connection.exec_driver_sql(
            "INSERT INTO dataset_dag_run_queue (dataset_id, target_dag_id, created_at) "
            "SELECT id, dag_id, now() FROM dataset, (VALUES ('team_c:consume'), ('team_c:consume_glob')) AS c(dag_id) "
            "WHERE uri = 's3://shared/orders'"
        )

    by_producer = ("may not trigger team_c:consume_glob: no teams it may reach were recorded with the event: it "
                   "reaches team_a only [run]")  # a forged event: no consent recorded
    for line in (refusal, by_producer):
        deployment.wait_for(lambda: line in deployment.log_of("scheduler"), "the scheduler's refusal")
    deployment.wait_for(
        lambda: deployment.scalar(
            "SELECT count(*) FROM dataset_dag_run_queue WHERE target_dag_id LIKE 'team_c:%'") == 0,
        "the scheduler to drop the forged queue rows",
    )

    assert runs(deployment, "team_c:consume") == runs(deployment, "team_c:consume_glob") == []
    assert "Not creating a dataset-triggered run of team_c:consume" in deployment.log_of("scheduler")
    # written by the scheduler for each refused event on the dataset (this one, and any earlier one)
    assert ("team_a", "team_c") in {(r["team"], r["target_team"]) for r in refusals(deployment, "team_c:consume",
                                                                                     since=started)}


def test_an_api_event_is_produced_by_the_users_team(deployment):
    response = requests.post(f"{deployment.url}/api/v1/datasets/events", auth=("bob", "bob"), timeout=30,
                             json={"dataset_uri": "s3://shared/api"})

    assert response.status_code == 200, response.text
    assert deployment.scalar("SELECT s.source_teams::text FROM teams_dataset_event_source s JOIN dataset_event e "
                             "ON e.id = s.dataset_event_id JOIN dataset d ON d.id = e.dataset_id "
                             "WHERE d.uri = 's3://shared/api'") == '["team_b"]'
    assert deployment.wait_for_dag_run("team_b:consume_api") == "success"
    assert events_of_run(deployment, latest_run(deployment, "team_b:consume_api")) == [(None, '["team_b"]')]
    webserver_log = deployment.log_of("webserver")
    for dag_id in ("team_a:consume_api", "team_c:consume_api"):  # refused while the request was handled
        assert f"from team_b (API) may not trigger {dag_id}" in webserver_log
        assert runs(deployment, dag_id) == []


def test_an_api_event_by_a_user_without_team_is_team_less(deployment):
    deployment.create_user("nobody")

    response = requests.post(f"{deployment.url}/api/v1/datasets/events", auth=("nobody", "nobody"), timeout=30,
                             json={"dataset_uri": "s3://shared/orders"})

    assert response.status_code == 200
    assert response.json()["extra"] == {"from_rest_api": True}
    event = response.json()["id"]
    # The dataset manager refused every orders consumer (none allows '*') while handling the request.
    consumers = ("team_a:consume", "team_b:consume", "team_c:consume", "team_c:consume_glob")
    webserver_log = deployment.log_of("webserver")
    for dag_id in consumers:
        assert f"Dataset event {event} on s3://shared/orders from no team (API) may not trigger {dag_id}" in webserver_log
    moment = deployment.scalar("SELECT timestamp FROM dataset_event WHERE id = :e", e=event)
    for dag_id in consumers:
        assert queued_since(deployment, dag_id, moment) == 0
    assert deployment.rows("SELECT source_teams::text FROM teams_dataset_event_source "
                           "WHERE dataset_event_id = :e", e=event) == [("[]",)]


def test_direct_triggering_across_teams_needs_the_targets_permission(deployment):
    deployment.airflow("dags", "trigger", "team_a:trigger_b")
    deployment.airflow("dags", "trigger", "team_a:trigger_c")

    assert deployment.wait_for_dag_run("team_a:trigger_b") == "success"
    assert deployment.wait_for_dag_run("team_a:trigger_c") == "failed"
    assert len(runs(deployment, "team_b:target")) == 1
    assert runs(deployment, "team_c:target") == []
    log = deployment.task_logs("team_a:trigger_c")
    assert "TriggerDeniedError: Team 'team_a' may not trigger DAG 'team_c:target'" in log
    assert refusals(deployment, "team_c:target") == [{
        "team": "team_a", "target_team": "team_c", "object": "a run of team_c:target",
        "reason": "team_a is another team and the DAG sets no allow_triggering_by_teams"}]


def test_clearing_through_an_external_task_marker_needs_the_other_teams_permission(deployment):
    for dag_id in ("team_a:mark", "team_b:cleared", "team_c:cleared"):
        deployment.airflow("dags", "trigger", dag_id, "--run-id", "marked", "--exec-date", "2024-02-01T00:00:00+00:00")
        assert deployment.wait_for_dag_run(dag_id) == "success"

    def clear(task_id: str) -> requests.Response:
        body = {"dry_run": False, "task_ids": [task_id], "include_subdags": True, "only_failed": False,
                "reset_dag_runs": False}
        return requests.post(f"{deployment.url}/api/v1/dags/team_a:mark/clearTaskInstances", json=body,
                             auth=("alice", "alice"), timeout=30)

    allowed, refused = clear("to_b"), clear("to_c")

    assert allowed.status_code == 200, allowed.text
    cleared = {(ti["dag_id"], ti["task_id"]) for ti in allowed.json()["task_instances"]}
    assert cleared == {("team_a:mark", "to_b"), ("team_b:cleared", "noop")}
    assert refused.status_code == 403, refused.text
    assert ("ExternalTaskMarker 'to_c' of 'team_a:mark' may not clear tasks of 'team_c:cleared': team_a is another "
            "team and the DAG sets no allow_triggering_by_teams") in refused.json()["detail"]
    cli = deployment.airflow("tasks", "clear", "team_a:mark", "--task-regex", "^to_c$", "--yes", check=False)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr, cli.stderr
    assert cli.stderr.strip().splitlines()[-1].startswith(
        "ExternalTaskMarker 'to_c' of 'team_a:mark' may not clear tasks of 'team_c:cleared'"), cli.stderr
    states = deployment.rows("SELECT dag_id, task_id, state FROM task_instance WHERE task_id IN ('to_c', 'noop') "
                             "AND dag_id IN ('team_a:mark', 'team_c:cleared') ORDER BY dag_id")
    assert states == [("team_a:mark", "to_c", "success"), ("team_c:cleared", "noop", "success")]
    # Both refusals (REST API and CLI) are in team C's audit log; the clear that was allowed is not.
    assert [r["object"] for r in refusals(deployment, "team_c:cleared")] == ["ExternalTaskMarker to_c of team_a:mark"] * 2
    assert refusals(deployment, "team_b:cleared") == []


def test_the_dag_page_and_datasets_views_work_with_team_ids(deployment):
    session = deployment.login("bob", "bob")

    dag_page = session.get(f"{deployment.url}/dags/team_b:consume/grid")
    datasets = session.get(f"{deployment.url}/object/datasets_summary")
    next_run = session.get(f"{deployment.url}/object/next_run_datasets/team_b:consume")

    assert dag_page.status_code == 200 and "Triggerable by teams: team_a" in dag_page.text
    assert datasets.status_code == 200 and "s3://shared/orders" in datasets.text
    assert next_run.status_code == 200 and "s3://shared/orders" in next_run.text
    producer_page = deployment.login("alice", "alice").get(f"{deployment.url}/dags/team_a:produce/grid")
    assert producer_page.status_code == 200 and "Events consumable by teams: team_b" in producer_page.text


def dataset_references(deployment, user: str) -> tuple[set[str], set[str]]:
    """The consuming DAGs and producing tasks of s3://shared/orders that ``user`` sees in the REST API,
    the same in the dataset's own endpoint and in the list of datasets."""
    def references(dataset: dict) -> tuple[set[str], set[str]]:
        return ({d["dag_id"] for d in dataset["consuming_dags"]},
                {f"{t['dag_id']}.{t['task_id']}" for t in dataset["producing_tasks"]})

    response = requests.get(f"{deployment.url}/api/v1/datasets/s3%3A%2F%2Fshared%2Forders", auth=(user, user))
    listed = requests.get(f"{deployment.url}/api/v1/datasets?uri_pattern=orders", auth=(user, user))
    assert response.status_code == 200 and listed.status_code == 200, (response.text, listed.text)
    [in_list] = listed.json()["datasets"]
    assert references(in_list) == references(response.json())
    return references(response.json())


def test_shared_views_show_only_the_dags_the_user_may_read(deployment):
    assert dataset_references(deployment, "carol") == (
        {"team_a:consume", "team_b:consume", "team_c:consume", "team_c:consume_glob"}, {"team_a:produce.produce"})
    assert dataset_references(deployment, "bob") == ({"team_b:consume"}, set())

    def graphs(user: str) -> tuple[str, set[str]]:
        session = deployment.login(user, user)
        page = session.get(f"{deployment.url}/dag-dependencies")
        dataset_graph = session.get(f"{deployment.url}/object/dataset_dependencies")
        assert page.status_code == 200 and dataset_graph.status_code == 200
        return page.text, {node["id"] for node in dataset_graph.json()["nodes"]}

    carol_page, carol_nodes = graphs("carol")
    bob_page, bob_nodes = graphs("bob")

    # carol sees team A's trigger of team_b:target and every consumer; bob only team B's DAGs.
    assert "dag:team_a:trigger_b" in carol_page and "team_b:target" in carol_page
    assert {"dag:team_a:produce", "dag:team_c:consume", "dataset:s3://shared/orders"} <= carol_nodes
    assert "team_b:target" in bob_page
    assert "team_a:" not in bob_page and "team_c:" not in bob_page
    assert {"dag:team_b:consume", "dataset:s3://shared/orders"} <= bob_nodes
    assert {node for node in bob_nodes if node.startswith("dag:")} == {"dag:team_b:consume", "dag:team_b:consume_api"}


def test_dataset_events_are_listed_to_the_producers_team_and_the_teams_it_admits(deployment):
    """CVE-2026-75158 (dataset-events-readable-dags): an event is listed, and counted, only for users who may
    read its source DAG; in multi-team mode also for the teams its producer admits (team_a admits team_b:
    bob lists the event, without its producing task), not for the others (dave, team_c)."""
    deployment.airflow("dags", "trigger", "team_a:produce", "--run-id", "for_views")
    deployment.wait_for(lambda: deployment.scalar(
        "SELECT count(*) FROM dagrun_dataset_event de JOIN dataset_event e ON e.id = de.event_id "
        "WHERE e.source_run_id = 'for_views'") == 2, "the consumer runs of the event")
    event_id = deployment.scalar("SELECT id FROM dataset_event WHERE source_run_id = 'for_views'")

    def events(user: str) -> dict:
        response = requests.get(f"{deployment.url}/api/v1/datasets/events?limit=100", auth=(user, user))
        assert response.status_code == 200, response.text
        return response.json()

    carol, bob, dave = events("carol"), events("bob"), events("dave")

    [found] = [e for e in carol["dataset_events"] if e["id"] == event_id]
    assert (found["source_dag_id"], found["source_task_id"], found["source_run_id"]) == (
        "team_a:produce", "produce", "for_views")
    assert {run["dag_id"] for run in found["created_dagruns"]} == {"team_a:consume", "team_b:consume"}
    [admitted] = [e for e in bob["dataset_events"] if e["id"] == event_id]
    assert (admitted["source_dag_id"], admitted["source_run_id"]) == (None, None)  # team_a's DAG stays hidden
    assert [run["dag_id"] for run in admitted["created_dagruns"]] == ["team_b:consume"]
    assert event_id not in {e["id"] for e in dave["dataset_events"]}
    assert dave["total_entries"] == len(dave["dataset_events"]) < carol["total_entries"]
    # dave lists no event of team_a or team_b (the API hides their source DAGs: ask the database whose they are)
    of_other_teams = {row[0] for row in deployment.rows(
        "SELECT e.id FROM dataset_event e LEFT JOIN teams_dataset_event_source s ON s.dataset_event_id = e.id "
        "WHERE e.source_dag_id LIKE 'team\\_a:%' OR e.source_dag_id LIKE 'team\\_b:%' "
        "OR s.source_teams::text IN ('[\"team_a\"]', '[\"team_b\"]')")}
    assert event_id in of_other_teams and not {e["id"] for e in dave["dataset_events"]} & of_other_teams
    # an event bob posts through the API is team_b's: bob lists it, dave does not
    posted = requests.post(f"{deployment.url}/api/v1/datasets/events", auth=("bob", "bob"), timeout=30,
                           json={"dataset_uri": "s3://shared/api", "extra": {"secret": "of team_b"}})
    assert posted.status_code == 200, posted.text
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dagrun_dataset_event WHERE event_id = :e",
                                                  e=posted.json()["id"]) == 1, "team_b:consume_api's run of it")
    assert posted.json()["id"] in {e["id"] for e in events("bob")["dataset_events"]}
    assert posted.json()["id"] not in {e["id"] for e in events("dave")["dataset_events"]}
    # and dave lists his own (the positive signal that his list is not empty for another reason)
    own = requests.post(f"{deployment.url}/api/v1/datasets/events", auth=("dave", "dave"), timeout=30,
                        json={"dataset_uri": "s3://shared/notes"})  # triggers no DAG of the other tests
    assert own.status_code == 200, own.text
    assert own.json()["id"] in {e["id"] for e in events("dave")["dataset_events"]}


def test_the_datasets_page_counts_the_events_that_may_reach_the_users_teams(deployment):
    """The Datasets page's per-dataset count and last update, and a DAG's next-run dataset times, keep to the
    events the user lists (REST) and that may reach the DAG's team: not team_a's events that admit no team_c."""
    deployment.airflow("dags", "trigger", "team_a:produce", "--run-id", "for_counts")
    assert finished_run(deployment, "team_a:produce", "for_counts") == "success"
    not_for_team_c = {row[0] for row in deployment.rows(
        "SELECT e.timestamp FROM dataset_event e JOIN dataset d ON d.id = e.dataset_id "
        "WHERE d.uri = 's3://shared/orders' AND e.source_dag_id LIKE 'team\\_a:%'")}

    def summary(user: str) -> dict:
        page = deployment.login(user, user).get(f"{deployment.url}/object/datasets_summary",
                                                params={"uri_pattern": "shared/orders"})
        assert page.status_code == 200, page.text
        [orders] = page.json()["datasets"]
        return orders

    def listed(user: str) -> int:
        response = requests.get(f"{deployment.url}/api/v1/datasets/events", auth=(user, user), timeout=30,
                                params={"limit": 1, "dataset_id": summary("carol")["id"]})
        return response.json()["total_entries"]

    for user in ("carol", "bob", "dave"):
        assert summary(user)["total_updates"] == listed(user), user
    assert summary("dave")["total_updates"] < summary("carol")["total_updates"]  # carol counts every event
    next_run = deployment.login("dave", "dave").get(f"{deployment.url}/object/next_run_datasets/team_c:consume")
    assert next_run.status_code == 200, next_run.text
    [orders] = [event for event in next_run.json()["events"] if event["uri"] == "s3://shared/orders"]
    assert orders["lastUpdate"] is None or pendulum.parse(orders["lastUpdate"]) not in not_for_team_c
    assert pendulum.parse(summary("carol")["last_dataset_update"]) in not_for_team_c  # the newest is team_a's


def test_a_tasks_inlet_events_are_those_that_may_reach_its_team(deployment):
    """inlet_events reads events from the database: without isolation a task's team sees the events of its team
    and those their producers admitted it to (team_a admits team_b, not team_c). With isolation a task has no
    database to read them from."""
    if deployment.isolated:
        pytest.skip("with database isolation a task reads no inlet events (no database session)")
    deployment.airflow("dags", "trigger", "team_a:produce", "--run-id", "for_inlets")
    assert finished_run(deployment, "team_a:produce", "for_inlets") == "success"
    event_id = deployment.scalar("SELECT id FROM dataset_event WHERE source_run_id = 'for_inlets'")
    listed = {}
    for team in ("team_b", "team_c"):
        deployment.airflow("dags", "trigger", f"{team}:read_inlets", "--run-id", "inlets")
        assert finished_run(deployment, f"{team}:read_inlets", "inlets") == "success"
        [line] = [line for line in deployment.task_logs(f"{team}:read_inlets").splitlines() if "INLET EVENTS [" in line]
        listed[team] = set(json.loads(line.split("INLET EVENTS ", 1)[1]))

    assert event_id in listed["team_b"]
    of_team_a = {row[0] for row in deployment.rows(
        "SELECT e.id FROM dataset_event e JOIN dataset d ON d.id = e.dataset_id WHERE d.uri = 's3://shared/orders' "
        "AND e.source_dag_id LIKE 'team\\_a:%'")}
    assert event_id in of_team_a and not listed["team_c"] & of_team_a, listed


def test_without_multi_team_dataset_scheduling_is_unchanged(make_deployment):
    deployment = make_deployment()
    deployment.write_dag(None, "datasets.py", """
        import pendulum
        from airflow import DAG
        from airflow.datasets import Dataset
        from airflow.operators.empty import EmptyOperator

        with DAG("produce", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
            EmptyOperator(task_id="produce", outlets=[Dataset("s3://shared/orders")])

        with DAG("consume", schedule=[Dataset("s3://shared/orders")], start_date=pendulum.datetime(2024, 1, 1),
                 allow_triggering_by_teams=["nobody"]):
            EmptyOperator(task_id="consume")
    """)
    deployment.migrate()
    deployment.start("dag-processor", "dag-processor")
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 2, "the DAGs")

    deployment.airflow("dags", "trigger", "produce")

    assert deployment.wait_for_dag_run("consume") == "success"
    assert deployment.rows("SELECT source_dag_id FROM dataset_event") == [("produce",)]
    # multi_team off: the database is upstream's, without the fork's tables
    assert deployment.rows("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'teams_%' "
                           "OR table_name = 'alembic_version_teams'") == []
