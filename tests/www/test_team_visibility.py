"""Team visibility with FabTeamRolesAuthManager in a real webserver: a user sees and acts on the DAGs of
its teams only (roles ``team:<team or glob>``), in the REST API and in the UI (patch teams-ui-visibility).
Users: alice (User, team:team_a), bob (User, team:team_b), carol (Admin, team:*), dave (User, no team),
erin (Admin, team:team_a), frank (Admin, no team), gina (Op, team:team_b)."""

from __future__ import annotations

import json

import pytest
import requests

from tests.test_utils.deployment import local_executors

pytestmark = pytest.mark.e2e

AUTH_MANAGER = "airflow.teams.fab_auth_manager.FabTeamRolesAuthManager"
DAG = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="noop")
"""
# team_b's private DAG: its tag, its datasets and its events must not show to other teams' users.
B_PRIVATE = """
    import pendulum
    from airflow import DAG
    from airflow.datasets import Dataset
    from airflow.operators.empty import EmptyOperator

    with DAG("private", schedule=[Dataset("s3://b/only")], start_date=pendulum.datetime(2024, 1, 1),
             tags=["team_b_secret_tag"]):
        EmptyOperator(task_id="produce", outlets=[Dataset("s3://shared/b_out")])
"""
A_READS = """
    import pendulum
    from airflow import DAG
    from airflow.datasets import Dataset
    from airflow.operators.empty import EmptyOperator

    with DAG("reads", schedule=[Dataset("s3://shared/b_out")], start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="noop")
