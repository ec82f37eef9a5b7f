"""Deserializing builds only exception, trigger and Param classes (patch internal-api-safe-deserialization); a
trigger whose class may not be built here is kept by name (``TriggerReference``) for its team's triggerer."""

from __future__ import annotations

import json

import pytest

from airflow.exceptions import AirflowException, SerializationError
from airflow.serialization.serialized_objects import BaseSerialization


def exception_payload(class_path: str, *args) -> dict:
    return {"__type": "airflow_exc_ser", "__var": {"__type": "dict", "__var": {
        "exc_cls_name": class_path, "args": list(args), "kwargs": {"__type": "dict", "__var": {}}}}}


@pytest.mark.parametrize(("payload", "refused"), [
    (exception_payload("os.system", "touch {ran}"), "os.system is not a BaseException"),
    (exception_payload("subprocess.Popen", ["touch", "{ran}"]), "subprocess.Popen is not a BaseException"),
    ({"__type": "param", "__var": {"__class": "subprocess.Popen", "default": ["touch", "{ran}"]}},
     "subprocess.Popen is not a Param"),
], ids=["exception-os-system", "exception-popen", "param-popen"])
def test_a_payload_naming_another_callable_is_refused_and_nothing_runs(tmp_path, payload, refused):
    ran = tmp_path / "ran"
    payload = json.loads(json.dumps(payload).replace("{ran}", str(ran)))  # the marker's path in the payload

    with pytest.raises(SerializationError, match=refused):
        BaseSerialization.deserialize(payload, use_pydantic_models=True)
    assert not ran.exists()


def trigger_payload(class_path: str, **kwargs) -> dict:
    return {"__type": "base_trigger", "__var": {"__type": "tuple", "__var": [
        class_path, {"__type": "dict", "__var": kwargs}]}}


def test_a_trigger_naming_another_callable_is_kept_by_name_and_nothing_runs(tmp_path):
    from airflow.serialization.safe_classes import TriggerReference

    ran = tmp_path / "ran"
    trigger = BaseSerialization.deserialize(trigger_payload("subprocess.Popen", args=["touch", str(ran)]),
                                            use_pydantic_models=True)

    assert type(trigger) is TriggerReference
    assert trigger.serialize() == ("subprocess.Popen", {"args": ["touch", str(ran)]})
    assert not ran.exists()


def test_a_trigger_of_a_library_this_process_does_not_have_is_kept_by_name():
    """A team's environment may have a provider the internal API's has not: the team's deferral is stored."""
    from airflow.serialization.safe_classes import TriggerReference

    path = "airflow.providers.not_installed_here.triggers.thing.ThingTrigger"
    trigger = BaseSerialization.deserialize(trigger_payload(path, poke_interval=5.0), use_pydantic_models=True)

    assert type(trigger) is TriggerReference
    assert trigger.serialize() == (path, {"poke_interval": 5.0})


def test_what_airflow_serializes_still_comes_back():
    error = BaseSerialization.deserialize(BaseSerialization.serialize(AirflowException("boom")))

    assert type(error) is AirflowException and str(error) == "boom"


# A module on sys.path (as the DAGs, plugins and config folders are) whose import leaves a marker.
MARKER_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")


class PlantedError(Exception):
    pass
"""


@pytest.mark.parametrize("payload", [
    exception_payload("{module}.PlantedError", "x"),
    trigger_payload("{module}.PlantedTrigger"),
    {"__type": "param", "__var": {"__class": "{module}.PlantedParam", "default": 1}},
], ids=["exception", "trigger", "param"])
def test_a_module_that_airflow_has_not_imported_is_not_imported_to_check_the_class(tmp_path, monkeypatch, payload):
    from airflow.serialization.safe_classes import TriggerReference

    module = f"planted_{tmp_path.name.replace('-', '_')}"
    marker = tmp_path / "imported"
    (tmp_path / f"{module}.py").write_text(MARKER_MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    payload = json.loads(json.dumps(payload).replace("{module}", module))

    if payload["__type"] == "base_trigger":  # a team's own trigger class: kept by name, not imported
        assert type(BaseSerialization.deserialize(payload, use_pydantic_models=True)) is TriggerReference
    else:
        with pytest.raises(SerializationError, match=f"{module} is not a module that Airflow has imported or ships"):
            BaseSerialization.deserialize(payload, use_pydantic_models=True)
    assert not marker.exists()


def test_classes_of_airflow_s_own_modules_are_still_built_when_not_yet_imported():
    import sys

    from airflow.triggers.base import BaseTrigger

    sys.modules.pop("airflow.triggers.file", None)  # a trigger module that this process has not imported yet
    trigger = BaseSerialization.deserialize({"__type": "base_trigger", "__var": {"__type": "tuple", "__var": [
        "airflow.triggers.file.FileTrigger", {"__type": "dict", "__var": {"filepath": "/tmp/x"}}]}})

    assert isinstance(trigger, BaseTrigger) and type(trigger).__name__ == "FileTrigger"
