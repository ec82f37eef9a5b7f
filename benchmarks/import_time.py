#!/usr/bin/env python3
"""Import-time benchmark: the patched build (.build/venv) side by side with vanilla Airflow.

The fork's ``lazy-kubernetes-exceptions`` patch stops ``airflow/exceptions.py`` from importing
``airflow.providers.cncf.kubernetes.pod_generator`` (and with it the kubernetes client) when
``airflow`` is imported. This script measures what that is worth against the upstream release:

* it creates (or reuses, when its stamp still matches) a vanilla environment in
  ``.build/vanilla-venv`` holding every dist pinned in fork.toml, from PyPI, at the pinned
  version, plus ``dev/requirements/runtime.txt``, all under the fork's constraints file, on the
  same interpreter as ``.build/venv`` -- so, for ``import airflow``, the only difference between
  the two is our patches (.build/venv also holds the test requirements and teams_breeze, which
  ``import airflow`` does not load);
* it runs ``python -c "import airflow"`` and ``airflow version`` in fresh processes, one warm-up
  run per environment and then N timed runs each, alternating vanilla and fork run by run so
  that drift of the machine affects both alike; each process gets a private temporary
  AIRFLOW_HOME, AIRFLOW__CORE__LOAD_EXAMPLES=False and no other AIRFLOW__ variables;
* as a supplementary row it times the ``import airflow`` statement alone inside the process
  (same protocol), i.e. without the interpreter's fixed start-up and shut-down costs;
* it checks whether ``import airflow`` loads the kubernetes client in each environment;
* it prints medians, minimums and the vanilla/fork ratio, and optionally writes them as JSON.

The two main rows are wall-clock times of the whole child process, as a user sees them. The
script reports numbers; it never fails because a result is slow. It exits non-zero only on errors
(missing environment, failed install, a command that fails). Standard library only; Python 3.11+.

Usage: python3 benchmarks/import_time.py [--runs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    sys.exit("benchmarks/import_time.py needs Python 3.11 or newer (it reads fork.toml with tomllib)")

ROOT = Path(__file__).resolve().parent.parent
FORK_TOML = ROOT / "fork.toml"
FORK_VENV = ROOT / ".build" / "venv"
VANILLA_VENV = ROOT / ".build" / "vanilla-venv"
RUNTIME_REQUIREMENTS = "dev/requirements/runtime.txt"
INSTALL_BUILD_CONSTRAINTS = "constraints/build/install.txt"
STAMP_NAME = ".import-benchmark-installed"
# Bump when the way the vanilla environment is installed changes, so existing ones are rebuilt.
RECIPE_VERSION = "2"  # 2: bytecode compiled at install, pinned build constraints
RUN_TIMEOUT = 600  # seconds; a single `import airflow` taking this long is an error, not a result

# Variables that change how a child interpreter imports; they are removed from the children's
# environment. PYTHONDONTWRITEBYTECODE in particular would make every run recompile every module.
PYTHON_VARIABLES_TO_UNSET = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "VIRTUAL_ENV",
)

# Supplementary row: the time of the import statement alone, measured inside the child, without the
# interpreter's start-up and shut-down (module teardown, atexit handlers), which the patch does not touch.
IN_PROCESS = "import time; t = time.perf_counter(); import airflow; print(time.perf_counter() - t)"

# Run in each environment once (not timed) to see what `import airflow` drags in.
PROBE = r"""
import json, sys
import airflow
loaded = sorted(sys.modules)
from importlib import metadata

def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None

print(json.dumps({
    "kubernetes_imported": "kubernetes" in loaded,
    "pod_generator_imported": "airflow.providers.cncf.kubernetes.pod_generator" in loaded,
    "modules_loaded": len(loaded),
    "airflow_file": airflow.__file__,
    "python": sys.version.split()[0],
    "versions": {name: version(name) for name in sys.argv[1:]},
}))
"""


class BenchmarkError(Exception):
    """An error that makes the benchmark meaningless; reported and turned into exit status 1."""


def rel(path: Path) -> str:
    """``path`` relative to the project root when it is inside it, for messages."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


