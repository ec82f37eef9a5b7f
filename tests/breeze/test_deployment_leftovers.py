"""A test module's deployments stop with the module, also when the fixture that started them failed."""

from __future__ import annotations

import signal
import subprocess

from tests.test_utils.deployment import Deployment, stop_leftover_processes


def test_a_deployment_whose_fixture_failed_is_stopped_with_the_module(tmp_path):
    deployment = Deployment(tmp_path, "postgresql://nobody@127.0.0.1:1/none")
    # what a fixture had started when its next step raised, before it reached ``yield``
    sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
    deployment.processes["sleeper"] = sleeper

    stop_leftover_processes()  # what tests/conftest.py calls when the module ends

    assert sleeper.poll() == -signal.SIGTERM
    assert deployment.processes == {}