"""
USERS = {"alice": ("User", "team:team_a"), "bob": ("User", "team:team_b"), "carol": ("Admin", "team:*"),
         "dave": ("User", None), "erin": ("Admin", "team:team_a"), "frank": ("Admin", None),
         "gina": ("Op", "team:team_b")}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server):
    from tests.test_utils.deployment import Deployment

    root = tmp_path_factory.mktemp("visibility")
    database = postgres_server.create_database(f"e2e_visibility_{root.name.replace('-', '_')}")
    deployment = Deployment(root, database, local_executors("team_a", "team_b"), core__auth_manager=AUTH_MANAGER,
                            api__auth_backends="airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
                            webserver__workers="1")
    for team in ("team_a", "team_b"):
        deployment.write_dag(team, "etl.py", DAG)
        deployment.write_dag(team, f"broken_{team}.py", "from airflow import DAG\nraise RuntimeError('broken on purpose')\n")
    deployment.write_dag("team_b", "private.py", B_PRIVATE)
    deployment.write_dag("team_a", "reads.py", A_READS)
    deployment.migrate()
    deployment.rows("INSERT INTO slot_pool (pool, slots, description, include_deferred) VALUES "
                    "('team_a:a_pool', 3, 'a', false), ('team_b:b_secret_pool', 3, 'b', false), "
                    "('shared_pool', 3, 'shared', false) RETURNING pool")
    deployment.airflow("sync-perm")  # creates the default roles (User, Viewer, ...)
    for role in ("team:team_a", "team:team_b", "team:*"):
        deployment.airflow("roles", "create", role)
    for user, (role, team_role) in USERS.items():
        deployment.create_user(user, role)
        if team_role:
            deployment.airflow("users", "add-role", "--username", user, "--role", team_role)
    for team in ("team_a", "team_b"):
        deployment.start(f"dag-processor-{team}", "dag-processor", "--team", team)
    deployment.start_webserver()
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 4
                        and deployment.scalar("SELECT count(*) FROM import_error") == 2, "DAGs and import errors")
    deployment.wait_for_webserver()
    yield deployment
    deployment.stop_all()


def api(deployment, user: str, path: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, f"{deployment.url}/api/v1{path}", auth=(user, user), timeout=30, **kwargs)


def listed_dags(deployment, user: str) -> list[str]:
    response = api(deployment, user, "/dags")
    assert response.status_code == 200, response.text
    return sorted(dag["dag_id"] for dag in response.json()["dags"])


def test_the_rest_api_lists_only_the_users_teams_dags(deployment):
    assert listed_dags(deployment, "alice") == ["team_a:etl", "team_a:reads"]
    assert listed_dags(deployment, "bob") == ["team_b:etl", "team_b:private"]
    assert listed_dags(deployment, "carol") == ["team_a:etl", "team_a:reads", "team_b:etl", "team_b:private"]
    # As upstream for a user without any readable DAG: the list itself is refused.
    assert api(deployment, "dave", "/dags").status_code == 403


def test_another_teams_dag_cannot_be_read_or_triggered(deployment):
    assert api(deployment, "alice", "/dags/team_b:etl").status_code == 403
    assert api(deployment, "alice", "/dags/team_b:etl/dagRuns").status_code == 403
    refused = api(deployment, "alice", "/dags/team_b:etl/dagRuns", "POST", json={"dag_run_id": "by_alice"})
    allowed = api(deployment, "bob", "/dags/team_b:etl/dagRuns", "POST", json={"dag_run_id": "by_bob"})

    assert refused.status_code == 403
    assert allowed.status_code == 200, allowed.text
    runs = {run_id for (run_id,) in deployment.rows("SELECT run_id FROM dag_run WHERE dag_id = 'team_b:etl'")}
    assert "by_bob" in runs and "by_alice" not in runs
    assert api(deployment, "bob", "/dags/team_b:etl").status_code == 200
    assert api(deployment, "alice", "/dags/team_b:etl/dagRuns/by_bob/taskInstances").status_code == 403
    assert api(deployment, "bob", "/dags/team_b:etl/dagRuns/by_bob/taskInstances").status_code == 200
    clear = {"dry_run": True, "reset_dag_runs": False, "only_failed": False}
    assert api(deployment, "alice", "/dags/team_b:etl/clearTaskInstances", "POST", json=clear).status_code == 403
    assert api(deployment, "bob", "/dags/team_b:etl/clearTaskInstances", "POST", json=clear).status_code == 200
    assert api(deployment, "carol", "/dags/team_b:etl/dagRuns").json()["total_entries"] == len(runs)


def test_import_errors_of_other_teams_stay_hidden(deployment):
    def files(user: str) -> set[str]:
        response = api(deployment, user, "/importErrors")
        assert response.status_code == 200, response.text
        return {error["filename"].rsplit("/", 1)[-1] for error in response.json()["import_errors"]}

    assert files("carol") == {"broken_team_a.py", "broken_team_b.py"}
    # a file that never produced a DAG: its folder names its team
    assert files("alice") == {"broken_team_a.py"}
    assert files("bob") == {"broken_team_b.py"}
    error_id = {name: deployment.scalar("SELECT id FROM import_error WHERE filename LIKE :f", f=f"%/{name}")
                for name in ("broken_team_a.py", "broken_team_b.py")}
    own = api(deployment, "alice", f"/importErrors/{error_id['broken_team_a.py']}")
    assert own.status_code == 200 and "broken on purpose" in own.json()["stack_trace"]
    assert api(deployment, "alice", f"/importErrors/{error_id['broken_team_b.py']}").status_code == 403
    home = deployment.login("alice", "alice").get(f"{deployment.url}/home").text
    assert "broken_team_a.py" in home and "broken_team_b.py" not in home


def test_the_ui_shows_only_the_users_teams(deployment):
    alice = deployment.login("alice", "alice")

    home = alice.get(f"{deployment.url}/home")
    runs = alice.get(f"{deployment.url}/dagrun/list/")
    instances = alice.get(f"{deployment.url}/taskinstance/list/")
    own_grid = alice.get(f"{deployment.url}/dags/team_a:etl/grid")
    other_grid = alice.get(f"{deployment.url}/dags/team_b:etl/grid", allow_redirects=False)
    other_data = alice.get(f"{deployment.url}/object/grid_data", params={"dag_id": "team_b:etl"},
                           allow_redirects=False)

    assert home.status_code == 200 and "team_a:etl" in home.text
    assert "team_b:etl" not in home.text and "broken_team_b.py" not in home.text
    assert runs.status_code == 200 and "team_b:etl" not in runs.text
    assert instances.status_code == 200 and "team_b:etl" not in instances.text
    assert own_grid.status_code == 200
    assert other_grid.status_code in (302, 403) and "team_b:etl" not in other_grid.headers.get("Location", "")
    assert other_data.status_code in (302, 403)
    carol_home = deployment.login("carol", "carol").get(f"{deployment.url}/home").text
    assert "team_a:etl" in carol_home and "team_b:etl" in carol_home and "broken_team_b.py" in carol_home


def test_audit_log_events_of_another_team_stay_hidden(deployment):
    triggered = api(deployment, "bob", "/dags/team_b:etl/dagRuns", "POST",
                    json={"dag_run_id": "audited", "conf": {"b_conf": "bob's secret"}})
    assert triggered.status_code == 200, triggered.text
    own = api(deployment, "erin", "/dags/team_a:etl/dagRuns", "POST", json={"dag_run_id": "audited_a"})
    assert own.status_code == 200, own.text
    event_id = deployment.wait_for(lambda: deployment.scalar(
        "SELECT id FROM log WHERE dag_id = 'team_b:etl' AND extra LIKE '%b_conf%' ORDER BY id DESC LIMIT 1"),
        "the audit log event of bob's trigger")

    def events(user: str) -> requests.Response:
        return api(deployment, user, "/eventLogs", params={"limit": 1000, "order_by": "-event_log_id"})

    assert "b_conf" in events("carol").text  # team:* reads every team's events
    assert api(deployment, "carol", f"/eventLogs/{event_id}").status_code == 200
    for user in ("alice", "erin", "frank"):  # team_a's user, team_a's admin, an admin of no team
        listed = events(user)
        assert listed.status_code in (200, 403), listed.text
        assert "team_b:" not in listed.text and "b_conf" not in listed.text, user
        assert api(deployment, user, f"/eventLogs/{event_id}").status_code in (403, 404), user
    for user in ("alice", "erin"):  # a team's members read its audit log, whatever their role
        assert {event["dag_id"] for event in events(user).json()["event_logs"]} <= {"team_a:etl", "team_a:reads"}
        assert "team_a:etl" in {event["dag_id"] for event in events(user).json()["event_logs"]}, user
    assert events("dave").status_code == 403  # a user of no team: upstream's permission (User has none)


def test_a_team_reads_in_its_audit_log_why_another_teams_event_did_not_trigger_its_dag(deployment):
    """gina (team_b) posts an event on the dataset team_a:reads consumes; team_a:reads admits no other team."""
    posted = api(deployment, "gina", "/datasets/events", "POST", json={"dataset_uri": "s3://shared/b_out"})
    assert posted.status_code == 200, posted.text
    event_id = posted.json()["id"]

    def refusals(user: str) -> requests.Response:
        return api(deployment, user, "/eventLogs", params={"dag_id": "team_a:reads", "event": "teams.trigger_denied"})

    listed = refusals("alice")  # what the DAG's Audit Log tab shows her
    assert listed.status_code == 200, listed.text
    (row,) = [event for event in listed.json()["event_logs"] if f'"dataset event {event_id} ' in event["extra"]]
    reason = "team_b is another team and the DAG sets no allow_triggering_by_teams"
    assert json.loads(row["extra"]) == {
        "team": "team_b", "target_team": "team_a", "object": f"dataset event {event_id} on s3://shared/b_out",
        "reason": reason, "dataset_event_id": event_id, "dataset_uri": "s3://shared/b_out", "stage": "queue",
        "producer_team": "team_b", "consumer_dag_id": "team_a:reads", "refused_by": "consumer"}
    assert deployment.scalar("SELECT count(*) FROM dag_run WHERE dag_id = 'team_a:reads'") == 0
    for user in ("bob", "gina"):  # team_b's users do not read team_a's audit log
        assert refusals(user).status_code == 403, user
    alice = deployment.login("alice", "alice")
    page = alice.get(f"{deployment.url}/log/list/", params={"_flt_0_event": "teams.trigger_denied"})
    assert page.status_code == 200 and f"dataset event {event_id} on s3://shared/b_out" in page.text
    assert "team_b:" not in page.text
    assert 'href="/log/list/' in alice.get(f"{deployment.url}/home").text  # Browse > Audit Logs is in her navbar

    # the Datasets page lists the refused event, for the consuming team only
    (refused,) = datasets_page_refusals(alice, deployment, event_id)
    assert refused == [str(event_id), "s3://shared/b_out", "team_b", "team_a:reads", "consumer", reason]
    for user in ("bob", "gina", "carol"):  # carol (team:*) picks team_b: team_a's refusals leave her page
        session = deployment.login(user, user)
        if user == "carol":
            assert datasets_page_refusals(session, deployment, event_id)  # all her teams: she reads them
            session.get(f"{deployment.url}/teams/select", params={"team": "team_b"})
        page = session.get(f"{deployment.url}/datasets")
        assert page.status_code == 200 and "team_a:reads" not in page.text, user
        assert datasets_page_refusals(session, deployment, event_id) == [], user


def datasets_page_refusals(session: requests.Session, deployment, event_id: int) -> list[list[str]]:
    """The cells (but the time) of the Datasets page's refusal rows for one event."""
    import re

    page = session.get(f"{deployment.url}/datasets")
    assert page.status_code == 200, page.text
    rows = re.findall(rf'<tr data-event-id="{event_id}">(.*?)</tr>', page.text, re.S)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)][1:]
            for row in rows]


