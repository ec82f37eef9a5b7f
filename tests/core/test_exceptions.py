"""`import airflow` does not load the Kubernetes client (patch lazy-kubernetes-exceptions)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pytest


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_airflow_does_not_import_kubernetes():
    assert run_python("""
        import sys
        import airflow, airflow.exceptions, airflow.models
        print(sorted(m for m in sys.modules if m == "kubernetes" or m.startswith("airflow.providers.cncf")))
    """) == "[]"


def test_names_resolve_to_the_providers_classes_when_it_is_installed():
    from airflow.exceptions import PodMutationHookException, PodReconciliationError
    from airflow.providers.cncf.kubernetes import exceptions as provider

    assert PodMutationHookException is provider.PodMutationHookException
    assert PodReconciliationError is provider.PodReconciliationError
    with pytest.raises(PodMutationHookException):
        raise provider.PodMutationHookException("raised by the provider, caught through airflow.exceptions")


def test_fallback_classes_without_the_provider():
    output = run_python("""
        import pickle, sys
        sys.modules["airflow.providers.cncf.kubernetes"] = None  # as if the provider were not installed
        from airflow.exceptions import AirflowException, PodMutationHookException
        import airflow.exceptions as exceptions
        error = pickle.loads(pickle.dumps(PodMutationHookException("boom")))
        print(issubclass(PodMutationHookException, AirflowException), PodMutationHookException.__module__,
              type(error) is PodMutationHookException, exceptions.PodReconciliationError.__name__)
    """)

    assert output == "True airflow.exceptions True PodReconciliationError"


def test_unknown_attribute_still_raises_attribute_error():
    import airflow.exceptions

    with pytest.raises(AttributeError, match="has no attribute 'NoSuchException'"):
        airflow.exceptions.NoSuchException  # noqa: B018
    assert pickle.loads(pickle.dumps(airflow.exceptions.AirflowException("x"))).args == ("x",)
