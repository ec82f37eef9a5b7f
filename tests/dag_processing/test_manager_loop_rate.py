"""An idle dag-processor loops once a second (patch ``dag-processor-loop-waits-once-a-second``). Upstream
2.11.2 measured a loop from before its wait, so the wait counted as the loop's work and every second loop
did not wait at all: two loops, and their database queries (internal API calls when isolated), a second.
A team's dag-processor loops every 5 s (patch ``teams-dag-processor-idle-loop``)."""

from __future__ import annotations

import multiprocessing.connection
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest

from airflow.dag_processing import manager as manager_module
from airflow.dag_processing.manager import DagFileProcessorManager
from airflow.teams import process_team


@pytest.mark.parametrize(("team", "loop_seconds"), [(None, 1.0), ("team_a", 5.0)])
def test_an_idle_loop_waits_its_whole_loop_every_time(tmp_path, monkeypatch, team, loop_seconds):
    if team is not None:
        process_team.serve(team)
    clock = SimpleNamespace(now=100.0)
    waits: list[float] = []

    def wait(handles, timeout):  # nothing becomes ready: the whole timeout passes
        waits.append(timeout)
        clock.now += timeout
        return []

    monkeypatch.setattr(manager_module, "time", SimpleNamespace(monotonic=lambda: clock.now, time=time.time))
    monkeypatch.setattr(multiprocessing.connection, "wait", wait)
    monkeypatch.setattr(manager_module.DagWarning, "purge_inactive_dag_warnings", lambda *a, **k: None)
    manager = DagFileProcessorManager(
        dag_directory=tmp_path, max_runs=-1, processor_timeout=timedelta(seconds=30), dag_ids=None, pickle_dags=False
    )
    manager._async_mode = True
    manager.standalone_dag_processor = False
    loops = iter(range(6))
    for name in ("heartbeat", "_scan_stale_dags", "_kill_timed_out_processors", "emit_metrics",
                 "prepare_file_path_queue", "_refresh_requested_filelocs", "start_new_processes",
                 "collect_results", "_print_stat"):
        monkeypatch.setattr(manager, name, lambda *a, **k: None)
    monkeypatch.setattr(manager, "_refresh_dag_dir", lambda: False)
    monkeypatch.setattr(manager, "max_runs_reached", lambda: next(loops) == 5)

    manager._run_parsing_loop()

    assert waits[0] == 0.0  # the first loop starts at once
    assert waits[1:] == [loop_seconds] * 5  # upstream: 1.0, 0.0, 1.0, 0.0, 1.0