def test_another_teams_datasets_tags_and_dependencies_stay_hidden(deployment):
    def datasets_of(user: str, dag_id: str) -> list[str]:
        response = api(deployment, user, "/datasets", params={"dag_ids": dag_id})
        assert response.status_code == 200, response.text
        return sorted(dataset["uri"] for dataset in response.json()["datasets"])

    alice, bob = deployment.login("alice", "alice"), deployment.login("bob", "bob")
    alice_graph = alice.get(f"{deployment.url}/object/dataset_dependencies")
    bob_graph = bob.get(f"{deployment.url}/object/dataset_dependencies").json()
    alice_dependencies = alice.get(f"{deployment.url}/dag-dependencies")

    assert datasets_of("alice", "team_b:private") == []  # no existence or lineage oracle
    assert datasets_of("bob", "team_b:private") == ["s3://b/only", "s3://shared/b_out"]
    assert "team_b_secret_tag" not in alice.get(f"{deployment.url}/home").text
    assert "team_b_secret_tag" in bob.get(f"{deployment.url}/home").text
    assert alice_graph.status_code == 200 and "team_b" not in alice_graph.text
    assert "s3://shared/b_out" in alice_graph.text  # shared, and team_a's DAG consumes it
    # every edge joins two nodes: a team's DAG id (with its ':') is a DAG node
    node_ids = {node["id"] for node in bob_graph["nodes"]}
    assert {"dag:team_b:private", "dataset:s3://shared/b_out"} <= node_ids
    assert all(edge["source"] in node_ids and edge["target"] in node_ids for edge in bob_graph["edges"])
    assert alice_dependencies.status_code == 200
    assert "team_b" not in alice_dependencies.text and "s3://b/only" not in alice_dependencies.text


