"""A DAG file deleted while its processor runs: the manager stops that processor and goes on (patch
``dag-processor-deleted-file-in-progress``). Upstream 2.11.2's manager ended the dag-processor with a
KeyError twice over: it dropped the file's stats when the file went missing and, stopping its processor,
popped them again; and it kept the stopped processor's handle among the ones it waits on, so collecting
the finished processors popped the processor a second time."""

from __future__ import annotations

from datetime import timedelta

from airflow.dag_processing.manager import DagFileProcessorManager


class RunningProcessor:
    def __init__(self, file_path: str) -> None:
        self.file_path = file_path
        self.terminated = False
        self.waitable_handle = object()

    def terminate(self, sigkill: bool = False) -> None:
        self.terminated = True


def test_file_deleted_during_its_parse_stops_its_processor_and_keeps_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__SCHEDULER__FILE_PARSING_SORT_MODE", "modified_time")
    deleted, kept = tmp_path / "deleted.py", tmp_path / "kept.py"
    deleted.write_text("# a DAG file\n")
    kept.write_text("# another DAG file\n")
    manager = DagFileProcessorManager(
        dag_directory=tmp_path, max_runs=-1, processor_timeout=timedelta(seconds=30), dag_ids=None, pickle_dags=False
    )
    manager.set_file_paths([str(deleted), str(kept)])
    parsing = RunningProcessor(str(deleted))
    manager._processors[str(deleted)] = parsing
    manager.waitables[parsing.waitable_handle] = parsing
    deleted.unlink()

    manager.prepare_file_path_queue()

    assert parsing.terminated
    assert manager._processors == {}
    assert manager._file_paths == [str(kept)]
    assert list(manager._file_path_queue) == [str(kept)]
    assert str(deleted) not in manager._file_stats
    assert parsing.waitable_handle not in manager.waitables  # nothing left to collect for the stopped processor
