"""``start-airflow --team-users``: each team's dag-processor, triggerer and tasks run as its own Unix user.

On one machine every process of a deployment otherwise runs as one user, and any team's code can read
what that user can: other processes' environments, the PostgreSQL password, other teams' secrets files
and keys. With team users the operating system keeps them apart: a team's user owns its DAG folder, its
secrets files, its home and its log folder (mode 0700), and nothing else of the deployment; the shared
components (scheduler, webserver, internal APIs) run as root and PostgreSQL as ``nobody``, whose files
and processes a team user cannot read.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from teams_breeze.console import BreezeError

# A Python every user can run: a team user cannot reach an interpreter below /root (pyenv, uv).
SHARED_PYTHON = Path("/usr/bin/python3.11")
# Task logs below a folder per team, which only the team's user can enter (the webserver reads as root).
LOG_FILENAME_TEMPLATE = (
    "team={{ ti.dag_id.split(':')[0] }}/dag_id={{ ti.dag_id }}/run_id={{ ti.run_id }}/task_id={{ ti.task_id }}/"
    "{% if ti.map_index >= 0 %}map_index={{ ti.map_index }}/{% endif %}attempt={{ try_number }}.log"
)


@dataclass(frozen=True)
class TeamUser:
    team: str
    name: str
    uid: int
    gid: int
    home: Path

    def popen_args(self) -> dict:
        """Popen's arguments to run a process as this user, its group and no other group."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def user_name(team: str) -> str:
    return f"airflow-{team}"


def check_can_create() -> None:
    if os.geteuid() != 0:
        raise BreezeError("--team-users creates and switches to a Unix user per team: run it as root")
    if not os.access(SHARED_PYTHON, os.X_OK):
        raise BreezeError(f"--team-users needs a Python 3.11 every user can run at {SHARED_PYTHON} "
                          "(apt-get install python3.11)")


def ensure(team: str, homes: Path) -> TeamUser:
    """The team's user (created if missing, a system user with its own group and no login) and its home."""
    name = user_name(team)
    home = homes / team
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(home),
             "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True)
        _check(result, f"useradd {name}")
        entry = pwd.getpwnam(name)
    if entry.pw_dir != str(home):  # made by another AIRFLOW_HOME: its tasks' HOME is the user's home
        _check(subprocess.run(["usermod", "--home", str(home), name], capture_output=True, text=True),
               f"usermod --home {home} {name}")
    user = TeamUser(team, name, entry.pw_uid, entry.pw_gid, home)
    home.mkdir(parents=True, exist_ok=True)
    give(home, user)
    return user


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise BreezeError(f"{what} failed: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")


def give(path: Path, user: TeamUser) -> None:
    """Make ``path`` (a folder, and all below it) the user's own: folders 0700, files 0600."""
    for folder, _, files in os.walk(path):
        shutil.chown(folder, user.uid, user.gid)
        os.chmod(folder, 0o700)
        for name in files:
            file = os.path.join(folder, name)
            shutil.chown(file, user.uid, user.gid)
            os.chmod(file, 0o600)


def check_can_run(user: TeamUser, python: Path) -> None:
    """Refuse, in one line, an environment the team's user cannot run (e.g. a checkout below /root)."""
    result = subprocess.run([str(python), "-c", "import airflow"], capture_output=True, text=True,
                            cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": str(user.home)}, **user.popen_args())
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BreezeError(f"{user.name} cannot run {python} ({reason}): every folder above it must be "
                          "searchable by other users")


def shared_config(home: Path, python: str) -> Path:
    """A configuration file every user can read: Airflow's defaults, every option commented out.

    The settings come from the environment, which only each process's own user can read. Airflow needs
    a readable file with its sections (``conf.set`` fails without them); ``airflow.cfg``, which Airflow
    generates with random keys, stays readable by root only."""
    path = home / "airflow-shared.cfg"
    if not path.exists():
        with tempfile.TemporaryDirectory() as scratch:  # where the command may write its own airflow.cfg
            result = subprocess.run([python, "-m", "airflow", "config", "list", "--defaults"], capture_output=True,
                                    text=True, env={"PATH": os.environ["PATH"], "AIRFLOW_HOME": scratch})
        if result.returncode != 0:
            raise BreezeError(f"airflow config list --defaults failed: {result.stderr.strip()[-300:]}")
        lines = [line for line in result.stdout.splitlines() if not re.match(r"\[\d{4}-", line)]  # log lines
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)
    return path