def test_each_user_sees_and_manages_its_teams_pools_and_the_shared_ones(deployment):
    def pools(user: str) -> tuple[set[str], int]:
        response = api(deployment, user, "/pools")
        assert response.status_code == 200, response.text
        return {pool["name"] for pool in response.json()["pools"]}, response.json()["total_entries"]

    shared = {"default_pool", "shared_pool"}
    assert pools("erin") == (shared | {"team_a:a_pool"}, 3)
    assert pools("carol") == (shared | {"team_a:a_pool", "team_b:b_secret_pool"}, 4)
    other = "/pools/team_b:b_secret_pool"
    assert api(deployment, "erin", other).status_code == 404
    assert api(deployment, "erin", other, "PATCH", json={"name": "team_b:b_secret_pool", "slots": 0}).status_code == 404
    assert api(deployment, "erin", other, "DELETE").status_code == 404
    created = api(deployment, "erin", "/pools", "POST", json={"name": "team_b:planted", "slots": 1})
    renamed = api(deployment, "erin", "/pools/team_a:a_pool", "PATCH", json={"name": "team_b:moved", "slots": 3})
    assert (created.status_code, renamed.status_code) == (403, 403)
    assert "Pool 'team_b:planted' would belong to team 'team_b'" in created.json()["detail"]
    assert deployment.rows("SELECT pool, slots FROM slot_pool WHERE pool LIKE 'team_%' ORDER BY pool") == [
        ("team_a:a_pool", 3), ("team_b:b_secret_pool", 3)]
    erin_page = deployment.login("erin", "erin").get(f"{deployment.url}/pool/list/")
    carol_page = deployment.login("carol", "carol").get(f"{deployment.url}/pool/list/")
    assert erin_page.status_code == 200 and "team_a:a_pool" in erin_page.text
    assert "team_b:b_secret_pool" not in erin_page.text and "team_b:b_secret_pool" in carol_page.text


