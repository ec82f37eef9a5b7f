"""CVE-2026-40861: task logs are never read or served through a symbolic link (patch log-file-symlinks).

A task's log folder holds a symlink to a file outside the log folder (a "secret" the test creates),
or is itself a symlink to a folder outside it. Neither the webserver's log reader
(``FileTaskHandler._read``, which globs the task's local log files) nor the log server of workers and
triggerers (``airflow.utils.serve_logs``, with a valid token) may return its content; each refusal is
one log line, and the log server answers 404, not 500.
"""

from __future__ import annotations

import logging
from unittest import mock

import pytest

# Imported at collection: importing it configures logging, which would drop caplog's handler mid-test.
from airflow.utils.log.file_task_handler import FileTaskHandler

SECRET = "top-secret-value-of-the-host"
REL = "dag_id=etl/run_id=manual/task_id=t/attempt=1.log"


@pytest.fixture
def log_folders(tmp_path, monkeypatch):
    base = tmp_path / "logs"
    task_dir = base / "dag_id=etl/run_id=manual/task_id=t"
    task_dir.mkdir(parents=True)
    (task_dir / "attempt=1.log").write_text("[2024-01-01T00:00:00.000+0000] {x.py:1} INFO - the real log line\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "airflow.cfg"
    secret.write_text(f"[webserver]\nsecret_key = {SECRET}\n")
    # a file of the task's log glob (attempt=1.log*) that points outside the log folder
    (task_dir / "attempt=1.log.stolen").symlink_to(secret)
    # a whole task folder that is a symlink to a folder outside the log folder
    (outside / "attempt=1.log").write_text(f"{SECRET}\n")
    (base / "dag_id=etl/run_id=manual/task_id=linked").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(base))
    return base


def read_with_the_webservers_reader(base, rel_path):
    from airflow.utils.state import TaskInstanceState

    handler = FileTaskHandler(base_log_folder=str(base))
    ti = mock.MagicMock(state=TaskInstanceState.SUCCESS, hostname="", triggerer_job=None)
    with mock.patch.object(handler, "_render_filename", return_value=rel_path), \
            mock.patch.object(handler, "_read_from_logs_server", return_value=([], [])):
        logs, _ = handler._read(ti, 1)
    return logs


def test_the_webservers_log_reader_skips_a_symlink_to_a_file_outside_the_log_folder(log_folders, caplog):
    with caplog.at_level(logging.WARNING):
        logs = read_with_the_webservers_reader(log_folders, REL)

    assert "the real log line" in logs  # the task's own log is still shown
    assert SECRET not in logs
    assert "attempt=1.log.stolen" in logs and "symbolic link" in logs  # the refusal, without the target
    refusals = [r.getMessage() for r in caplog.records if "Refusing to read log file" in r.getMessage()]
    assert len(refusals) == 1 and "attempt=1.log.stolen" in refusals[0]


def test_the_webservers_log_reader_skips_a_task_folder_that_is_a_symlink_out_of_the_log_folder(log_folders, caplog):
    with caplog.at_level(logging.WARNING):
        logs = read_with_the_webservers_reader(log_folders, "dag_id=etl/run_id=manual/task_id=linked/attempt=1.log")

    assert SECRET not in logs
    assert "outside the log folder" in logs
    assert any("Refusing to read log file" in r.getMessage() for r in caplog.records)


@pytest.fixture
def log_server(log_folders):
    from airflow.utils.jwt_signer import JWTSigner, get_signing_key
    from airflow.utils.serve_logs import create_app

    app = create_app()
    signer = JWTSigner(secret_key=get_signing_key("webserver", "secret_key"), expiration_time_in_seconds=30,
                       audience="task-instance-logs")

    def get(filename):
        token = signer.generate_signed_token({"filename": filename})
        return app.test_client().get(f"/log/{filename}", headers={"Authorization": token})

    return get


def test_the_log_server_serves_a_real_log_file(log_server):
    response = log_server(REL)

    assert response.status_code == 200
    assert "the real log line" in response.text


@pytest.mark.parametrize("filename", [
    "dag_id=etl/run_id=manual/task_id=t/attempt=1.log.stolen",
    "dag_id=etl/run_id=manual/task_id=linked/attempt=1.log",
])
def test_the_log_server_refuses_a_symlink_out_of_the_log_folder_with_a_valid_token(log_server, filename, caplog):
    with caplog.at_level(logging.WARNING):
        response = log_server(filename)

    assert response.status_code == 404
    assert SECRET not in response.text
    refusals = [r.getMessage() for r in caplog.records if "Refusing to serve log file" in r.getMessage()]
    assert len(refusals) == 1
