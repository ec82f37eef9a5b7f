"""docs/teams-by-hand.md works as written: its ``bash`` blocks, run in order as a reader would run them.

The page is the test's script. Each ``bash`` block runs in its own ``bash`` (``set -euo pipefail``) that
starts with what the previous blocks exported, as in one interactive shell; the components a block starts
in the background keep running. A ``<!-- by-hand-test: ... -->`` comment on the line before a block says
how to run it:

- ``skip``: not run. ``skip settings`` marks the block of variables the reader sets; the test sets
  exactly those names itself (a real PostgreSQL, the wheels of ``dist/``, free ports).
- ``expect="text"`` (any number): the block's output must contain each text.
- ``retry=SECONDS``: run again until it exits 0 with every expected text, for at most that long; for
  checks of what the components do asynchronously.
- ``stop``: the block that stops the components; the test also runs it in ``finally`` if the page did
  not get that far, then kills by pid whatever is left with the page's AIRFLOW_HOME in its environment.

The ``sql`` block runs with ``psql`` as the superuser of the test's PostgreSQL, and the page's database
URL, pointed at that server, is the one the test gives the page.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from teams_breeze import environment
from teams_breeze.services import PostgresServer, free_port, poll

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "teams-by-hand.md"
DIST = REPO_ROOT / "dist"
CONSTRAINTS = REPO_ROOT / "constraints" / "constraints-3.11.txt"
# uv keeps a wheel file's unpacked contents by its path, and installs them as hard links: a venv installed
# from dist/ (``.build/venv``) that is edited in place changes what uv installs from that path. The test
# installs from copies at a path of its own, extracted afresh whenever dist/ changes.
WHEEL_COPIES = Path(tempfile.gettempdir()) / "airflow-teams-by-hand-wheels"

FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"^<!--\s*by-hand-test:(.*?)-->$")
BLOCK_TIMEOUT = 300  # seconds for one run of one block (the install is the longest)
STOP_TIMEOUT = 90  # seconds for the components to exit after the page's stop block


@dataclass
class Block:
    language: str
    text: str
    line: int
    options: list[str] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)
    retry: float = 0

    @property
    def skip(self) -> bool:
        return "skip" in self.options

    @property
    def stop(self) -> bool:
        return "stop" in self.options

    def __str__(self) -> str:
        return f"the {self.language} block at docs/teams-by-hand.md:{self.line}"


def page_blocks() -> list[Block]:
    text = PAGE.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = [line for line in text[: match.start()].splitlines() if line.strip()]
        block = Block(match.group(1), match.group(2), text.count("\n", 0, match.start()) + 1)
        marker = MARKER.match(before[-1].strip()) if before else None
        for token in shlex.split(marker.group(1)) if marker else []:
            key, _, value = token.partition("=")
            if key == "expect":
                block.expect.append(value)
            elif key == "retry":
                block.retry = float(value)
            else:
                block.options.append(token)
        blocks.append(block)
    return blocks


def exported_names(block: Block) -> set[str]:
    names = set()
    for line in block.text.splitlines():
        if line.startswith("export "):
            names.update(word.split("=", 1)[0] for word in shlex.split(line, comments=True)[1:])
    return names


class Shell:
    """Runs blocks as one bash session would: each sees the variables the blocks before it exported."""

    def __init__(self, directory: Path, env: dict[str, str]):
        self.directory = directory
        self.directory.mkdir()
        self.env = env
        self.state = directory / "exported.sh"
        self.runs = 0

    def run(self, block: Block, prelude: str = "") -> tuple[int | None, str]:
        """Run ``block``; its exit code (None: timed out, its process group killed) and its output."""
        self.runs += 1
        script = self.directory / f"{self.runs:03d}.sh"
        output = self.directory / f"{self.runs:03d}.out"
        after = self.directory / f"{self.runs:03d}.exported.sh"
        script.write_text(
            "set -euo pipefail\n"
            + (f"source {shlex.quote(str(self.state))}\n" if self.state.exists() else "")
            + prelude
            + block.text
            + f"\nexport -p > {shlex.quote(str(after))}\n"
        )
        with output.open("w") as out:
            # A session of its own: what the block starts in the background is not in pytest's group.
            process = subprocess.Popen(
                ["bash", str(script)],
                cwd=self.directory,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            code: int | None = process.wait(BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
        if code == 0:
            after.replace(self.state)
        return code, output.read_text()


def processes_with_home(home: Path) -> list[int]:
    """The pids of the processes whose environment has ``AIRFLOW_HOME=<home>``: what the page started."""
    needle = b"\0AIRFLOW_HOME=" + str(home).encode() + b"\0"
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in b"\0" + environ:
                pids.append(int(entry.name))
    return pids


def kill_leftovers(home: Path) -> list[str]:
    """SIGKILL what the page started and is still there; their command lines."""
    left = []
    for pid in processes_with_home(home):
        try:
            left.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass
    poll(lambda: not processes_with_home(home), 10, 0.2)
    return left


def component_logs(home: Path) -> str:
    logs = sorted((home / "logs").glob("*.out")) if (home / "logs").is_dir() else []
    tails = []
    for log in logs:
        lines = log.read_text(errors="replace").splitlines()[-15:]
        tails.append(f"--- {log.name} (last lines)\n" + "\n".join(lines))
    return "\n".join(tails)


def copy_wheels() -> Path:
    wheels = sorted(DIST.glob("*.whl"))
    if not wheels:
        pytest.fail("dist/ has no wheels of the fork; run ./breeze setup first")
    WHEEL_COPIES.mkdir(exist_ok=True)
    for stale in set(WHEEL_COPIES.glob("*.whl")) - {WHEEL_COPIES / wheel.name for wheel in wheels}:
        stale.unlink()
    for wheel in wheels:
        copy = WHEEL_COPIES / wheel.name
        if (
            not copy.exists()
            or copy.stat().st_mtime_ns != wheel.stat().st_mtime_ns
            or copy.stat().st_size != wheel.stat().st_size
        ):
            shutil.copy2(wheel, copy)
    return WHEEL_COPIES


def distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def create_database(server: PostgresServer, sql: str) -> None:
    result = subprocess.run(
        [
            str(server.bin / "psql"),
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--username",
            "postgres",
            "--dbname",
            "postgres",
            "--set",
            "ON_ERROR_STOP=1",
            "--file",
            "-",
        ],
        input=sql,
        capture_output=True,
        text=True,
        env=os.environ | {"PGPASSWORD": server.password or ""},
    )
    assert result.returncode == 0, f"the page's SQL failed:\n{result.stdout}{result.stderr}"


def successful_runs(url: str) -> set[tuple[str, str]]:
    import psycopg2

    with psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://")) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT dag_id, state FROM dag_run")
            rows = set(cursor.fetchall())
    connection.close()
    return rows


def test_the_page_deploys_two_teams():
    blocks = page_blocks()
    bash = [block for block in blocks if block.language == "bash"]
    settings = [block for block in bash if "settings" in block.options]
    sql = [block for block in blocks if block.language == "sql"]
    stop = [block for block in bash if block.stop]
    assert len(settings) == 1, "the page needs one block of settings"
    assert len(sql) == 1, "the page needs one sql block"
    assert len(stop) == 1, "the page needs one stop block"
    settings_block, sql_block, stop_block = settings[0], sql[0], stop[0]
    # What the test checks through the page: alice (team_a) sees only team_a's DAG, team_b's is refused.
    expected = {text for block in bash for text in block.expect}
    assert {"['team_a:hello']", "403", "['team_a:hello', 'team_b:hello']"} <= expected

    page_url = re.search(r"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=(\S+)", settings_block.text).group(1)
    assert page_url.startswith("postgresql+psycopg2://")

    uv = environment.uv()
    if shutil.which(uv) is None:
        pytest.fail(f"no uv ({uv}); run ./breeze setup")

    root = Path(tempfile.mkdtemp(prefix="teams-by-hand-"))
    root.chmod(0o755)  # PostgreSQL runs as 'nobody' under root and keeps its data below this directory
    home = root / "airflow"
    tools = root / "tools"
    tools.mkdir()
    (tools / "uv").symlink_to(shutil.which(uv))  # uv alone on PATH (its own folder is a venv with a python)

    server = PostgresServer(root / "postgres" / "data")
    stopped = False
    shell = None
    try:
        server.start()
        create_database(server, sql_block.text)
        url = re.sub(r"@[^/@]+/", f"@127.0.0.1:{server.port}/", page_url)
        given = {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "WHEELS": str(copy_wheels()),
            "CONSTRAINTS": str(CONSTRAINTS),
        }
        ports = ("WEB_PORT", "SCHEDULER_LOG_PORT", "TEAM_A_TRIGGERER_LOG_PORT", "TEAM_B_TRIGGERER_LOG_PORT")
        given.update(zip(ports, map(str, distinct_free_ports(len(ports)))))
        assert exported_names(settings_block) == set(given), (
            "the page's settings differ from what the test sets"
        )
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "_AIRFLOW", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"))
        }
        # Offline, from uv's cache: the install block runs once more with network access if that fails.
        env.update(given, PATH=f"{tools}:{env['PATH']}", UV_PYTHON_DOWNLOADS="never", UV_OFFLINE="1")
        shell = Shell(root / "shell", env)

        for block in bash:
            if block.skip:
                continue
            started = time.monotonic()
            last: list[tuple[int | None, str]] = []

            def attempt(block=block, last=last) -> bool:
                code, output = shell.run(block)
                if code != 0 and "uv pip install" in block.text:
                    print(f"{block}: exit {code} offline; once more with uv's network access")
                    code, output = shell.run(block, prelude="unset UV_OFFLINE\n")
                last[:] = [(code, output)]
                return code == 0 and all(text in output for text in block.expect)

            ok = poll(attempt, block.retry, 2) if block.retry else attempt()
            code, output = last[0]
            print(f"{block}: exit {code} in {time.monotonic() - started:.1f}s")
            assert ok, (
                f"{block} failed (exit code {code}"
                + (f", retried for {block.retry:.0f}s" if block.retry else "")
                + f"; expected {block.expect}):\n{block.text}\n--- its output (last lines)\n"
                + "\n".join(output.splitlines()[-40:])
                + "\n"
                + component_logs(home)
            )
            if block.stop:
                stopped = True
                assert poll(lambda: not processes_with_home(home), STOP_TIMEOUT, 0.5), (
                    f"still running {STOP_TIMEOUT}s after {block}: {kill_leftovers(home)}"
                )
                print(
                    f"every process of the page exited {time.monotonic() - started:.1f}s after the stop block began"
                )

        assert stopped, "the page's stop block did not run"
        runs = successful_runs(url)
        assert {("team_a:hello", "success"), ("team_b:hello", "success")} <= runs, runs
    finally:
        if not stopped and shell is not None and shell.state.exists():
            shell.run(stop_block)
            poll(lambda: not processes_with_home(home), STOP_TIMEOUT, 0.5)
        try:
            kill_leftovers(home)
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