class BenchError(Exception):
    """An error (e.g. a deployment that does not become healthy) or an incorrect run: reported, exit status 1."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a (log) file, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


# --------------------------------------------------------------------------------------------
# Project inputs


@dataclass(frozen=True)
class Fork:
    python: str
    constraints: Path
    dists: list[tuple[str, str]]  # (name, version) of every [[dist]] in fork.toml


def read_fork() -> Fork:
    if not FORK_TOML.exists():
        raise BenchmarkError(f"{FORK_TOML} not found")
    data = tomllib.loads(FORK_TOML.read_text())
    try:
        fork = data["fork"]
        dists = [(str(d["name"]), str(d["version"])) for d in data["dist"]]
        python, constraints = str(fork["python"]), ROOT / fork["constraints"]
    except (KeyError, TypeError) as error:
        raise BenchmarkError(f"fork.toml lacks an expected entry: {error}") from None
    if not dists:
        raise BenchmarkError("fork.toml pins no [[dist]]")
    if not constraints.exists():
        raise BenchmarkError(f"{rel(constraints)} is missing; run `./breeze generate-constraints`")
    return Fork(python=python, constraints=constraints, dists=dists)


def find_uv() -> str:
    """The uv pinned in fork.toml ([tools] uv), as ./breeze bootstraps it."""
    pin = tomllib.loads(FORK_TOML.read_text()).get("tools", {}).get("uv")
    bootstrapped = ROOT / ".build" / f"uv-{pin}" / "bin" / "uv"
    if bootstrapped.exists() and os.access(bootstrapped, os.X_OK):
        return str(bootstrapped)
    found = shutil.which("uv")
    if found and subprocess.run([found, "--version"], capture_output=True, text=True).stdout.split()[1:2] == [pin]:
        return found
    raise BenchmarkError(f"uv {pin} not found on PATH nor in {rel(bootstrapped)}; run `./breeze --help` once")


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def require_fork_venv(fork: Fork) -> str:
    """Check .build/venv and return the base interpreter it was created from."""
    python = venv_python(FORK_VENV)
    if not python.exists() or not (FORK_VENV / "bin" / "airflow").exists():
        raise BenchmarkError(f"{rel(FORK_VENV)} does not exist or is incomplete; run `./breeze setup` first")
    result = subprocess.run(
        [str(python), "-c", "import sys, platform; print(sys._base_executable); print(platform.python_version())"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BenchmarkError(f"{python} does not run; run `./breeze setup`:\n{result.stderr}")
    base, version = result.stdout.split()
    if not version.startswith(fork.python + "."):
        raise BenchmarkError(f"{rel(FORK_VENV)} runs Python {version}, fork.toml wants {fork.python}; "
                             "run `./breeze setup`")
    return base


# --------------------------------------------------------------------------------------------
# The vanilla environment


def vanilla_key(fork: Fork, base_python: str) -> str:
    """Hash of everything the vanilla environment is made from."""
    key = hashlib.sha256()
    key.update(f"recipe {RECIPE_VERSION}\n".encode())
    key.update(f"python {base_python}\n".encode())
    for name, version in sorted(fork.dists):
        key.update(f"dist {name}=={version}\n".encode())
    for path in (fork.constraints, ROOT / INSTALL_BUILD_CONSTRAINTS, ROOT / RUNTIME_REQUIREMENTS):
        key.update(f"file {rel(path)} ".encode() + hashlib.sha256(path.read_bytes()).digest() + b"\n")
    return key.hexdigest()


def ensure_vanilla(fork: Fork, base_python: str, uv: str, rebuild: bool) -> None:
    requirements = ROOT / RUNTIME_REQUIREMENTS
    if not requirements.exists():
        raise BenchmarkError(f"{RUNTIME_REQUIREMENTS} is missing")
    key = vanilla_key(fork, base_python)
    stamp = VANILLA_VENV / STAMP_NAME
    python = venv_python(VANILLA_VENV)
    if not rebuild and python.exists() and stamp.exists() and stamp.read_text().strip() == key:
        log(f"Reusing {rel(VANILLA_VENV)} (up to date)")
        return
    pins = [f"{name}=={version}" for name, version in fork.dists]
    log(f"Creating {rel(VANILLA_VENV)}: {', '.join(pins)} + {RUNTIME_REQUIREMENTS} "
        f"under {rel(fork.constraints)}")
    if VANILLA_VENV.exists():
        shutil.rmtree(VANILLA_VENV)
    commands = [
        [uv, "venv", "--quiet", "--python", base_python, str(VANILLA_VENV)],
        # Compiled at install, as ./breeze installs .build/venv: both sides start from the same bytecode.
        [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python),
         "--constraints", str(fork.constraints), "--build-constraints", str(ROOT / INSTALL_BUILD_CONSTRAINTS),
         *pins, "--requirement", str(requirements)],
    ]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BenchmarkError(f"`{' '.join(command[:3])} ...` failed creating the vanilla environment:\n"
                                 f"{result.stdout}{result.stderr}")
    stamp.write_text(key + "\n")


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Environment:
    label: str
    venv: Path
    home: Path  # private AIRFLOW_HOME, also the working directory of every run

    def env(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("AIRFLOW__")
            and name not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG")
            and name not in PYTHON_VARIABLES_TO_UNSET
        }
        env["AIRFLOW_HOME"] = str(self.home)
        env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        return env

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, cwd=self.home, env=self.env(), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"[{self.label}] `{' '.join(argv)}` ran longer than {RUN_TIMEOUT}s") from None

    def timed(self, argv: list[str], reported: bool = False) -> float:
        """Wall-clock seconds of one fresh process; with ``reported``, the seconds it prints last."""
        start = time.perf_counter()
        result = self.run(argv)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise BenchmarkError(f"[{self.label}] `{' '.join(argv)}` exited with {result.returncode}:\n"
                                 f"{result.stderr[-4000:]}")
        if reported:
            try:
                return float(result.stdout.split()[-1])
            except (IndexError, ValueError):
                raise BenchmarkError(f"[{self.label}] `{' '.join(argv)}` printed no time: {result.stdout!r}") from None
        return elapsed

    def probe(self, dist_names: list[str]) -> dict:
        argv = [str(venv_python(self.venv)), "-c", PROBE, *dist_names, "kubernetes"]
        result = self.run(argv)
        if result.returncode != 0:
            raise BenchmarkError(f"[{self.label}] `import airflow` failed:\n{result.stderr[-4000:]}")
        info = json.loads(result.stdout.strip().splitlines()[-1])
        if not Path(info["airflow_file"]).resolve().is_relative_to(self.venv.resolve()):
            raise BenchmarkError(f"[{self.label}] imported airflow from {info['airflow_file']}, "
                                 f"not from {self.venv}")
        return info


@dataclass
class Command:
    name: str
    argv: list[str]  # relative to the venv: the first element is a file in <venv>/bin
    reported: bool = False  # time what the process prints instead of the process's wall-clock time
    samples: dict[str, list[float]] = field(default_factory=dict)

    def argv_in(self, environment: Environment) -> list[str]:
        return [str(environment.venv / "bin" / self.argv[0]), *self.argv[1:]]


def summarize(samples: list[float]) -> dict:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "mean": statistics.fmean(samples),
        "stdev": statistics.stdev(samples) if len(samples) > 1 else 0.0,
        "samples": samples,
    }


def measure(commands: list[Command], environments: list[Environment], runs: int, warmups: int) -> None:
    for command in commands:
        log(f"Measuring `{command.name}`: {warmups} warm-up + {runs} timed run(s) per environment, interleaved")
        for environment in environments:
            command.samples[environment.label] = []
        for _ in range(warmups):  # also compiles bytecode and writes airflow.cfg into each AIRFLOW_HOME
            for environment in environments:
                environment.timed(command.argv_in(environment), command.reported)
        for run in range(1, runs + 1):
            line = []
            for environment in environments:
                elapsed = environment.timed(command.argv_in(environment), command.reported)
                command.samples[environment.label].append(elapsed)
                line.append(f"{environment.label} {elapsed:.3f}s")
            log(f"  run {run:>3}/{runs}: " + "  ".join(line))


# --------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
    }


def table(results: list[dict]) -> str:
    header = ["command", "vanilla median", "vanilla min", "fork median", "fork min", "vanilla/fork"]
    rows = [header]
    for r in results:
        rows.append([
            r["command"],
            f"{r['vanilla']['median']:.3f}",
            f"{r['vanilla']['min']:.3f}",
            f"{r['fork']['median']:.3f}",
            f"{r['fork']['min']:.3f}",
            f"{r['ratio_median']:.2f}x",
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 benchmarks/import_time.py",
        description="Compare the import time of the patched build (.build/venv) with vanilla Airflow "
                    "(.build/vanilla-venv, created or reused from fork.toml's pins, "
                    f"{RUNTIME_REQUIREMENTS} and the constraints file). Reports ratios; never fails on a slow result.",
    )
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command and environment (default: 10)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed warm-up runs per command and environment (default: 1)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--rebuild", action="store_true",
                        help="recreate .build/vanilla-venv even if its stamp says it is up to date")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")

    try:
        fork = read_fork()
        base_python = require_fork_venv(fork)
        ensure_vanilla(fork, base_python, find_uv(), args.rebuild)
        with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
            environments = []
            for label, venv in (("vanilla", VANILLA_VENV), ("fork", FORK_VENV)):
                home = Path(tmp) / f"airflow-home-{label}"
                home.mkdir()
                environments.append(Environment(label, venv, home))
            dist_names = [name for name, _ in fork.dists]
            probes = {e.label: e.probe(dist_names) for e in environments}
            for label, probe in probes.items():
                versions = ", ".join(f"{name} {version}" for name, version in probe["versions"].items() if version)
                log(f"{label:>7}: Python {probe['python']}; {versions}")
            commands = [Command('python -c "import airflow"', ["python", "-c", "import airflow"]),
                        Command("airflow version", ["airflow", "version"]),
                        Command("import airflow (in-process)", ["python", "-c", IN_PROCESS], reported=True)]
            measure(commands, environments, args.runs, args.warmup)
    except BenchmarkError as error:
        log(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130

    results = []
    for command in commands:
        vanilla, ours = summarize(command.samples["vanilla"]), summarize(command.samples["fork"])
        results.append({
            "command": command.name,
            "measure": "import statement, timed inside the process" if command.reported
                       else "wall-clock time of the whole process",
            "vanilla": vanilla,
            "fork": ours,
            "ratio_median": vanilla["median"] / ours["median"],
            "ratio_min": vanilla["min"] / ours["min"],
        })

    print()
    print("`import airflow` loads the kubernetes client:")
    expected = {"vanilla": True, "fork": False}
    for label, probe in probes.items():
        verdict = "as expected" if probe["kubernetes_imported"] == expected[label] else "UNEXPECTED"
        print(f"  {label:<8} {'yes' if probe['kubernetes_imported'] else 'no':<4} "
              f"({probe['modules_loaded']} modules after import; {verdict})")
    print()
    print(f"Seconds per fresh process, {args.runs} interleaved run(s) each after {args.warmup} warm-up run(s); "
          "ratio = vanilla median / fork median.")
    print("The first two rows are wall-clock times of the whole process; the last is the `import airflow`")
    print("statement alone, timed inside the process (no interpreter start-up or shut-down).")
    print()
    print(table(results))

    if args.json:
        report = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "runs": args.runs,
            "warmup_runs": args.warmup,
            "machine": machine(),
            "environments": {
                label: {"venv": str(e.venv), **probes[label],
                        "kubernetes_as_expected": probes[label]["kubernetes_imported"] == expected[label]}
                for label, e in zip(("vanilla", "fork"), environments)
            },
            "results": results,
        }
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        except OSError as error:
            log(f"error: cannot write {args.json}: {error}")
            return 1
        log(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
