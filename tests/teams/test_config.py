"""Parsing and validating the multi-team configuration (airflow.teams.config): each mistake, its message."""

from __future__ import annotations

import json

import pytest

from airflow.teams import config


def parse(value) -> dict:
    raw = value if isinstance(value, str) else json.dumps(value)
    return dict(config.parse_executor_config(raw))


def test_parses_teams_executors_and_their_configuration():
    teams = parse({
        "team_a": [
            {"name": "a_celery", "class": "CeleryExecutor", "config": {"Celery": {"BROKER_URL": "redis://a", "x": 1}}},
            {"name": "a_local", "class": "LocalExecutor"},
        ],
        "team_b": [{"name": "b_local", "class": "my.module.Executor"}],
    })

    assert list(teams) == ["team_a", "team_b"]
    celery, local = teams["team_a"]
    assert (celery.team, celery.name, celery.class_name) == ("team_a", "a_celery", "CeleryExecutor")
    assert celery.config == {"celery": {"broker_url": "redis://a", "x": "1"}}
    assert local.config == {}
    assert teams["team_b"][0].class_name == "my.module.Executor"


@pytest.mark.parametrize(
    "value, message",
    [
        ("LocalExecutor", "'LocalExecutor', a single-team executor list, but [core] multi_team is True"),
        ('{"team_a": [', "[core] executor is not valid JSON (Expecting value at line 1, column 13)"),
        ({}, "[core] executor configures no team"),
        ({"ab": [{"name": "x", "class": "LocalExecutor"}]}, "invalid team name 'ab': team names are 3 to 50"),
        ({"DAG": [{"name": "x", "class": "LocalExecutor"}]}, "invalid team name 'DAG': 'DAG' is reserved"),
        ({"team_a": []}, "team 'team_a' needs a non-empty list of executors"),
        ({"team_a": "LocalExecutor"}, "team 'team_a' needs a non-empty list of executors"),
        ({"team_a": ["LocalExecutor"]}, "team 'team_a', executor #1 must be an object with 'name' and 'class'"),
        ({"team_a": [{"name": "x", "class": "LocalExecutor", "queue": "q"}]},
         "team 'team_a', executor #1 has unknown key(s) 'queue'; allowed: name, class, config"),
        ({"team_a": [{"class": "LocalExecutor"}]}, "executor #1 needs a non-empty string 'name'"),
        ({"team_a": [{"name": "x", "class": ""}]}, "executor #1 needs a non-empty string 'class'"),
        ({"team_a": [{"name": "a:b", "class": "LocalExecutor"}]}, "executor name 'a:b' may not contain"),
        ({"team_a": [{"name": "x", "class": "LocalExecutor", "config": {"core": "x"}}]},
         "'config' must map sections to objects of options"),
        ({"team_a": [{"name": "x", "class": "LocalExecutor", "config": {"core": {"k": [1]}}}]},
         "config [core] k must be a string, number or boolean"),
        ({"team_a": [{"name": "x", "class": "LocalExecutor"}], "team_b": [{"name": "x", "class": "LocalExecutor"}]},
         "executor name 'x' is used by team 'team_a' and team 'team_b'"),
        ('{"team_a": [{"name": "x", "class": "LocalExecutor"}], "team_a": []}', "'team_a' appears twice"),
        ({"team_a": [{"name": "x", "class": "LocalExecutor"}], "TEAM_A": [{"name": "y", "class": "LocalExecutor"}]},
         "teams 'team_a' and 'TEAM_A' differ only in case"),
        ({"team_a": [{"name": "x", "class": "CeleryKubernetesExecutor"}]},
         "CeleryKubernetesExecutor cannot be used in multi-team mode; configure its two executors as two entries"),
        ({"team_a": [{"name": "a", "class": "LocalExecuter"}]},
         "class 'LocalExecuter' is neither a core executor (CeleryExecutor, "),
        ({"team_a": [{"name": "a", "class": "my executors.Local"}]}, "nor a dotted path to an executor class"),
    ],
)
def test_each_mistake_has_one_clear_message_naming_the_option(value, message):
    with pytest.raises(config.TeamsConfigError) as err:
        parse(value)

    assert message in str(err.value)
    assert "[core] executor" in str(err.value)


def test_a_multi_team_dict_is_refused_while_multi_team_is_off():
    config.check_single_team_executor_value("LocalExecutor,CeleryExecutor")
    with pytest.raises(config.TeamsConfigError, match=r"JSON object \(the multi-team format\), but \[core\] multi_team is False"):
        config.check_single_team_executor_value(' {"team_a": []}')


