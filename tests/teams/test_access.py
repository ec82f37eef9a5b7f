"""Who may trigger whom (airflow.teams.access): pure decisions, no database."""

from __future__ import annotations

import pytest

from airflow.exceptions import AirflowException
from airflow.teams.access import may_trigger, validate_allow_list


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


def test_refused_dataset_triggers_are_counted_and_logged(multi_team, monkeypatch, caplog):
    from dataclasses import dataclass
    from types import SimpleNamespace

    from airflow.teams import triggering

    @dataclass(frozen=True)
    class Dag:
        dag_id: str
        allow_triggering_by_teams: tuple | None

    multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}], "team_b": [{"name": "b", "class": "LocalExecutor"}]})
    counted = []
    monkeypatch.setattr("airflow.stats.Stats.incr", lambda name, tags=None, **kw: counted.append((name, tags)),
                        raising=False)
    event = SimpleNamespace(id=7, uri="s3://x", source_dag_id="team_a:produce", source_teams=None)
    own, closed, open_ = Dag("team_a:consume", None), Dag("team_b:consume", None), Dag("team_b:open", ("team_*",))

    allowed = triggering.allowed_consumers(event, {own, closed, open_})

    assert allowed == {own, open_}
    assert counted == [("teams.trigger_denied", {"consumer": "team_b:consume", "kind": "dataset", "stage": "queue"})]
    assert "Dataset event 7 on s3://x from team_a (team_a:produce) may not trigger team_b:consume" in caplog.text
