"""``./breeze start-airflow`` end to end: the launcher (``python -m teams_breeze.start_airflow``, which is what
``./breeze start-airflow`` execs after its setup step) starts PostgreSQL and the four components, runs
``dev/dags/example_teams_hello.py`` through the REST API, serves the UI, refuses a second launcher on the
same AIRFLOW_HOME, and on Ctrl-C exits 0 leaving no process behind."""

from __future__ import annotations

import json
import os
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

from teams_breeze.services import PostgresServer, free_port, poll, stop_process_group
from teams_breeze.start_airflow import STATE_FILE, _port_is_free, _proc_stat, group_alive

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

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}/api/v1{path}", auth=AUTH, timeout=30, **kwargs)

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

    def start(name: str = "first", home: Path | None = None, options: tuple[str, ...] = ()) -> Launcher:
        run_dir = world_searchable_dir / name
        run_dir.mkdir()
        launcher = Launcher(home or run_dir / "home", free_port(), *options)
        launchers.append(launcher)
        return launcher

    yield start
    for launcher in reversed(launchers):
        launcher.kill()


@pytest.mark.timeout(900)
def test_start_airflow_runs_the_example_dag_and_stops_cleanly_on_ctrl_c(start_launcher):
    started = time.monotonic()
    airflow = start_launcher()
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


@pytest.mark.timeout(900)
def test_start_airflow_with_teams_and_db_isolation_runs_each_teams_example_dag(start_launcher):
    airflow = start_launcher(options=("--teams", "team_a,team_b", "--db-isolation"))
    airflow.wait_for(lambda: "is running" in airflow.output(), "the banner", timeout=360)
    output = airflow.output()
    assert "is running (teams: team_a, team_b, database access isolation)" in output
    team_dags = airflow.home / "team-dags"
    assert f"DAG folder:  {team_dags} (one folder per team: team_a, team_b)" in output
    state = json.loads((airflow.home / STATE_FILE).read_text())
    assert set(state["groups"]) == {"internal-api-team_a", "internal-api-team_b", "scheduler", "webserver",
                                    "dag-processor-team_a", "dag-processor-team_b", "triggerer-team_a",
                                    "triggerer-team_b"}
    # The team components hold no database credentials (PostgreSQL's password is not in their environment)
    # and only their own team's internal API URL and key.
    password = (airflow.home / "postgres.password").read_text().strip()
    for team, other in (("team_a", "team_b"), ("team_b", "team_a")):
        for component in (f"dag-processor-{team}", f"triggerer-{team}", f"internal-api-{team}"):
            variables = Path(f"/proc/{state['groups'][component]}/environ").read_bytes().split(b"\0")
            names = {variable.split(b"=")[0].decode() for variable in variables}
            assert f"AIRFLOW__{team.upper()}___CORE__INTERNAL_API_SECRET_KEY" in names, component
            assert not [name for name in names if name.startswith(f"AIRFLOW__{other.upper()}___")], component
            if not component.startswith("internal-api"):
                assert b"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=none://" in variables, component
                assert password.encode() not in b"\0".join(variables), component

    for team in ("team_a", "team_b"):
        assert (team_dags / team / "example_teams_hello.py").is_file()
        assert trigger_and_wait(airflow, f"{team}:{DAG_ID}")[1] == "success", airflow.diagnostics()
    listed = airflow.api("GET", "/dags").json()["dags"]
    assert sorted(d["dag_id"] for d in listed) == [f"team_a:{DAG_ID}", f"team_b:{DAG_ID}"]

    airflow.process.send_signal(signal.SIGINT)
    assert airflow.process.wait(60) == 0, airflow.diagnostics()
    assert not [name for name, pgid in state["groups"].items() if group_alive(pgid)]


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