def test_team_folders_default_below_the_dags_folder_and_can_be_overridden(multi_team, monkeypatch, tmp_path):
    dags = multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}],
                       "team_b": [{"name": "b", "class": "LocalExecutor"}]})
    monkeypatch.setenv("AIRFLOW__TEAM_B___CORE__DAGS_FOLDER", f"{tmp_path}/b1, {tmp_path}/b2")

    teams = config.load()

    assert teams.team("team_a").dags_folders == (str(dags / "team_a"),)
    assert teams.team("team_b").dags_folders == (f"{tmp_path}/b1", f"{tmp_path}/b2")
    assert teams.team_for_path(str(dags / "team_a" / "sub" / "etl.py")) == "team_a"
    assert teams.team_for_path(f"{tmp_path}/b2/etl.py") == "team_b"
    assert teams.team_for_path(str(dags / "team_a_old" / "etl.py")) is None
    assert teams.team_for_path(str(dags / "etl.py")) is None
    with pytest.raises(config.UnknownTeamError, match="Unknown team 'team_c'.*teams team_a, team_b"):
        teams.team("team_c")


def test_overlapping_team_folders_are_refused(multi_team, monkeypatch):
    dags = multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}],
                       "team_b": [{"name": "b", "class": "LocalExecutor"}]})
    monkeypatch.setenv("AIRFLOW__TEAM_B___CORE__DAGS_FOLDER", str(dags / "team_a" / "b"))

    with pytest.raises(config.TeamsConfigError, match="The DAG folders of teams 'team_a'.*and 'team_b'.*overlap"):
        config.load()


def test_team_conf_reads_executor_then_team_then_global_configuration(multi_team, monkeypatch):
    from airflow.configuration import conf

    multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}]})
    monkeypatch.setenv("AIRFLOW__CELERY__WORKER_CONCURRENCY", "1")
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", "redis://global")
    monkeypatch.setenv("AIRFLOW__TEAM_A___CELERY__BROKER_URL", "redis://team")
    monkeypatch.setenv("AIRFLOW__TEAM_A___CELERY__SSL_ACTIVE", "true")
    conf.add_section("team_a=celery")
    conf.set("team_a=celery", "worker_concurrency", "2")
    try:
        team = config.TeamConf("team_a")
        executor = config.TeamConf("team_a", {"celery": {"broker_url": "redis://executor"}})
        other = config.TeamConf("team_b")

        assert team.get("celery", "broker_url") == "redis://team"
        assert executor.get("celery", "broker_url") == "redis://executor"
        assert other.get("celery", "broker_url") == "redis://global"
        assert team.getint("celery", "worker_concurrency") == 2
        assert other.getint("celery", "worker_concurrency") == 1
        assert team.getboolean("celery", "ssl_active") is True
        assert team.get("celery", "not_an_option", fallback="fb") == "fb"
        assert team.has_option("celery", "broker_url")
        section = executor.getsection("celery")
        assert section["broker_url"] == "redis://executor" and section["worker_concurrency"] == "2"
    finally:
        conf.remove_section("team_a=celery")


def test_team_conf_supports_cmd_and_secret_forms_for_sensitive_options(multi_team, monkeypatch):
    from airflow.providers_manager import ProvidersManager

    ProvidersManager().initialize_providers_configuration()  # the celery provider declares broker_url sensitive
    multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}]})
    monkeypatch.setenv("AIRFLOW__TEAM_A___CELERY__BROKER_URL_CMD", "printf redis://from-command")

    assert config.TeamConf("team_a").get("celery", "broker_url") == "redis://from-command"
    executor = config.TeamConf("team_a", {"celery": {"result_backend_cmd": "printf db+postgresql://x"}})
    assert executor.get("celery", "result_backend") == "db+postgresql://x"
    # Not a sensitive option: the _cmd form is ignored, as Airflow does globally.
    monkeypatch.setenv("AIRFLOW__TEAM_A___CORE__PARALLELISM_CMD", "echo 3")
    assert config.TeamConf("team_a").team_value("core", "parallelism") is None


def test_the_scheduler_warns_of_settings_of_no_team_and_of_missing_team_folders(multi_team, monkeypatch, caplog):
    from airflow.teams import cli, reload_configuration

    local = [{"name": "x", "class": "LocalExecutor"}]
    dags = multi_team({"team_a": local, "team_b": [{"name": "y", "class": "LocalExecutor"}]})
    monkeypatch.setenv("AIRFLOW__TEAM_Z___CORE__DEFAULT_POOL", "team_z:default")  # no team_z
    monkeypatch.setenv("AIRFLOW__TEAM_B___CORE__DAGS_FOLDER", str(dags / "moved"))
    reload_configuration()

    cli.warn_about_team_settings()

    assert [record.getMessage() for record in caplog.records if record.name == "airflow.teams.cli"] == [
        "Settings of no configured team (team_a, team_b) are ignored: AIRFLOW__TEAM_Z___CORE__DEFAULT_POOL. "
        "Fix the team name, or add the team to [core] executor.",
        f"The DAG folder {dags / 'moved'} of team 'team_b' does not exist: its dag-processor will not start. "
        "Create it, or set AIRFLOW__TEAM_B___CORE__DAGS_FOLDER.",
    ]
