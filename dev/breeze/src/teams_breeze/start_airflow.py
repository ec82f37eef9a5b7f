"""``./breeze start-airflow``: run Airflow from the patched build on localhost, single- or multi-team.

Runs inside ``.build/venv`` as ``python -m teams_breeze.start_airflow``. It starts an embedded PostgreSQL,
migrates the metadata database, makes sure the ``admin`` user exists, then starts the scheduler,
the standalone dag-processor, the triggerer and the webserver (with ``--teams``: one dag-processor and
one triggerer per team) as child processes and supervises them until Ctrl-C (or until one of them
dies). Airflow is configured only through ``AIRFLOW__*`` environment variables given to the child
processes; no ``airflow.cfg`` is edited.

With ``--teams`` it also shows the product: the team-aware auth manager with a user per team, a data
engineer and the admin in every team; a local-filesystem secrets backend per team holding the same
connection and variable ids with different values; and example DAGs per team, among them a dataset
that the first team produces and two DAGs of the second team consume, one allowing the first team to
trigger it and one refusing it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from importlib.metadata import version as dist_version
from pathlib import Path

from teams_breeze import team_envs, team_users
from teams_breeze.console import BreezeError, info, step
from teams_breeze.project import Project
from teams_breeze.services import PostgresServer, ServiceError, free_port, http_ok, local_executors, poll

DATABASE = "airflow"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"
EXAMPLE_DAG = "example_teams_hello.py"
# --teams: the examples each new team folder starts with (dev/dags/teams, ignored by dev/dags/.airflowignore)
TEAM_EXAMPLES = "teams"
PRODUCER_DAG = "example_teams_orders_producer.py"
CONSUMER_DAG = "example_teams_orders_consumers.py"
ENVIRONMENT_DAG = "example_teams_environment.py"
PLUGIN_DAG = "example_teams_plugin.py"
# --teams: the plugin each new team's plugins folder starts with (dev/plugins/teams)
TEAM_PLUGIN = "example_team_tools.py"
TEAM_PLUGIN_LINE = 'TEAM = "team_a"'
# The first two teams' own libraries: conflicting versions of one library, one per team.
EXAMPLE_REQUIREMENTS = ("semver==2.13.0", "semver==3.0.4")
PRODUCER_TEAMS_LINE = 'PRODUCER_TEAMS = ["team_a"]'
CONSUMER_TEAMS_LINE = 'CONSUMER_TEAMS = ["team_b"]'
TEAM_AUTH_MANAGER = "airflow.teams.fab_auth_manager.FabTeamRolesAuthManager"
SECRETS_BACKEND = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
TEAM_CONN_ID = "team_db"
TEAM_VARIABLE = "greeting"
DATA_ENGINEER = "data_engineer"
METRICS_LOG = "metrics.log"
STATSD_PREFIX = "airflow"
STATE_FILE = "start-airflow.json"
# The operator's environment (the scheduler's: every team's settings, the database URL), mode 0600: what
# `./breeze airflow` runs the CLI with, and what `set -a; . <file>` gives a shell.
CLI_ENV_FILE = "airflow-cli.env"
LOG_TAIL_LINES = 30
API_AUTH_BACKENDS = "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived while starting up."""


