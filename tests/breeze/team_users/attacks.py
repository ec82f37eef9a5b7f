"""team_a's attacks (``start-airflow --team-users`` test): run at parse time, in a task and in a trigger.

Each attempt tries one way across the local perimeter and records what happened; the test reads the
records from team_a's home. ``HOME_DIR`` and ``DAGS_DIR`` are set by the test when it copies this file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

HOME_DIR = "@AIRFLOW_HOME@"
DAGS_DIR = "@DAGS_FOLDER@"


def _read(path: Path) -> str:
    if path.is_dir():
        return f"listed {len(os.listdir(path))} entries"
    return f"read {len(path.read_bytes())} bytes"


def _try(action) -> str:
    try:
        return action()
    except OSError as err:  # PermissionError, and psycopg2's errors below are turned into this
        return f"refused: {type(err).__name__}: {err.strerror or err}"


def _postgres(**kwargs) -> str:
    import psycopg2

    try:
        psycopg2.connect(dbname="airflow", user="postgres", connect_timeout=5, **kwargs).close()
    except psycopg2.OperationalError as err:  # its first line says why (the others are hints)
        return f"refused: {str(err).strip().splitlines()[0]}"
    return "connected"


def attempts() -> dict[str, str]:
    home, dags = Path(HOME_DIR), Path(DAGS_DIR)
    found = {
        "own secrets file": _try(lambda: _read(home / "secrets" / "team_a" / "variables.json")),
        "own environment": _try(lambda: _read(Path("/proc/self/environ"))),
    }
    for name in ("postgres.password", "fernet.key", "webserver_secret_key", "airflow-cli.env",
                 "internal_api_secret_key_team_a", "internal_api_secret_key_team_b",
                 "secrets/team_b/connections.json", "secrets/team_b", "team-homes/team_b", "logs/team=team_b",
                 "postgres"):
        found[f"file {name}"] = _try(lambda name=name: _read(home / name))
    found["file team_b's DAG folder"] = _try(lambda: _read(dags / "team_b"))
    found["file team_b's plugins folder"] = _try(lambda: _read(home / "plugins" / "team_b"))
    port = int(json.loads((home / "start-airflow.json").read_text())["postgres_port"])
    found["postgres socket"] = _postgres(host=str(home / "postgres"), port=port)
    found["postgres tcp without password"] = _postgres(host="127.0.0.1", port=port)
    me = os.getuid()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if owner != me and ("airflow" in title or "gunicorn" in title or "postgres" in title):
            found[f"environ of {pid} ({title.strip()[:60]})"] = _try(lambda pid=pid: _read(Path(f"/proc/{pid}/environ")))
            found[f"cmdline of {pid}"] = title
    found["uid"] = str(me)
    return found


def record(where: str) -> dict[str, str]:
    """Run the attempts and write them to team_a's home (which only team_a's user, and root, can read)."""
    found = attempts()
    (Path(os.environ["HOME"]) / f"attacks-{where}.json").write_text(json.dumps(found, indent=1))
    return found


try:
    from airflow.models.baseoperator import BaseOperator
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    class AttackTrigger(BaseTrigger):
        def serialize(self):
            return "team_a.attacks.AttackTrigger", {}

        async def run(self):
            record("trigger")
            yield TriggerEvent("done")

    class DeferToAttackTrigger(BaseOperator):
        def execute(self, context):
            self.defer(trigger=AttackTrigger(), method_name="done")

        def done(self, context, event=None):
            return event
except ImportError:  # imported by something without Airflow
    pass
