"""Every prefix of every series must import: each patch is a PR that has to stand on the ones before it.

Each prefix is the sdist, the whole own tree, and the patches up to one. Core: after each patch,
``import airflow`` runs from the materialised tree (its ``airflow`` package
shadows the installed one; ``airflow/__init__.py`` extends its path, so installed providers still
resolve); from the patch that adds team configuration on, the configuration display must hide a
team's secrets. Providers: after each patch, the modules that patch touched are imported from the tree into
the installed provider package.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from teams_breeze import patches
from teams_breeze.console import BreezeError, info
from teams_breeze.gitutil import git_text
from teams_breeze.project import Dist, Project

_IMPORT_CORE = "import airflow, airflow.exceptions, airflow.models, airflow.configuration"

# From the patch that hooks team configuration into airflow/configuration.py on, no prefix may show a
# team's secret: in a team variable, or inside an executor's "config" of the [core] executor JSON.
# Every prefix has the whole own tree (airflow/teams/ included); the hooks 1..N decide what runs.
_MASKING_HOOK = "from airflow.teams import config as teams_config"
_TEAM_SECRET = "prefix-check-team-secret"
_TEAM_SECRET_ENV = {
    "AIRFLOW__CORE__MULTI_TEAM": "True",
    "AIRFLOW__CORE__EXECUTOR": json.dumps({"team_a": [{"name": "a_local", "class": "LocalExecutor", "config": {
        "database": {"sql_alchemy_conn": f"postgresql://user:{_TEAM_SECRET}@db/airflow"}}}]}),
    "AIRFLOW__TEAM_A___CORE__FERNET_KEY": _TEAM_SECRET,
}
_SHOW_CONFIGURATION = (
    "import io\n"
    "from airflow.configuration import conf\n"
    "listed = io.StringIO()\n"
    "conf.write(listed, hide_sensitive_values=True)\n"
    "print(conf.as_dict(display_sensitive=False, display_source=True), listed.getvalue())\n"
)


def _provider_package_root(tree: Path) -> Path:
    """Directory that holds the provider's ``airflow/`` namespace (``src/`` for new-style sdists)."""
    return tree / "src" if (tree / "src" / "airflow").is_dir() else tree


def _touched_files(tree: Path, root: Path) -> list[Path]:
    changed = git_text(tree, "diff", "--name-only", "--diff-filter=AM", "HEAD~1", "HEAD").splitlines()
    return [tree / name for name in changed if name.endswith(".py") and root in (tree / name).parents]


def _import_provider_files(python: Path, root: Path, files: list[Path]) -> subprocess.CompletedProcess[str]:
    """Import each touched module from the tree, its parent package from the installed build."""
    lines = ["import importlib, py_compile, sys"]
    for path in files:
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            lines.append(f"py_compile.compile({str(path)!r}, doraise=True)")
            continue
        parent, module = ".".join(parts[:-1]), ".".join(parts)
        lines += [
            f"importlib.import_module({parent!r}).__path__.insert(0, {str(path.parent)!r})",
            f"sys.modules.pop({module!r}, None)",
            f"assert importlib.import_module({module!r}).__file__ == {str(path)!r}",
        ]
    return subprocess.run([str(python), "-c", "\n".join(lines)], capture_output=True, text=True)


def check_dist(project: Project, dist: Dist, workdir: Path) -> list[str]:
    series = patches.read_series(project, dist)
    tree = workdir / dist.series
    patches.materialise(project, dist, tree, series, limit=0)
    env = os.environ | {"AIRFLOW_HOME": str(workdir / "airflow-home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    problems = []
    for name, data in series.patches.items():
        patches.apply_patch(tree, dist, name, data)
        if dist.is_core:
            result = subprocess.run([str(project.python), "-c", _IMPORT_CORE], cwd=tree, env=env,
                                    capture_output=True, text=True)
            if result.returncode == 0 and _MASKING_HOOK in (tree / "airflow" / "configuration.py").read_text():
                problems += _team_secret_shown(project, tree, env, name)
        else:
            root = _provider_package_root(tree)
            files = _touched_files(tree, root)
            if not files:
                info(f"ok   {dist.series} up to {name} (no Python module touched)")
                continue
            result = _import_provider_files(project.python, root, files)
        if result.returncode != 0:
            problems.append(f"{dist.series} up to {name} does not import:\n{result.stderr.strip()[-2000:]}")
        else:
            info(f"ok   {dist.series} up to {name}")
    return problems


def _team_secret_shown(project: Project, tree: Path, env: dict[str, str], name: str) -> list[str]:
    env = env | _TEAM_SECRET_ENV | {"AIRFLOW__CORE__DAGS_FOLDER": str(tree / "no-dags")}
    result = subprocess.run([str(project.python), "-c", _SHOW_CONFIGURATION], cwd=tree, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        return [f"airflow up to {name} cannot show its configuration:\n{result.stderr.strip()[-2000:]}"]
    if _TEAM_SECRET in result.stdout:
        return [f"airflow up to {name} shows a team's secret in `airflow config list` or as_dict()"]
    return []


def check_all(project: Project) -> int:
    problems = []
    with tempfile.TemporaryDirectory(prefix="breeze-prefixes-") as tmp:
        for dist in project.fork.dists:
            try:
                problems += check_dist(project, dist, Path(tmp))
            except BreezeError as err:
                problems.append(str(err))
    for problem in problems:
        info(f"FAIL {problem}")
    return 1 if problems else 0