# --------------------------------------------------------------------------------------------------
# Small process helpers (Linux /proc where available, signals otherwise)
# --------------------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid`` from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running (zombies do not count)."""
    if Path("/proc/self/stat").exists():
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = _proc_stat(int(entry.name))
                if stat and stat[1] == pgid and stat[0] not in ("Z", "X"):
                    return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open(errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError as err:
        return f"(cannot read {path}: {err})\n"


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# The components that run team code: with --db-isolation they reach the database through an internal API.
TEAM_CODE_COMPONENTS = ("dag-processor", "triggerer")


def internal_api_name(team: str | None) -> str:
    """The component name of a team's internal API (``internal-api`` without teams)."""
    return f"internal-api-{team}" if team else "internal-api"


def _read_or_create(path: Path, make) -> str:
    """A secret generated once and kept in AIRFLOW_HOME, so sessions and encrypted data survive restarts."""
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    value = make()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


# --------------------------------------------------------------------------------------------------
# The launcher
# --------------------------------------------------------------------------------------------------


def team_env_var(team: str, section: str, key: str) -> str:
    """A team's variable, spelled by the fork (``airflow.teams.config``): ``AIRFLOW__<TEAM>___<SECTION>__<KEY>``."""
    from airflow.teams import config

    return config.team_env_var(team, section, key)


def team_env_prefix(team: str) -> str:
    from airflow.teams import config

    return config.team_env_prefix(team)


def team_names(value: str) -> list[str]:
    """``--teams``: comma-separated team names, checked by the fork's own rule."""
    from airflow.teams.ids import team_name_problem

    teams = [name.strip() for name in value.split(",") if name.strip()]
    if not teams:
        raise argparse.ArgumentTypeError("give at least one team name")
    for name in teams:
        if problem := team_name_problem(name):
            raise argparse.ArgumentTypeError(f"{name!r}: {problem}")
    if len(set(teams)) != len(teams):
        raise argparse.ArgumentTypeError("a team name is given twice")
    return teams


@dataclass(frozen=True)
class Login:
    """A user ``start-airflow --teams`` makes sure exists (its password is only set when it is created)."""

    username: str
    password: str
    roles: tuple[str, ...]
    sees: str


def team_logins(teams: list[str]) -> list[Login]:
    """The admin and a data engineer in every team (``team:*``), and one user per team (``team:<team>``)."""
    return [
        Login(ADMIN_USER, ADMIN_PASSWORD, ("Admin", "team:*"), "every team's DAGs; administers Airflow"),
        Login(DATA_ENGINEER, DATA_ENGINEER, ("Op", "team:*"),
              "every team's DAGs, one team at a time with the navbar's team switcher"),
        *(Login(f"{team}_user", f"{team}_user", ("User", f"team:{team}"), f"only {team}'s DAGs") for team in teams),
    ]


def provision_users(spec: dict) -> None:
    """Make sure the roles and users of ``spec`` exist; runs in a child process with Airflow's environment.

    What ``airflow sync-perm``, ``airflow roles create`` and ``airflow users create``/``add-role`` would do,
    in one process instead of one per user (``airflow users import`` sets no passwords). Existing users
    keep their password; roles they lack are added.
    """
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        if not all(sm.find_role(role) for role in spec["default_roles"]):
            started = time.monotonic()
            sm.sync_roles()  # the default roles (Viewer, User, Op, ...) and their permissions, as sync-perm
            print(f"synced the default roles and their permissions in {time.monotonic() - started:.1f}s")
        for role in spec["team_roles"]:
            if sm.find_role(role) is None:
                sm.add_role(role)
                print(f"created role {role}")
        for login in spec["users"]:
            roles = [sm.find_role(name) for name in login["roles"]]
            user = sm.find_user(username=login["username"])
            if user is None:
                if not sm.add_user(login["username"], login["username"], "User", f"{login['username']}@example.invalid",
                                   roles, login["password"]):
                    raise SystemExit(f"could not create user {login['username']!r} (see the log above)")
                print(f"created user {login['username']} with roles {', '.join(login['roles'])}")
            elif missing := [role for role in roles if role not in user.roles]:
                user.roles = [*user.roles, *missing]
                sm.update_user(user)
                print(f"added roles {', '.join(role.name for role in missing)} to user {login['username']}")
            else:
                print(f"user {login['username']} exists")


class MetricsSink:
    """A StatsD listener on 127.0.0.1 that appends the fork's ``teams.*`` metrics to ``logs/metrics.log``.

    With ``--teams`` the components send their metrics here, so a refusal counted in
    ``teams.trigger_denied`` (or ``teams.rpc_denied``, ...) can be seen without a metrics server."""

    def __init__(self, path: Path):
        self.path = path
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.5)
        self.port: int = self._socket.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="metrics-sink", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        wanted = f"{STATSD_PREFIX}.teams."
        with self.path.open("a") as out:
            while not self._closed.is_set():
                try:
                    packet = self._socket.recv(65535)
                except TimeoutError:
                    continue
                except OSError:
                    return
                lines = [line for line in packet.decode(errors="replace").splitlines() if line.startswith(wanted)]
                if lines:
                    now = time.strftime("%Y-%m-%dT%H:%M:%S")
                    out.write("".join(f"{now} {line[len(STATSD_PREFIX) + 1:]}\n" for line in lines))
                    out.flush()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2)
        self._socket.close()


@dataclass
class Component:
    name: str
    command: list[str]
    log: Path
    process: subprocess.Popen | None = None
    returncode: int | None = field(default=None)

    @property
    def pgid(self) -> int:
        assert self.process is not None
        return self.process.pid  # start_new_session: the child leads its own group


