"""Redacting a log record does not import the kubernetes client; a V1EnvVar is still redacted (patch secrets-masker-no-kubernetes-import)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import logging, sys
from airflow.utils.log.secrets_masker import redact
logging.getLogger("probe").warning("parsed %s files in %s", 3, {"password": "hunter2"})
assert redact({"password": "hunter2"}) == {"password": "***"}
print("kubernetes" in sys.modules)
from kubernetes.client import V1EnvVar
print(redact(V1EnvVar(name="password", value="hunter2")))
print(redact([V1EnvVar(name="user", value="ann")]))
"""


def test_redacting_does_not_import_kubernetes_and_still_redacts_its_env_vars(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=tmp_path)
    imported, password, user = result.stdout.splitlines()[-3:]

    assert imported == "False"
    assert "'value': '***'" in password and "hunter2" not in password
    assert "'value': 'ann'" in user