def test_the_team_filter_narrows_a_users_lists_to_one_of_its_teams_and_never_grants(deployment):
    def dag_ids(user: str, path: str, key: str, **params) -> set[str]:
        response = api(deployment, user, path, params=params)
        assert response.status_code == 200, response.text
        return {item["dag_id"] for item in response.json()[key]}

    for dag_id in ("team_a:etl", "team_b:etl"):
        created = api(deployment, "carol", f"/dags/{dag_id}/dagRuns", "POST", json={"dag_run_id": "for_the_filter"})
        assert created.status_code == 200, created.text

    assert dag_ids("carol", "/dags", "dags", team="team_a") == {"team_a:etl", "team_a:reads"}
    assert dag_ids("carol", "/dags/~/dagRuns", "dag_runs", team="team_b") == {"team_b:etl"}
    assert dag_ids("carol", "/dags/~/dagRuns", "dag_runs") >= {"team_a:etl", "team_b:etl"}
    team_a_events = dag_ids("carol", "/eventLogs", "event_logs", team="team_a")
    assert "team_a:etl" in team_a_events and team_a_events <= {"team_a:etl", "team_a:reads"}  # carol's trigger
    assert api(deployment, "alice", "/dags", params={"team": "team_b"}).status_code == 403  # nothing readable
    spec = requests.get(f"{deployment.url}/api/v1/openapi.yaml", timeout=30).text
    assert "name: team" in spec.split("FilterTeam:")[1][:600]  # documented in the OpenAPI document


def test_a_user_of_several_teams_switches_the_ui_to_one_team_without_logging_in_again(deployment):
    carol, alice = deployment.login("carol", "carol"), deployment.login("alice", "alice")
    assert 'id="teams-switcher"' not in alice.get(f"{deployment.url}/home").text  # one team: no switcher

    home = carol.get(f"{deployment.url}/home").text
    assert 'id="teams-switcher"' in home and "team_a:etl" in home and "team_b:etl" in home
    assert 'data-team-badge="team_a"' in home and 'data-team-badge="team_b"' in home  # each DAG's team
    switched = carol.get(f"{deployment.url}/teams/select", params={"team": "team_b", "next": "/home"})
    assert switched.status_code == 200 and switched.url.endswith("/home")
    assert "team_b:etl" in switched.text and "team_a:etl" not in switched.text
    assert "team_a:etl" not in carol.get(f"{deployment.url}/dagrun/list/").text  # remembered across pages
    assert carol.get(f"{deployment.url}/dags/team_a:etl/grid").status_code == 200  # narrows, never revokes
    # The Pools view, and the UI's own REST calls (Cluster Activity's DAG count, Datasets), follow the switch;
    # a REST client without the UI's session does not.
    pools = carol.get(f"{deployment.url}/pool/list/").text
    assert "team_b:b_secret_pool" in pools and "shared_pool" in pools and "team_a:a_pool" not in pools
    by_the_ui = carol.get(f"{deployment.url}/api/v1/dags", params={"only_active": "true"})
    assert by_the_ui.status_code == 200 and {d["dag_id"] for d in by_the_ui.json()["dags"]} == {
        "team_b:etl", "team_b:private"}
    assert {p["name"] for p in carol.get(f"{deployment.url}/api/v1/pools").json()["pools"]} >= {"team_b:b_secret_pool"}
    assert "team_a:a_pool" not in carol.get(f"{deployment.url}/api/v1/pools").text
    assert "team_a:etl" in {d["dag_id"] for d in api(deployment, "carol", "/dags").json()["dags"]}
    assert alice.get(f"{deployment.url}/teams/select", params={"team": "team_b"}).status_code == 400
    everything = carol.get(f"{deployment.url}/teams/select", params={"next": "https://evil.example/"})
    assert everything.url == f"{deployment.url}/home" and "team_a:etl" in everything.text


