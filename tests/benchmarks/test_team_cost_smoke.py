"""``benchmarks/team_cost.py`` at its smallest: one team, the isolated fork next to one vanilla deployment.

A smoke test of the benchmark, not of the numbers: it checks that both deployments come up, are
measured and stopped, and that the report has every field with sane values (processes and PSS above
zero, the roles of each side, the internal API's RPC counts). No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "team_cost.py"
COMMON_ROLES = {"scheduler", "webserver", "dag-processor", "triggerer", "serve-logs", "postgres"}


def test_team_cost_smallest_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--teams-list", "1", "--sides", "fork-isolated,vanilla",
         "--window", "10", "--settle", "3", "--out", str(tmp_path)],
        env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=540,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-6000:]}"

    report = json.loads((tmp_path / "team_cost.json").read_text())
    assert report["machine"]["cpus"] >= 1 and report["machine"]["ram_gib"] > 0 and report["date"]
    sides = {r["side"]: r for r in report["results"]}
    assert set(sides) == {"fork-isolated", "vanilla"}
    for side, r in sides.items():
        assert r["teams"] == 1
        assert r["processes"] > 0 and r["pss_mb"] > 0, side
        assert r["cpu_s_per_min"] >= 0 and r["time_to_healthy_s"] > 0 and r["window_s"] > 0, side
        assert r["left_after_stop"] == 0, side
        assert COMMON_ROLES <= set(r["roles"]), (side, sorted(r["roles"]))
        assert sum(role["processes"] for role in r["roles"].values()) == r["processes"]
        for role in ("scheduler", "webserver", "dag-processor", "triggerer", "postgres"):
            assert r["roles"][role]["processes"] >= 1 and r["roles"][role]["pss_mb"] > 0, (side, role)
        assert r["process_detail"] and all(d["role"] for d in r["process_detail"])

    isolated = sides["fork-isolated"]
    assert isolated["roles"]["internal-api"]["processes"] >= 2  # gunicorn master and workers (no CLI monitor)
    # an idle team's LocalExecutor has no process; vanilla's starts parallelism workers and a manager
    assert "local-executor" not in isolated["roles"] and sides["vanilla"]["roles"]["local-executor"]["processes"] > 1
    assert "launcher" in isolated["roles"] and "internal-api" not in sides["vanilla"]["roles"]
    api = isolated["internal_api"]["team_01"]
    # An idle team's dag-processor and triggerer call their internal API (heartbeats at least).
    assert api["rpc_calls"] > 0 and api["rpc_failed"] == 0 and api["access_lines_per_min"] > 0
    assert any(method.startswith("airflow.") for method in api["methods_per_min"])

    ratio = next(r for r in report["ratios"] if r["ratio"] == "fork-isolated/vanilla")
    assert ratio["processes"] > 0 and ratio["pss_mb"] > 0
    table = (tmp_path / "team_cost.md").read_text()
    assert "| 1 | fork-isolated |" in table and "| 1 | vanilla |" in table and "fork-isolated/vanilla" in table
