"""A team's job heartbeats with one write, no read before it; a job of no team keeps upstream's read and write
(patch teams-heartbeat-one-call)."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest

from airflow.exceptions import AirflowException
from airflow.jobs.job import Job
from airflow.serialization.pydantic.job import JobPydantic
from airflow.teams import process_team
from airflow.utils import timezone
from airflow.utils.state import JobState


class Calls(list):
    """The operations made, in order; ``row_state[0]`` is the state the write answers."""

    def __init__(self):
        super().__init__()
        self.row_state = [JobState.RUNNING]


@pytest.fixture
def db_calls(monkeypatch):
    """The job's row operations; the row answered by the write has the state in ``row_state``."""
    made = Calls()
    row_state = made.row_state

    def fetch(job, session=None):
        made.append("read")
        return job

    def write(job, session=None):
        made.append("write")
        answer = JobPydantic.model_validate(job)
        return answer.model_copy(update={"latest_heartbeat": timezone.utcnow(), "state": row_state[0]})

    monkeypatch.setattr(Job, "_fetch_from_db", staticmethod(fetch))
    monkeypatch.setattr(Job, "_update_heartbeat", staticmethod(write))
    monkeypatch.setattr(Job, "_kill", staticmethod(lambda job_id, session=None: made.append("kill")))
    return made


def a_job() -> Job:
    job = Job(heartrate=0)
    job.id, job.state, job.job_type = 7, JobState.RUNNING, "TriggererJob"
    job.start_date = job.latest_heartbeat = timezone.utcnow() - datetime.timedelta(seconds=60)
    return job


def test_a_team_s_job_writes_its_heartbeat_without_reading_first(db_calls):
    process_team.serve("team_a")
    job = a_job()
    callback = mock.Mock()

    job.heartbeat(callback, session=mock.Mock())
    job.heartbeat(callback, session=mock.Mock())

    assert db_calls == ["write", "write"]
    assert callback.call_count == 2 and timezone.utcnow() - job.latest_heartbeat < datetime.timedelta(seconds=30)


def test_a_team_s_job_set_to_restarting_stops_at_its_next_heartbeat(db_calls):
    process_team.serve("team_a")
    job = a_job()
    db_calls.row_state[0] = JobState.RESTARTING

    with pytest.raises(AirflowException, match="shut down externally"):
        job.heartbeat(mock.Mock(), session=mock.Mock())

    assert db_calls == ["write", "kill"]


def test_a_job_of_no_team_reads_then_writes(db_calls):
    job = a_job()

    job.heartbeat(mock.Mock(), session=mock.Mock())

    assert db_calls == ["read", "write"]