def test_dataset_events_triggers_and_cluster_activity_of_another_team_stay_hidden(deployment):
    dataset_id = deployment.scalar("SELECT id FROM dataset WHERE uri = 's3://shared/b_out'")
    deployment.rows("INSERT INTO dataset_event (dataset_id, extra, source_dag_id, source_task_id, source_run_id, "
                    "source_map_index, timestamp) VALUES (:d, '{}', 'team_b:private', 'produce', 'b_secret_run', -1, "
                    "now()) RETURNING id", d=dataset_id)
    for user, dag_id in (("bob", "team_b:etl"), ("erin", "team_a:etl")):
        run = api(deployment, user, f"/dags/{dag_id}/dagRuns", "POST", json={"dag_run_id": "started"})
        assert run.status_code == 200, run.text
    deployment.rows("UPDATE dag_run SET start_date = now() WHERE run_id = 'started' RETURNING dag_id")
    trigger = deployment.scalar("INSERT INTO trigger (classpath, kwargs, created_date) VALUES "
                                "('team_b_secret.Trigger', '{}', now()) RETURNING id")
    deployment.rows("UPDATE task_instance SET trigger_id = :t WHERE dag_id = 'team_b:etl' AND run_id = 'started' "
                    "RETURNING task_id", t=trigger)

    def events(user: str, **params) -> int:
        response = api(deployment, user, "/datasets/events", params=params)
        assert response.status_code == 200, response.text
        return response.json()["total_entries"]

    def runs_counted(user: str) -> int:
        response = deployment.login(user, user).get(f"{deployment.url}/object/historical_metrics_data", params={
            "start_date": "2000-01-01T00:00:00+00:00", "end_date": "2100-01-01T00:00:00+00:00"})
        assert response.status_code == 200, response.text
        return sum(response.json()["dag_run_states"].values())

    for params in ({"source_dag_id": "team_b:private"}, {"source_run_id": "b_secret_run"}):
        assert (events("erin", **params), events("carol", **params)) == (0, 1), params
    erin_triggers = deployment.login("erin", "erin").get(f"{deployment.url}/triggerview/list/")
    carol_triggers = deployment.login("carol", "carol").get(f"{deployment.url}/triggerview/list/")
    assert erin_triggers.status_code == 200 and "team_b_secret.Trigger" not in erin_triggers.text
    assert "team_b_secret.Trigger" in carol_triggers.text
    started = "SELECT count(*) FROM dag_run WHERE start_date IS NOT NULL"
    assert runs_counted("erin") == deployment.scalar(started + " AND dag_id LIKE 'team_a:%'") >= 1
    assert runs_counted("carol") == deployment.scalar(started) > runs_counted("erin")


def test_team_roles_change_nothing_without_multi_team(make_deployment):
    deployment = make_deployment(None, core__auth_manager=AUTH_MANAGER,
                                 api__auth_backends="airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
                            webserver__workers="1")
    deployment.write_dag(None, "etl.py", DAG)
    deployment.migrate()
    deployment.airflow("sync-perm")
    deployment.airflow("dags", "reserialize")
    deployment.airflow("roles", "create", "team:team_a")
    deployment.create_user("alice", "User")
    deployment.airflow("users", "add-role", "--username", "alice", "--role", "team:team_a")
    deployment.start_webserver()
    deployment.wait_for_webserver()

    assert listed_dags(deployment, "alice") == ["etl"]
    assert api(deployment, "alice", "/dags/etl").status_code == 200
