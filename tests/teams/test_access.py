"""Who may trigger whom (airflow.teams.trigger_permissions, and the dataset gate reading the allow lists)."""

from __future__ import annotations

import json

import pytest

from airflow.exceptions import AirflowException
from airflow.teams.trigger_permissions import may_trigger, validate_allow_list


@pytest.mark.parametrize(
    "consumer, allow, producers, allowed, reason",
    [
        ("team_a:c", None, ["team_a"], True, "same team"),
        ("team_a:c", None, ["team_b"], False, "team_b is another team and the DAG sets no allow_triggering_by_teams"),
        ("team_a:c", ["team_b"], ["team_b"], True, "allowed by allow_triggering_by_teams ['team_b']"),
        ("team_a:c", ["team_b"], ["team_c"], False, "team_c matches none of allow_triggering_by_teams ['team_b']"),
        ("team_a:c", ["team-marketing-*"], ["team-marketing-eu"], True, "allowed by"),
        ("team_a:c", ["team-marketing-*"], ["team-marketing"], False, "matches none"),
        ("team_a:c", ["*"], ["team_z"], True, "allowed by"),
        ("team_a:c", ["*"], [], True, "team-less producer, allowed by '*'"),
        ("team_a:c", ["team_*"], [], False, "the producer has no team"),
        ("team_a:c", None, [], False, "the producer has no team"),
        ("team_a:c", ["team_b"], ["team_c", "team_b"], True, "allowed by"),
        ("team_a:c", ["Team_B"], ["team_b"], False, "matches none"),  # team names are case-sensitive
    ],
)
def test_may_trigger(consumer, allow, producers, allowed, reason):
    decision = may_trigger(consumer, allow, producers)

    assert decision.allowed is allowed
    assert reason in decision.reason


def test_allow_lists_are_validated_and_normalised():
    assert validate_allow_list(None) is None
    assert validate_allow_list(["team_b", "team-*", "team_b"]) == ["team-*", "team_b"]
    for bad in ("team_b", ["team b"], ["team:b"], [""], ["team_?"], [3], {"team_b": 1}):
        with pytest.raises(AirflowException, match="allow_triggering_by_teams"):
            validate_allow_list(bad)


@pytest.mark.parametrize(
    ("producers", "patterns", "reach", "admitted"),
    [
        (["team_a"], None, ["team_a"], set()),  # the default: its own team
        (["team_a"], ["team_b"], ["team_a", "team_b"], {"team_b"}),
        (["team_a"], ["team_*"], ["team_a", "team_b", "team_c"], {"team_b", "team_c"}),  # the configured teams
        (["team_a"], ["team_x"], ["team_a"], set()),  # a team that is not configured reaches nothing
        (["team_a"], ["*"], ["*"], {"team_b", "team_c"}),  # any team, also those configured later
        ([], None, ["*"], {"team_b", "team_c"}),  # a team-less producer: only the consumers decide
    ],
)
def test_an_event_reaches_the_teams_its_producer_admits(producers, patterns, reach, admitted):
    from airflow.teams.trigger_permissions import consenting_consumers, producer_admits

    assert consenting_consumers(producers, patterns, ["team_a", "team_b", "team_c", "other"]) == reach
    assert {team for team in ("team_b", "team_c")
            if producer_admits(f"{team}:consumer", reach, producers).allowed} == admitted
    assert producer_admits("team_a:consumer", reach, producers).allowed  # its own team, always


def test_an_event_recorded_without_consumer_teams_reaches_its_producing_team_only():
    from airflow.teams.trigger_permissions import producer_admits

    assert producer_admits("team_a:x", None, ["team_a"]).allowed
    assert producer_admits("team_b:x", None, []).allowed  # no producing team: any team
    assert producer_admits("team_b:x", None, ["team_a"]) == (
        False, "no teams it may reach were recorded with the event: it reaches team_a only")


def test_a_refusal_by_the_producer_says_whom_it_admits():
    from airflow.teams.trigger_permissions import producer_admits

    assert producer_admits("team_c:x", ["team_a"], ["team_a"]).reason == (
        "the producer team_a admits no other team (its allow_consuming_by_teams names none)")
    assert producer_admits("team_c:x", ["team_a", "team_b"], ["team_a"]).reason == (
        "the producer team_a admits only team_b (allow_consuming_by_teams)")


@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")  # its DAGs would be left in the worker's database
def test_refused_dataset_triggers_are_counted_and_logged(multi_team, monkeypatch, caplog):
    """The allow lists are read from the fork's own table (airflow.teams.tables), in one query."""
    import pendulum

    from airflow.models.dag import DAG, DagModel
    from airflow.models.dataset import DatasetEvent, DatasetModel
    from airflow.models.log import Log
    from airflow.teams import parsing, tables, triggering
    from airflow.utils.session import create_session

    multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}], "team_b": [{"name": "b", "class": "LocalExecutor"}]})
    for team, name, allow in (("team_a", "consume", None), ("team_b", "consume", None), ("team_b", "open", ["team_*"])):
        with parsing.parsing_for(team):
            DAG(name, schedule=None, start_date=pendulum.datetime(2024, 1, 1), allow_triggering_by_teams=allow).sync_to_db()
    counted = []
    monkeypatch.setattr("airflow.stats.Stats.incr", lambda name, tags=None, **kw: counted.append((name, tags)),
                        raising=False)
    consumers = ["team_a:consume", "team_b:consume", "team_b:open"]
    with create_session() as session:
        dataset = DatasetModel(uri="s3://refused-triggers")
        session.add(dataset)
        session.flush()
        event = DatasetEvent(dataset_id=dataset.id, source_dag_id="team_a:produce")
        session.add(event)
        tables.record_source_teams(event, ["team_a"], ["team_a", "team_b"], session)  # the producer admits team_b
        dags = set(session.query(DagModel).filter(DagModel.dag_id.in_(consumers)))

        allowed = triggering.allowed_consumers(event, dags)
        event_id = event.id
        assert {dag.dag_id for dag in allowed} == {"team_a:consume", "team_b:open"}
        # the audit log row, in the event's transaction: it is kept or lost with the event
        session.flush()
        audited = [(row.dag_id, json.loads(row.extra)) for row in session.query(Log).filter(Log.event == "teams.trigger_denied")]
        assert audited == [("team_b:consume", {
            "team": "team_a", "target_team": "team_b", "object": f"dataset event {event_id} on s3://refused-triggers",
            "reason": "team_a is another team and the DAG sets no allow_triggering_by_teams",
            "dataset_event_id": event_id, "dataset_uri": "s3://refused-triggers", "stage": "queue",
            "producer_team": "team_a", "consumer_dag_id": "team_b:consume",
            "refused_by": "consumer"})]
        assert session.get(DagModel, "team_b:open").allow_triggering_by_teams == ["team_*"]
        session.rollback()
        session.query(DagModel).filter(DagModel.dag_id.in_(consumers)).delete(synchronize_session=False)

    assert counted == [("teams.trigger_denied", {"consumer": "team_b:consume", "kind": "dataset", "stage": "queue",
                                                 "refused_by": "consumer", "refused_team": "team_a",
                                                 "target_team": "team_b"})]
    assert (f"Dataset event {event_id} on s3://refused-triggers from team_a (team_a:produce) may not trigger "
            "team_b:consume") in caplog.text
