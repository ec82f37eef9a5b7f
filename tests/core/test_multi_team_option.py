"""`[core] multi_team` (patch core-multi-team-option): declared, documented, off by default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIRFLOW, *args], capture_output=True, text=True, env=os.environ | env)


def test_default_is_false_without_warnings():
    result = airflow("config", "get-value", "core", "multi_team")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert "not found in config" not in result.stderr


def test_environment_variable_turns_it_on():
    result = airflow("config", "get-value", "core", "multi_team", AIRFLOW__CORE__MULTI_TEAM="True")

    assert result.stdout.strip() == "True"


def test_config_list_shows_the_option_with_its_description():
    result = airflow("config", "list", "--section", "core", "--include-descriptions", "--color", "off")

    assert result.returncode == 0, result.stderr
    assert "multi_team = False" in result.stdout
    assert "AIP-67 multi-team mode" in result.stdout


def test_option_is_a_declared_boolean():
    from airflow.configuration import conf

    assert conf.getboolean("core", "multi_team") is False
    assert conf.configuration_description["core"]["options"]["multi_team"]["type"] == "boolean"


def test_malformed_value_names_the_option():
    from airflow.configuration import conf
    from airflow.exceptions import AirflowConfigException

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__MULTI_TEAM", "maybe")
        with pytest.raises(AirflowConfigException, match=r'"multi_team" key in "core" section. Current value: "maybe"'):
            conf.getboolean("core", "multi_team")
