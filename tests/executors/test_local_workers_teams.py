"""A team's LocalExecutor starts workers when tasks wait for one (patch teams-local-executor-workers-on-demand)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from airflow.executors.local_executor import LocalExecutor, LocalWorkerBase
from airflow.models.taskinstance import TaskInstanceKey
from airflow.teams import local_workers
from airflow.utils.state import TaskInstanceState


def until(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        time.sleep(0.02)


@pytest.fixture
def gate(tmp_path: Path, monkeypatch):
    """Workers run a stand-in task: it records its worker's pid and ends when the gate opens."""
    opened = tmp_path / "open"

    def stand_in_task(self, key, command):
        (tmp_path / f"{key.task_id}.pid").write_text(str(multiprocessing.current_process().pid))
        while not opened.exists():
            time.sleep(0.01)
        self.result_queue.put((key, TaskInstanceState.SUCCESS))

    monkeypatch.setattr(LocalWorkerBase, "execute_work", stand_in_task)
    monkeypatch.setattr(local_workers, "IDLE_SECONDS", 0.3)
    return tmp_path


def key(task_id: str) -> TaskInstanceKey:
    return TaskInstanceKey("team_a:d", task_id, "run", 1)


def command(task_id: str) -> list[str]:
    return ["airflow", "tasks", "run", "team_a:d", task_id, "run"]


def test_a_team_executor_starts_no_process_until_a_task_waits_and_at_most_parallelism(gate):
    before = set(multiprocessing.active_children())
    executor = LocalExecutor(parallelism=2, team_name="team_a")
    executor.start()
    assert executor.manager is None and executor.workers == []
    # no manager, no idle worker: no new child (one another test left may have ended since)
    assert set(multiprocessing.active_children()) <= before

    for task_id in ("t1", "t2", "t3"):
        executor.execute_async(key(task_id), command(task_id))
    assert len(executor.workers) == 2  # three tasks wait, parallelism is two
    until(lambda: len(list(gate.glob("*.pid"))) == 2, "two tasks running")
    (gate / "open").touch()

    until(lambda: executor.sync() or len(executor.event_buffer) == 3, "three results")
    assert {k.task_id for k, (state, _) in executor.event_buffer.items() if state == "success"} == {"t1", "t2", "t3"}
    pids = {p.read_text() for p in gate.glob("*.pid")}
    assert len(pids) == 2  # the third task reused a worker
    until(lambda: executor.sync() or executor.workers == [], "idle workers left")
    executor.end()


def test_end_lets_the_given_tasks_finish(gate):
    executor = LocalExecutor(parallelism=1, team_name="team_a")
    executor.start()
    executor.execute_async(key("t1"), command("t1"))
    executor.execute_async(key("t2"), command("t2"))
    (gate / "open").touch()

    executor.end()

    assert sorted(k.task_id for k in executor.event_buffer) == ["t1", "t2"]
    assert executor.workers == []


def test_without_a_team_the_executor_is_upstreams():
    executor = LocalExecutor(parallelism=2)
    executor.start()
    try:
        assert isinstance(executor.impl, LocalExecutor.LimitedParallelism)
        assert len(executor.workers) == 2 and executor.manager is not None
    finally:
        executor.end()