class Launcher:
    def __init__(self, project: Project, args: argparse.Namespace):
        self.project = project
        self.args = args
        self.home = Path(args.airflow_home).resolve()
        self.logs = self.home / "logs"
        self.teams: list[str] = args.teams or []
        default_dags = project.root / "dev" / "dags"
        if args.dags_folder:
            self.dags_folder = Path(args.dags_folder).resolve()
        else:
            self.dags_folder = self.home / "team-dags" if self.teams else default_dags
        self.team_examples = default_dags / TEAM_EXAMPLES
        self.team_plugin_examples = project.root / "dev" / "plugins" / TEAM_EXAMPLES
        self.logins = team_logins(self.teams) if self.teams else []
        # The teams whose secrets backend start-airflow sets (not one the caller's environment already sets).
        self.team_secrets = {team: self.home / "secrets" / team for team in self.teams
                             if team_env_var(team, "secrets", "backend") not in os.environ}
        self.python = sys.executable
        self.team_environments: dict[str, Path] = {}  # the teams with a requirements.txt: their own venv
        self.team_users: dict[str, team_users.TeamUser] = {}  # --team-users
        self.postgres: PostgresServer | None = None
        self.components: list[Component] = []
        self.internal_api_ports: dict[str | None, int] = {}  # per team (None: the single-team one)
        self.metrics: MetricsSink | None = None
        self.env: dict[str, str] = {}
        self._stop = threading.Event()
        self._stop_signal: int | None = None
        self._force = threading.Event()
        self._starting = True

    # ---- signals ---------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        if self._stop.is_set():
            self._force.set()  # a second Ctrl-C: do not wait for graceful shutdown
            return
        self._stop_signal = signum
        self._stop.set()

    def _check_interrupted(self) -> None:
        if self._stop.is_set():
            raise Interrupted

    # ---- preparation -----------------------------------------------------------------------------

    def prepare_home(self) -> None:
        if not self.home.exists():
            self.home.mkdir(parents=True)
            self.home.chmod(0o755)  # PostgreSQL runs as 'nobody' under root and keeps its data below
        self.logs.mkdir(exist_ok=True)
        if self.teams and not self.args.dags_folder:
            self._seed_team_dags()
            self._seed_team_plugins()
        self._seed_team_secrets()
        if not self.dags_folder.is_dir():
            raise BreezeError(f"DAG folder {self.dags_folder} does not exist")
        for team in self.teams:
            if not (self.dags_folder / team).is_dir():
                raise BreezeError(f"DAG folder {self.dags_folder / team} of team {team!r} does not exist")
        self._stop_leftovers()

    def _seed_team_dags(self) -> None:
        """Each new team folder below AIRFLOW_HOME/team-dags starts with the examples of dev/dags/teams.

        Every team gets ``example_teams_hello`` (it reads the team's own variable and connection); the
        first team also the producer of ``s3://shared/orders``, the second team its two consumers, one of
        which allows the first team to trigger it. The first two teams also get a requirements.txt (each
        another version of ``semver``: their own environments) and ``example_teams_environment``."""
        for index, team in enumerate(self.teams):
            folder = self.dags_folder / team
            if folder.exists():
                continue
            files = {name: (self.team_examples / name).read_text() for name in (EXAMPLE_DAG, PLUGIN_DAG)}
            if index < len(EXAMPLE_REQUIREMENTS):
                files[team_envs.REQUIREMENTS_FILE] = EXAMPLE_REQUIREMENTS[index] + "\n"
                files[ENVIRONMENT_DAG] = (self.team_examples / ENVIRONMENT_DAG).read_text()
            if index == 0 and len(self.teams) > 1:
                files[PRODUCER_DAG] = self._example_naming(PRODUCER_DAG, CONSUMER_TEAMS_LINE,
                                                           json.dumps([self.teams[1]]))
            if index == 1:
                files[CONSUMER_DAG] = self._example_naming(CONSUMER_DAG, PRODUCER_TEAMS_LINE,
                                                           json.dumps([self.teams[0]]))
            folder.mkdir(parents=True)
            for name, text in files.items():
                (folder / name).write_text(text)

    def _seed_team_plugins(self) -> None:
        """Each new team's plugins folder (AIRFLOW_HOME/plugins/<team>, its default) starts with the team's
        own plugin: the same macro name in every team, each rendering its team's text."""
        for team in self.teams:
            folder = self.plugins_folder / team
            if folder.exists():
                continue
            folder.mkdir(parents=True)
            (folder / TEAM_PLUGIN).write_text(self._example_naming(
                self.team_plugin_examples / TEAM_PLUGIN, TEAM_PLUGIN_LINE, json.dumps(team)))

    @property
    def plugins_folder(self) -> Path:
        return self.home / "plugins"

    def _example_naming(self, example: str | Path, line: str, value: str) -> str:
        """The text of an example (a file of the team DAG examples, or a path) whose ``line`` (``NAME = ...``)
        gets ``value`` instead (e.g. ``["team_b"]``)."""
        path = self.team_examples / example
        text = path.read_text()
        if line not in text:
            raise BreezeError(f"{path} has no line {line!r}")
        return text.replace(line, f"{line.split(' = ')[0]} = {value}", 1)

    def build_team_environments(self) -> None:
        """Each team with a requirements.txt at the top of its folder runs from its own environment; with
        --team-users every team does, on a Python its user can run."""
        python = team_users.SHARED_PYTHON if self.args.team_users else None
        for team in self.teams:
            requirements = self._team_requirements(team)
            if requirements is None and not self.args.team_users:
                continue
            with step(f"Building {team}'s environment" + (f" from {requirements}" if requirements else "")):
                self.team_environments[team] = team_envs.build(
                    self.project, team, requirements, self.project.root / ".build" / "team-envs", python
                )
            self._check_interrupted()

    def _team_requirements(self, team: str) -> Path | None:
        """The team's requirements.txt, at the top of its folder, if it has one."""
        path = self.dags_folder / team / team_envs.REQUIREMENTS_FILE
        return path if path.is_file() else None

    def prepare_team_users(self) -> None:
        """--team-users: a Unix user per team, owning the team's folder, secrets, home and log folder only."""
        if not self.args.team_users:
            return
        with step("Team users: " + ", ".join(team_users.user_name(team) for team in self.teams)):
            for team in self.teams:
                user = team_users.ensure(team, self.home / "team-homes")
                for folder in (self.dags_folder / team, self.plugins_folder / team, self.home / "secrets" / team,
                               self.team_logs(team)):
                    folder.mkdir(parents=True, exist_ok=True)
                    team_users.give(folder, user)
                team_users.check_can_run(user, self.team_environments[team] / "bin" / "python")
                self.team_users[team] = user

    def team_logs(self, team: str) -> Path:
        """--team-users: the folder of the team's task, trigger and file-processing logs."""
        return self.logs / f"team={team}"

    def _seed_team_secrets(self) -> None:
        """Each team's secrets files (AIRFLOW_HOME/secrets/<team>/), created if missing: the same connection
        and variable ids in every team, with different values."""
        for team, folder in self.team_secrets.items():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            connection = {"conn_type": "postgres", "host": f"db.{team}.example.invalid", "port": 5432,
                          "schema": team, "login": f"{team}_app", "password": secrets.token_hex(8)}
            for name, content in (("connections.json", {TEAM_CONN_ID: connection}),
                                  ("variables.json", {TEAM_VARIABLE: f"Hello from {team}'s own secrets backend"})):
                path = folder / name
                if not path.exists():
                    path.write_text(json.dumps(content, indent=2) + "\n")
                    path.chmod(0o600)

    def _state_path(self) -> Path:
        return self.home / STATE_FILE

    def _stop_leftovers(self) -> None:
        """Refuse to run twice on one AIRFLOW_HOME; clean up after a launcher that was SIGKILLed."""
        try:
            state = json.loads(self._state_path().read_text())
        except (OSError, ValueError):
            return
        launcher = state.get("launcher")
        if isinstance(launcher, int) and launcher != os.getpid() and "teams_breeze.start_airflow" in _cmdline(launcher):
            raise BreezeError(
                f"start-airflow is already running on {self.home} (pid {launcher}); stop it first or "
                "use another --airflow-home"
            )
        for name, pgid in (state.get("groups") or {}).items():
            if isinstance(pgid, int) and group_alive(pgid) and "airflow" in _cmdline(pgid):
                info(f"    stopping {name} left over from a previous run (process group {pgid})")
                self._terminate_groups({name: pgid}, grace=10)
        self._state_path().unlink(missing_ok=True)

    def _remove_own_state(self) -> None:
        """Delete the state file unless another launcher wrote it (a refused second launcher must keep it)."""
        try:
            state = json.loads(self._state_path().read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("launcher") in (None, os.getpid()):
            self._state_path().unlink(missing_ok=True)

    def _write_state(self) -> None:
        state = {
            "launcher": os.getpid(),
            "groups": {c.name: c.pgid for c in self.components if c.process is not None},
            "postgres_port": self.postgres.port if self.postgres else None,
            "webserver_port": self.args.webserver_port,
        }
        self._state_path().write_text(json.dumps(state, indent=2) + "\n")

    # ---- PostgreSQL ------------------------------------------------------------------------------

    def start_postgres(self) -> str:
        server = PostgresServer(self.home / "postgres", port=self.args.postgres_port)
        self._stop_stale_postgres(server)
        info(f"==> Starting PostgreSQL on 127.0.0.1:{server.port} (data: {server.data_dir})")
        started = time.monotonic()
        try:
            server.start()
        except ServiceError as err:
            raise BreezeError(f"{err}\n--- {server.log} (last lines) ---\n{tail(server.log)}") from err
        self.postgres = server
        if self.args.db_reset:
            info(f"    --db-reset: dropping database {DATABASE!r}")
            self._sql("postgres", f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        url = server.create_database(DATABASE)
        info(f"    done in {time.monotonic() - started:.1f}s")
        return url

    @staticmethod
    def _stop_stale_postgres(server: PostgresServer) -> None:
        pid_file = server.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if "postgres" in _cmdline(pid):
            info(f"    stopping PostgreSQL left over from a previous run (pid {pid})")
            try:
                server.stop()
            except ServiceError as err:
                info(f"    warning: {err}")

    def _sql(self, database: str, statement: str, fetch: bool = False):
        import psycopg2  # installed with the postgres provider in .build/venv

        assert self.postgres is not None
        connection = psycopg2.connect(host="127.0.0.1", port=self.postgres.port, user="postgres", dbname=database,
                                      password=self.postgres.password)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchall() if fetch else None
        finally:
            connection.close()

    # ---- Airflow configuration -------------------------------------------------------------------

    def build_env(self, sql_alchemy_conn: str) -> dict[str, str]:
        fernet_key = _read_or_create(self.home / "fernet.key", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
        secret_key = _read_or_create(self.home / "webserver_secret_key", lambda: secrets.token_hex(32))
        venv_bin = str(Path(self.python).parent)
        env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONFIG"}
        inherited = sorted(k for k in env if k.startswith("AIRFLOW__"))
        env.update(
            AIRFLOW_HOME=str(self.home),
            PATH=venv_bin + os.pathsep + env.get("PATH", ""),
            PYTHONUNBUFFERED="1",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sql_alchemy_conn,
            AIRFLOW__CORE__EXECUTOR=self._executor_setting(),
            AIRFLOW__CORE__MULTI_TEAM=str(bool(self.teams)),
            AIRFLOW__CORE__LOAD_EXAMPLES=str(self.args.load_example_dags),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags_folder),
            AIRFLOW__CORE__FERNET_KEY=fernet_key,
            AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR="True",
            # Pick up new files in the DAG folder within 30s instead of 5 minutes.
            AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL="30",
            AIRFLOW__WEBSERVER__WORKERS="2",
            AIRFLOW__WEBSERVER__SECRET_KEY=secret_key,
            AIRFLOW__WEBSERVER__EXPOSE_CONFIG="False",
            AIRFLOW__WEBSERVER__WEB_SERVER_PORT=str(self.args.webserver_port),
            AIRFLOW__WEBSERVER__BASE_URL=f"http://localhost:{self.args.webserver_port}",
            AIRFLOW__API__AUTH_BACKENDS=API_AUTH_BACKENDS,
            # The scheduler (LocalExecutor) and triggerer serve task logs on these ports; the defaults
            # (8793/8794) would collide when two instances run on one machine.
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY="True",
        )
        if self.teams:
            # Users see the DAGs of their teams only (FAB roles team:<team>); the REST API keeps basic auth.
            env.update(AIRFLOW__CORE__AUTH_MANAGER=TEAM_AUTH_MANAGER)
            # The fork's teams.* metrics (teams.trigger_denied, ...) go to logs/metrics.log, unless the caller
            # sends metrics elsewhere.
            if "AIRFLOW__METRICS__STATSD_ON" not in os.environ:
                self.metrics = MetricsSink(self.logs / METRICS_LOG)
                env.update(AIRFLOW__METRICS__STATSD_ON="True", AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
                           AIRFLOW__METRICS__STATSD_PORT=str(self.metrics.port),
                           AIRFLOW__METRICS__STATSD_PREFIX=STATSD_PREFIX)
            # Each team reads Connections and Variables from its own files (only its own components get them).
            for team, folder in self.team_secrets.items():
                prefix = team_env_var(team, "secrets", "")
                env[f"{prefix}BACKEND"] = SECRETS_BACKEND
                env[f"{prefix}BACKEND_KWARGS"] = json.dumps({
                    "connections_file_path": str(folder / "connections.json"),
                    "variables_file_path": str(folder / "variables.json"),
                })
        for team, folder in self.team_environments.items():  # the scheduler starts the team's tasks from it
            env[team_env_var(team, "core", "team_environment")] = str(folder)
        for team, user in self.team_users.items():  # ... as the team's user
            env[team_env_var(team, "core", "team_user")] = user.name
        if self.team_users:
            env["AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE"] = team_users.LOG_FILENAME_TEMPLATE
            # airflow.cfg holds generated keys (mode 0600); every process reads a file of defaults instead
            env["AIRFLOW_CONFIG"] = str(team_users.shared_config(self.home, self.python))
        if self.args.db_isolation:
            env.update(AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION="True")
            # One internal API per team (its own URL and key, in the team's variables), or one in all.
            for team in self.teams or [None]:
                self.internal_api_ports[team] = port = free_port()
                prefix = team_env_var(team, "core", "") if team else "AIRFLOW__CORE__"
                key_file = self.home / (f"internal_api_secret_key_{team}" if team else "internal_api_secret_key")
                env[f"{prefix}INTERNAL_API_URL"] = f"http://127.0.0.1:{port}"
                env[f"{prefix}INTERNAL_API_SECRET_KEY"] = _read_or_create(key_file, lambda: secrets.token_hex(32))
        overridden = [k for k in inherited if env[k] != os.environ.get(k)]
        kept = [k for k in inherited if k not in overridden]
        if kept:
            info("    note: these AIRFLOW__* variables from your environment stay in effect: " + ", ".join(kept))
        self.env = env
        self._write_cli_env()
        return env

    def _write_cli_env(self) -> None:
        path = self.home / CLI_ENV_FILE
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text("".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(self.env.items())
                                if key.startswith(("AIRFLOW", "PYTHON")) or key == "PATH"))

    def _executor_setting(self) -> str:
        if not self.teams:
            return "LocalExecutor"
        return json.dumps(local_executors(self.teams))

    # ---- one-shot airflow commands ---------------------------------------------------------------

    def run_airflow(self, name: str, *airflow_args: str) -> None:
        """Run ``airflow <args>`` to completion (interruptible), output to logs/<name>.log."""
        shown = ["***" if previous == "--password" else a for previous, a in zip(("",) + airflow_args, airflow_args)]
        self._run_to_completion(name, [self.python, "-m", "airflow", *airflow_args], None,
                                f"airflow {' '.join(shown)}", f"airflow {airflow_args[0]}")

    def _run_to_completion(self, name: str, command: list[str], stdin: str | None, shown: str,
                           what: str | None = None) -> None:
        """Run ``command`` with Airflow's environment (interruptible), ``stdin`` as its input, output to
        logs/<name>.log."""
        log = self.logs / f"{name}.log"
        info(f"==> {shown}  (log: {log})")
        started = time.monotonic()
        with log.open("w") as out:
            process = subprocess.Popen(
                command, env=self.env, cwd=self.home, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, text=True,
            )
        if stdin is not None:
            assert process.stdin is not None
            try:
                process.stdin.write(stdin)
                process.stdin.close()
            except BrokenPipeError:
                pass  # it exited early: its exit code and log tell why
        try:
            while process.poll() is None:
                if self._stop.wait(0.2):
                    raise Interrupted
        finally:
            if process.poll() is None:
                self._terminate_groups({name: process.pid}, grace=10)
                process.wait()
        if process.returncode != 0:
            raise BreezeError(
                f"{what or name} failed (exit code {process.returncode}); last lines of {log}:\n{tail(log)}"
            )
        info(f"    done in {time.monotonic() - started:.1f}s")

    def ensure_users(self) -> None:
        if self.teams:
            self.ensure_team_users()
        else:
            self.ensure_admin_user()

    def ensure_admin_user(self) -> None:
        import psycopg2.errors

        try:
            exists = self._sql(DATABASE, f"SELECT 1 FROM ab_user WHERE username = '{ADMIN_USER}'", fetch=True)
        except psycopg2.errors.UndefinedTable:
            exists = []
        if exists:
            info(f"    user {ADMIN_USER!r} exists")
            return
        self.run_airflow(
            "users-create", "users", "create", "--username", ADMIN_USER, "--password", ADMIN_PASSWORD,
            "--firstname", "Admin", "--lastname", "User", "--email", "admin@example.invalid", "--role", "Admin",
        )

    def ensure_team_users(self) -> None:
        """The roles team:<team> and team:*, and the users of the banner; one process, and none if they exist."""
        import psycopg2.errors

        try:
            have = set(self._sql(DATABASE, "SELECT u.username, r.name FROM ab_user u JOIN ab_user_role ur "
                                           "ON ur.user_id = u.id JOIN ab_role r ON r.id = ur.role_id", fetch=True))
        except psycopg2.errors.UndefinedTable:
            have = set()
        if all((login.username, role) in have for login in self.logins for role in login.roles):
            info(f"    users {', '.join(login.username for login in self.logins)} exist")
            return
        spec = {
            "default_roles": sorted({role for login in self.logins for role in login.roles} - set(self._team_roles())),
            "team_roles": self._team_roles(),
            "users": [{"username": login.username, "password": login.password, "roles": list(login.roles)}
                      for login in self.logins],
        }
        code = ("import json, sys; from teams_breeze.start_airflow import provision_users; "
                "provision_users(json.load(sys.stdin))")
        users = ", ".join(login.username for login in self.logins)
        self._run_to_completion("users-create", [self.python, "-c", code], json.dumps(spec),
                                f"team roles {', '.join(spec['team_roles'])} and users {users}")

    def _team_roles(self) -> list[str]:
        return ["team:*", *(f"team:{team}" for team in self.teams)]

    # ---- long-running components -----------------------------------------------------------------

    def component_commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """Each component's ``airflow`` arguments and extra environment: per team with ``--teams``.

        A team's components get only their own team's ``AIRFLOW__<TEAM>___...`` variables. With
        ``--db-isolation`` the dag-processors and triggerers get no database URL and call their internal
        API: with ``--teams`` one ``internal-api --teams``, which forks each team's own server."""
        isolated = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "none://"} if self.args.db_isolation else {}
        commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        if self.args.db_isolation:  # with teams, one parent forks each team's server (on its URL's port)
            where = (["--teams", ",".join(self.teams), "--teams-log-dir", str(self.logs)] if self.teams
                     else ["--port", str(self.internal_api_ports[None])])
            commands[internal_api_name(None)] = (
                ["internal-api", *where, "--hostname", "127.0.0.1", "--workers", "1"], {})
        commands["scheduler"] = (["scheduler"], {})
        if not self.teams:
            commands["dag-processor"] = (["dag-processor"], isolated)
            commands["triggerer"] = (["triggerer"], isolated)
        for team in self.teams:
            own = self._team_user_env(team)
            commands[f"dag-processor-{team}"] = (["dag-processor", "--team", team], isolated | own)
            # Each triggerer serves its trigger logs on its own port.
            port = {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
            commands[f"triggerer-{team}"] = (["triggerer", "--team", team], port | isolated | own)
        commands["webserver"] = (
            ["webserver", "--port", str(self.args.webserver_port), "--hostname", self.args.hostname], {}
        )
        return commands

    def _team_user_env(self, team: str) -> dict[str, str]:
        """--team-users: the team's home, and its file-processing logs in its own log folder."""
        if team not in self.team_users:
            return {}
        logs = self.team_logs(team)
        return {"HOME": str(self.team_users[team].home),
                "AIRFLOW__SCHEDULER__CHILD_PROCESS_LOG_DIRECTORY": str(logs / "scheduler"),
                "AIRFLOW__LOGGING__DAG_PROCESSOR_MANAGER_LOG_LOCATION": str(logs / "dag_processor_manager.log")}

    def start_components(self) -> None:
        """Start every component at once, except the dag-processors and triggerers of ``--db-isolation``:
        those once every internal API answers."""
        commands = self.component_commands()
        info("==> Starting " + ", ".join(commands))
        clients = [name for name in commands if self.args.db_isolation and name.startswith(TEAM_CODE_COMPONENTS)]
        for name in clients:
            commands[name] = commands.pop(name)  # last
        internal_apis = {internal_api_name(team): port for team, port in self.internal_api_ports.items()}
        for name, (airflow_args, extra_env) in commands.items():
            if name in clients:
                while internal_apis:
                    self._wait_for_internal_api(*internal_apis.popitem())
            team = next((team for team in self.teams if name.endswith(f"-{team}")), None)
            # A team's dag-processor and triggerer run its code: from its environment, as its user.
            runs_team_code = name.startswith(TEAM_CODE_COMPONENTS)
            python = self.python
            if team in self.team_environments and runs_team_code:
                python = str(self.team_environments[team] / "bin" / "python")
            component = Component(name, [python, "-m", "airflow", *airflow_args], self.logs / f"{name}.log")
            with component.log.open("w") as out:
                as_user = self.team_users[team].popen_args() if team in self.team_users and runs_team_code else {}
                component.process = subprocess.Popen(
                    component.command, env=self._team_env(team) | extra_env, cwd=self.home,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    **as_user,
                )
            self.components.append(component)
            self._write_state()

    def _team_env(self, team: str | None) -> dict[str, str]:
        """The environment of a team's component: without the other teams' AIRFLOW__<TEAM>___ variables."""
        others = tuple(team_env_prefix(other) for other in self.teams if other != team)
        return {key: value for key, value in self.env.items() if not (team and key.startswith(others))}

    def _wait_for_internal_api(self, name: str, port: int) -> None:
        url = f"http://127.0.0.1:{port}/internal_api/v1/health"

        def healthy() -> bool:
            self._check_interrupted()
            if (dead := self.dead_component()) is not None:
                raise BreezeError(self._death_report(dead, "while starting"))
            return http_ok(url)

        if not poll(healthy, self.args.startup_timeout, 0.5, sleep=self._stop.wait):
            raise BreezeError(f"the internal API {name} did not answer {url}; last lines of its log:\n"
                              f"{tail(self.logs / f'{name}.log')}")

    def dead_component(self) -> Component | None:
        for component in self.components:
            if component.process is not None and component.process.poll() is not None:
                component.returncode = component.process.returncode
                return component
        return None

    def wait_for_webserver(self) -> None:
        url = f"http://127.0.0.1:{self.args.webserver_port}/health"
        if self.args.hostname not in ("0.0.0.0", "127.0.0.1", "localhost", "::"):
            url = f"http://{self.args.hostname}:{self.args.webserver_port}/health"
        started = time.monotonic()

        def healthy() -> bool:
            self._check_interrupted()
            dead = self.dead_component()
            if dead is not None:
                raise BreezeError(self._death_report(dead, "while starting"))
            return http_ok(url)

        if poll(healthy, self.args.startup_timeout, 1, sleep=self._stop.wait):
            info(f"    webserver healthy after {time.monotonic() - started:.1f}s")
            return
        raise BreezeError(
            f"the webserver did not answer {url} with HTTP 200 within {self.args.startup_timeout}s; "
            f"last lines of {self.logs / 'webserver.log'}:\n{tail(self.logs / 'webserver.log')}"
        )

    @staticmethod
    def _death_report(component: Component, when: str) -> str:
        return (
            f"{component.name} exited {when} (exit code {component.returncode}); "
            f"last lines of {component.log}:\n{tail(component.log)}"
        )

    def print_banner(self) -> None:
        port = self.args.webserver_port
        logs = ", ".join(f"{component.name}.log" for component in self.components)
        if self.metrics:
            logs += f", {METRICS_LOG} (the teams.* metrics)"
        mode = f"teams: {', '.join(self.teams)}" if self.teams else "single team"
        mode += ", database access isolation" if self.args.db_isolation else ""
        folders = f" (one folder per team: {', '.join(self.teams)})" if self.teams else ""
        assert self.postgres is not None
        if self.teams:
            login = self._logins_banner()
        else:
            login = f"  Login:       {ADMIN_USER} / {ADMIN_PASSWORD}\n"
        banner = f"""
Airflow {dist_version('apache-airflow')} is running ({mode}).

  Web UI:      http://localhost:{port}
{login}  REST API:    http://localhost:{port}/api/v1 (basic auth)
  DAG folder:  {self.dags_folder}{folders}{'  (+ example DAGs)' if self.args.load_example_dags else ''}
{self._secrets_banner()}{self._environments_banner()}  CLI:         ./breeze airflow --airflow-home {self.home} <command>  (e.g. dags list)
  AIRFLOW_HOME {self.home}
  Logs:        {self.logs}/  ({logs}; task logs below dag_id=*/)
  PostgreSQL:  127.0.0.1:{self.postgres.port}, database {DATABASE!r}, user postgres (log: {self.postgres.log})
{self._try_banner()}
Press Ctrl-C to stop.
"""
        print(banner, flush=True)

    def _logins_banner(self) -> str:
        """With --teams: each login, its roles and what it sees."""
        rows = [(f"{login.username} / {login.password}", ", ".join(login.roles), login.sees) for login in self.logins]
        widths = [max(len(row[column]) for row in rows) for column in range(2)]
        lines = [f"{user.ljust(widths[0])}   {roles.ljust(widths[1])}   {sees}" for user, roles, sees in rows]
        return "".join(f"  {'Logins:' if i == 0 else '':<13}{line}\n" for i, line in enumerate(lines))

    def _secrets_banner(self) -> str:
        """With --teams: where each team's connection and variable live."""
        if not self.teams:
            return ""
        lines = [f"{team}: {folder}/{{connections,variables}}.json" for team, folder in self.team_secrets.items()]
        lines += [f"{team}: your own backend ({team_env_var(team, 'secrets', 'backend')})"
                  for team in self.teams if team not in self.team_secrets]
        head = (f"  Secrets:     per team, the same ids with different values (connection {TEAM_CONN_ID!r}, "
                f"variable {TEAM_VARIABLE!r}):\n")
        return head + "".join(f"               {line}\n" for line in lines)

    def _environments_banner(self) -> str:
        """The teams that run from their own environment (a requirements.txt in their folder, or --team-users)."""
        if not self.team_environments:
            return ""
        lines = [f"{team}: {folder}" + (f" ({requirements})" if (requirements := self._team_requirements(team)) else "")
                 for team, folder in self.team_environments.items()]
        text = "  Team envs:   " + "\n               ".join(lines) + "\n"
        if self.team_users:
            users = [f"{team}: {user.name} (uid {user.uid}, home {user.home}, logs {self.team_logs(team)})"
                     for team, user in self.team_users.items()]
            text += "  Team users:  " + "\n               ".join(users) + "\n"
        return text

    def _try_banner(self) -> str:
        """With --teams in AIRFLOW_HOME/team-dags: what to try with the example DAGs."""
        if not self.teams or self.args.dags_folder:
            return ""
        first = self.teams[0]
        others = f"; {self.teams[1]}'s show {self.teams[1]}'s values" if len(self.teams) > 1 else ""
        steps = [f"As {first}_user, trigger {first}:example_teams_hello: its task logs show {first}'s greeting\n"
                 f"   and connection team_db (the password masked){others}.",
                 f"Trigger {first}:example_teams_plugin: its task renders the macro of {first}'s own plugin\n"
                 f"   (plugins/{first}/{TEAM_PLUGIN}), which no other team's process and no shared one imports."]
        if len(self.teams) > 1:
            second = self.teams[1]
            where = (f"logs/{internal_api_name(first)}.log" if self.args.db_isolation
                     else f"the log of {first}:produce_orders' task")
            counted = f",\n   counted as teams.trigger_denied in logs/{METRICS_LOG}" if self.metrics else ""
            steps += [
                f"As {first}_user, trigger {first}:produce_orders (it updates s3://shared/orders and admits {second}).\n"
                f"   As {second}_user: {second}:consume_orders runs (it allows {first}); {second}:consume_orders_private\n"
                f"   does not (it allows no other team): the refusal is logged in {where}{counted};\n"
                f"   {second}_user reads it on the Datasets page and on the DAG's Audit Log tab.",
                f"As {first}_user, trigger {first}:produce_forecast (it admits no other team): {second}:consume_forecast\n"
                f"   allows {first} but does not run; both teams read the producer's refusal on the Datasets page.",
                f"As {DATA_ENGINEER}, narrow the UI to one team with the navbar's team switcher. And\n"
                f"   curl -u {first}_user:{first}_user http://localhost:{self.args.webserver_port}/api/v1/dags "
                f"lists only {first}'s DAGs.",
            ]
        text = "".join(f"{number}. {step}\n" for number, step in enumerate(steps, 1))
        text += "The example DAGs are unpaused; a team's folder gets them once, when it is created."
        return "\n  Try it:\n" + "".join(f"    {line}\n" for line in text.splitlines())

    def supervise(self) -> int:
        while not self._stop.is_set():
            dead = self.dead_component()
            if dead is not None:
                info(self._death_report(dead, "unexpectedly"))
                info("Stopping the other components.")
                return 1
            self._stop.wait(1)
        name = signal.Signals(self._stop_signal).name if self._stop_signal else "signal"
        info(f"\n==> {name} received, stopping Airflow")
        return 0

    # ---- shutdown --------------------------------------------------------------------------------

    def _terminate_groups(self, groups: dict[str, int], grace: float) -> None:
        """SIGTERM every group, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
        for pgid in groups.values():
            _signal_group(pgid, signal.SIGTERM)

        def stopped() -> bool:
            self._reap()
            return not any(group_alive(pgid) for pgid in groups.values())

        if poll(lambda: stopped() or self._force.is_set(), grace, 0.2) and stopped():
            return
        for name, pgid in groups.items():
            if group_alive(pgid):
                info(f"    {name} did not stop within {grace:.0f}s: SIGKILL")
                _signal_group(pgid, signal.SIGKILL)
        if poll(stopped, 10, 0.1):
            return
        info("    warning: processes survived SIGKILL in groups " + ", ".join(map(str, groups.values())))

    def _reap(self) -> None:
        for component in self.components:
            if component.process is not None:
                component.process.poll()

    def stop(self) -> None:
        running = {c.name: c.pgid for c in self.components if c.process is not None}
        if running:
            started = time.monotonic()
            # The internal APIs go last: the isolated components call them while they shut down (their
            # jobs' final state), and would wait for them until SIGKILL.
            apis = {name: pgid for name, pgid in running.items() if name.startswith(internal_api_name(None))}
            for groups in ({name: pgid for name, pgid in running.items() if name not in apis}, apis):
                if groups:
                    info("    stopping " + ", ".join(groups))
                    self._terminate_groups(groups, grace=self.args.stop_timeout)
            for component in self.components:
                if component.process is not None:
                    try:
                        component.process.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
            info(f"    components stopped in {time.monotonic() - started:.1f}s")
        if self.postgres is not None:
            info("    stopping PostgreSQL")
            try:
                self.postgres.stop()
            except ServiceError as err:
                info(f"    warning: {err}")
            self.postgres = None
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        self._remove_own_state()

    # ---- everything ------------------------------------------------------------------------------

    def run(self) -> int:
        self.install_signal_handlers()
        try:
            if not _port_is_free(self.args.hostname, self.args.webserver_port):
                raise BreezeError(
                    f"port {self.args.webserver_port} is already in use; pick another with --webserver-port"
                )
            if self.args.team_users:
                if not (self.teams and self.args.db_isolation):
                    raise BreezeError("--team-users needs --teams and --db-isolation (without isolation every "
                                      "task holds the database password)")
                team_users.check_can_create()
            self.prepare_home()
            self.build_team_environments()
            self.prepare_team_users()
            self._write_state()
            sql_alchemy_conn = self.start_postgres()
            self._check_interrupted()
            self.build_env(sql_alchemy_conn)
            self.run_airflow("db-migrate", "db", "migrate")
            self._check_interrupted()
            self.ensure_users()
            self._check_interrupted()
            self.start_components()
            self.wait_for_webserver()
            self.print_banner()
            return self.supervise()
        except Interrupted:
            info("\n==> interrupted while starting, cleaning up")
            return 0
        except BreezeError as err:
            info(f"breeze start-airflow: error: {err}")
            return 1
        finally:
            # A further Ctrl-C while stopping only skips the grace period (see _on_signal).
            self._stop.set()
            self.stop()


def parser(project: Project) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="breeze start-airflow",
        description="Start Airflow from the patched build in .build/venv: embedded PostgreSQL, then the "
        "scheduler (LocalExecutor), a standalone dag-processor, the triggerer and the webserver, each "
        "logging to AIRFLOW_HOME/logs/<component>.log. With --teams: a multi-team deployment. Ctrl-C "
        "stops everything.",
    )
    result.add_argument(
        "--airflow-home", default=str(project.build / "airflow-home"),
        help="AIRFLOW_HOME: keys, logs and the PostgreSQL data live here (default: .build/airflow-home)",
    )
    result.add_argument("--db-reset", action="store_true", help="drop and recreate the metadata database first")
    result.add_argument("--webserver-port", type=int, default=28080, help="webserver port (default: 28080)")
    result.add_argument(
        "--hostname", default="127.0.0.1",
        help="address the webserver binds to (default: 127.0.0.1; use 0.0.0.0 to expose it)",
    )
    result.add_argument("--postgres-port", type=int, default=None, help="PostgreSQL port (default: a free port)")
    result.add_argument(
        "--load-example-dags", action="store_true", help="also load Airflow's example DAGs (default: off)"
    )
    result.add_argument(
        "--dags-folder", default=None,
        help="DAG folder (default: dev/dags; with --teams AIRFLOW_HOME/team-dags, whose new team folders "
        "start with the examples of dev/dags/teams); with --teams it holds one folder per team",
    )
    result.add_argument(
        "--teams", type=team_names, default=None, metavar="TEAM[,TEAM...]",
        help="run a multi-team deployment ([core] multi_team): one LocalExecutor, dag-processor --team "
        "and triggerer --team per team; the team auth manager with a user per team (see the banner), "
        "each team's own secrets files below AIRFLOW_HOME/secrets, example DAGs per team",
    )
    result.add_argument(
        "--db-isolation", action="store_true",
        help="database access isolation: start an internal API; the dag-processors, single-team triggerer and "
        "task processes hold no database URL (see docs/isolation.md)",
    )
    result.add_argument(
        "--team-users", action="store_true",
        help="with --teams and --db-isolation, as root: each team's dag-processor, triggerer and tasks run as "
        "its own Unix user airflow-<team>, which owns only the team's folder, secrets, home and logs "
        "(see docs/start-airflow.md)",
    )
    result.add_argument(
        "--startup-timeout", type=float, default=300,
        help="seconds to wait for the webserver to become healthy (default: 300)",
    )
    result.add_argument(
        "--stop-timeout", type=float, default=30,
        help="seconds components get to exit after SIGTERM before SIGKILL (default: 30)",
    )
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        # `./breeze start-airflow -- --flag ...`: the separator reaches us verbatim; see docs/start-airflow.md.
        argv = argv[1:]
    try:
        project = Project.from_env()
        args = parser(project).parse_args(argv)
        return Launcher(project, args).run()
    except BreezeError as err:
        print(f"breeze start-airflow: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
