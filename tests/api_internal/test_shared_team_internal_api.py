"""``airflow internal-api --teams team_a,team_b`` on real processes (patch teams-internal-api-shared-server):
one parent builds the app once and forks each team's own gunicorn, on the port of the team's URL, with the
team's key, policies and log; a team's server that dies is restarted alone. The calls are hand-made HTTP
requests and PyJWT tokens, as in test_team_internal_apis.py (whose deployment runs one command per team)."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from tests.api_internal.test_team_internal_apis import key, post, serialize, token, url
from tests.test_utils.deployment import Deployment, local_executors

pytestmark = pytest.mark.e2e

METHOD = "airflow.models.dag.DagModel.get_current"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server):
    root = tmp_path_factory.mktemp("shared-internal-api")
    database = postgres_server.create_database(f"e2e_shared_api_{root.name.replace('-', '_')}")
    deployment = Deployment(root, database, local_executors("team_a", "team_b"))
    deployment.migrate()
    deployment.isolate(shared=True)
    yield deployment
    deployment.stop_all()


def get_current(deployment: Deployment, server: str, signer: str, dag_team: str):
    """Ask ``server``'s internal API for DAG ``<dag_team>:etl`` with a token of ``signer``."""
    signed = token(key(deployment, signer), method=METHOD, team=signer)
    body = {"jsonrpc": "2.0", "method": METHOD, "params": serialize({"dag_id": f"{dag_team}:etl"})}
    return post(url(deployment, server), body, signed)


def team_masters(deployment: Deployment) -> dict[str, psutil.Process]:
    """Each team's gunicorn master: a child of the ``internal-api --teams`` parent, by its team's pid file."""
    children = {child.pid: child for child in psutil.Process(deployment.processes["internal-api"].pid).children()}
    pids = {team: int((deployment.home / f"airflow-internal-api-{team}.pid").read_text()) for team in ("team_a", "team_b")}
    assert set(pids.values()) == set(children), (pids, children)
    return {team: children[pid] for team, pid in pids.items()}


def test_each_team_is_served_by_its_own_server_with_its_own_key_and_log(deployment):
    for team in ("team_a", "team_b"):
        own = get_current(deployment, team, team, team)
        assert own.status_code == 200, own.text
    masters = team_masters(deployment)
    assert masters["team_a"].pid != masters["team_b"].pid
    assert all(len(master.children()) == 1 for master in masters.values())  # one worker each

    crossed = get_current(deployment, "team_b", "team_a", "team_b")  # team_a's token at team_b's server
    named = get_current(deployment, "team_a", "team_a", "team_b")  # team_a's server asked for team_b's DAG

    assert crossed.status_code == 403 and crossed.json()["team"] == "team_b", crossed.text
    assert "not one signed with the key of team 'team_b'" in crossed.json()["detail"]
    assert named.status_code == 403 and "team_b:etl" in named.json()["detail"], named.text
    # each refusal is in the log of the team whose server refused it, and only there
    assert f"Refused internal API call {METHOD} for team team_b" in deployment.log_of("internal-api-team_b")
    assert "team_b:etl" in deployment.log_of("internal-api-team_a")
    assert "team_b:etl" not in deployment.log_of("internal-api-team_b")


def test_a_team_server_that_dies_is_restarted_and_the_other_team_does_not_notice(deployment):
    masters = team_masters(deployment)
    dead = [masters["team_a"], *masters["team_a"].children()]
    for process in dead:
        os.kill(process.pid, signal.SIGKILL)
    psutil.wait_procs(dead, timeout=30)

    assert get_current(deployment, "team_b", "team_b", "team_b").status_code == 200
    deployment.wait_for(lambda: "The internal API of team team_a was killed by signal 9; restarting it in 1 s"
                        in deployment.log_of("internal-api"), "the parent's line about team_a's server")
    deployment.wait_for(lambda: get_current(deployment, "team_a", "team_a", "team_a").status_code == 200
                        if team_masters(deployment)["team_a"].pid != masters["team_a"].pid else False,
                        "team_a's new server", timeout=120)
    assert team_masters(deployment)["team_b"].pid == masters["team_b"].pid


@pytest.mark.parametrize(("arguments", "line"), [
    (("--teams", "team_a,nobody"), "airflow internal-api --teams: 'nobody' is not a configured team. "
                                   "Configured teams: team_a, team_b."),
    (("--teams", "team_a", "--team", "team_a"),
     "airflow internal-api takes --team (one team) or --teams (several), not both."),
    (("--teams", "team_a,team_a"), "airflow internal-api --teams names a team twice: 'team_a,team_a'."),
], ids=["unknown-team", "team-and-teams", "twice"])
def test_wrong_teams_stop_the_command_in_one_line(deployment, arguments, line):
    result = deployment.airflow("internal-api", *arguments, check=False, timeout=120)

    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback (most recent call last)" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1] == line
