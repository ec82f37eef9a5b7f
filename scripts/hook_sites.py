#!/usr/bin/env python3
"""
List the hook sites of the fork: every upstream file a patch touches, the patches that touch it and the
own-tree names its added lines use.

Reads the checkout's fork.toml, every series and its *.patch files, and src/ (for the own tree's module
names), never a work tree, so the answer does not depend on the state of work/. Usage:

    python3 scripts/hook_sites.py [REPO]            # markdown table on stdout (REPO: this checkout)
    python3 scripts/hook_sites.py [REPO] --checks   # the table, then findings: untagged or mis-tagged hook
                                            # patches, several airflow.teams import statements at
                                            # module level of one upstream file

The third column is a draft: the own-tree names the file's added lines use (module aliases resolved
through the file's imports), "-" where a patch calls nothing of the own tree (an inline upstream fix).
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TAG = re.compile(r"(?:#|\{#)\s*(teams|fork):\s*([a-z0-9-]+|\(as above\))")
DOC_TAG = re.compile(r"\b(teams|fork): (teams-[a-z0-9-]+|[a-z]+-[a-z0-9-]+)\b")
INCLUDE = re.compile(r"""\{%\s*include\s+["']([^"']+)["']""")
FROM_PAREN = re.compile(r"^(\s*)from\s+(airflow[\w.]*)\s+import\s*\(([^)]*)\)", re.M | re.S)
FROM_LINE = re.compile(r"^(\s*)from\s+(airflow[\w.]*)\s+import\s+(?!\()([^\n]+)", re.M)


@dataclass
class FileDiff:
    path: str
    added: list[str] = field(default_factory=list)
    removed: int = 0
    hunks: list[list[tuple[str, str]]] = field(default_factory=list)  # (" "/"+"/"-", text) per line
    context: list[str] = field(default_factory=list)


@dataclass
class Patch:
    series: str
    name: str
    trailers: dict[str, list[str]]
    files: dict[str, FileDiff]


def parse_patch(series: str, name: str, text: str) -> Patch:
    header, _, body = text.partition("\ndiff --git ")
    trailers: dict[str, list[str]] = defaultdict(list)
    for line in header.splitlines():
        if m := re.match(r"^([A-Z][A-Za-z-]+): (.*)$", line):
            trailers[m.group(1)].append(m.group(2))
    files: dict[str, FileDiff] = {}
    current: FileDiff | None = None
    for line in ("diff --git " + body).splitlines() if body else ():
        if line.startswith("diff --git "):
            path = line.split(" b/", 1)[1]
            current = files.setdefault(path, FileDiff(path))
        elif current is None or line.startswith(("+++", "---", "index ", "new file", "deleted file")):
            continue
        elif line.startswith("@@"):
            current.hunks.append([])
        elif line.startswith("+"):
            current.added.append(line[1:])
            current.hunks[-1].append(("+", line[1:]))
        elif line.startswith("-"):
            current.removed += 1
            current.hunks[-1].append(("-", line[1:]))
        elif line.startswith(" "):
            current.context.append(line[1:])
            current.hunks[-1].append((" ", line[1:]))
    return Patch(series, name, dict(trailers), files)


SOURCES: dict[str, Path] = {}


def defines(module: str, name: str) -> bool:
    """Whether the own-tree module defines ``name`` at top level (a function, class or constant)."""
    import ast

    path = SOURCES.get(module)
    if path is None:
        return False
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


def own_modules(repo: Path, dists: list[dict]) -> tuple[set[str], set[str]]:
    """Dotted names of the own tree's modules (all distributions), and its template paths."""
    modules, templates = set(), set()
    for dist in dists:
        own = repo / dist.get("own_tree", "")
        if not dist.get("own_tree") or not own.is_dir():
            continue
        package = dist["own_tree_at"].removeprefix("src/").replace("/", ".")
        for path in own.rglob("*.py"):
            parts = list(path.relative_to(own).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.add(".".join([package, *parts]))
            SOURCES[".".join([package, *parts])] = path
        for path in own.rglob("*.html"):
            templates.add(str(path.relative_to(own / "www" / "templates")))
    return modules, templates


OPENER = re.compile(r"^\s*from\s+(airflow[\w.]*)\s+import\s*\(\s*(?:#.*)?$")
ITEM = re.compile(r"^\s+(\w+)(?:\s+as\s+(\w+))?,\s*(?:#.*)?$")


def aliases(text: str, modules: set[str], openers_text: str = "") -> dict[str, str]:
    """
    alias -> own-tree dotted name (a module, or a module's attribute) from the import statements.

    Import blocks in parentheses grow a line per patch, so a patch's added item line may sit in a block
    another patch opened: such a line is resolved against every own-tree block opener of the file.
    """
    found = {}
    statements = [(m.group(2), m.group(3)) for m in FROM_PAREN.finditer(text)]
    statements += [(m.group(2), m.group(3)) for m in FROM_LINE.finditer(text)]
    openers = {m.group(1) for line in (text + "\n" + openers_text).splitlines() if (m := OPENER.match(line))}
    for line in text.splitlines():
        if (m := ITEM.match(line)) is None:
            continue
        for opener in openers:
            if f"{opener}.{m.group(1)}" in modules or defines(opener, m.group(1)):
                found[m.group(2) or m.group(1)] = f"{opener}.{m.group(1)}"
    for module, names in statements:
        for item in re.sub(r"#[^\n]*", "", names).replace("\n", ",").split(","):
            item = item.strip()
            if not item or item == "(":
                continue
            name, _, alias = item.partition(" as ")
            name, alias = name.strip(), (alias or name).strip()
            if f"{module}.{name}" in modules or defines(module, name):
                found[alias] = f"{module}.{name}"
    return found


def short(name: str) -> str:
    for prefix in ("airflow.providers.", "airflow."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def used_names(lines: list[str], alias_map: dict[str, str], modules: set[str], templates: set[str]) -> list[str]:
    used: list[str] = []
    for line in lines:
        code = line.split("#", 1)[0] if not line.lstrip().startswith("{") else line
        if re.match(r"^\s*(from|import)\s", code):
            continue
        for alias, target in alias_map.items():
            if target in modules:
                for m in re.finditer(rf"(?<![\w.]){re.escape(alias)}\.(\w+)", code):
                    used.append(f"{target}.{m.group(1)}")
            elif re.search(rf"(?<![\w.]){re.escape(alias)}\b", code):
                used.append(target)
        for m in INCLUDE.finditer(line):
            if m.group(1) in templates:
                used.append(m.group(1))
    return list(dict.fromkeys(used))


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    checks = "--checks" in argv
    repo = Path(args[0]) if args else Path(__file__).resolve().parents[1]
    fork = tomllib.loads((repo / "fork.toml").read_text())
    dists = fork["dist"]
    modules, templates = own_modules(repo, dists)

    problems: list[str] = []
    untested: list[str] = []
    untagged: dict[str, list[str]] = defaultdict(list)
    rows = []
    for dist in dists:
        series_dir = repo / dist["series"]
        names = [
            line.split("#", 1)[0].strip()
            for line in (series_dir / "series").read_text().splitlines()
            if line.split("#", 1)[0].strip()
        ]
        patches = [parse_patch(dist["series"], n, (series_dir / f"{n}.patch").read_text()) for n in names]
        by_file: dict[str, list[tuple[Patch, FileDiff]]] = defaultdict(list)
        for patch in patches:
            if patch.trailers.get("Patch-Name", [None])[0] != patch.name:
                problems.append(f"{dist['series']}/{patch.name}.patch: Patch-Name {patch.trailers.get('Patch-Name')}")
            if "Tests" not in patch.trailers:
                untested.append(f"{dist['series']}/{patch.name}")
            vendor = patch.trailers.get("Origin", [""])[0] == "vendor"
            for path, diff in patch.files.items():
                for hunk in diff.hunks if vendor and not path.endswith((".yml", ".yaml", ".json")) else ():
                    added = [text for kind, text in hunk if kind == "+" and text.strip()]
                    tagged = any(TAG.search(text) or DOC_TAG.search(text) for text in added)
                    if added and not tagged:
                        untagged[f"{dist['series']}/{patch.name}"].append(f"{path}: {added[0].strip()[:70]}")
            for path, diff in patch.files.items():
                by_file[path].append((patch, diff))
        for path in sorted(by_file):
            touching = by_file[path]
            all_added = "\n".join(line for _, d in touching for line in d.added)
            all_context = "\n".join(line for _, d in touching for line in d.context)
            alias_map = aliases(all_added, modules, all_context)
            calls: list[str] = []
            for patch, diff in touching:
                calls += used_names(diff.added, alias_map, modules, templates)
                tags = {m.group(2) for line in diff.added for m in TAG.finditer(line)}
                tags |= {m.group(2) for line in diff.added for m in DOC_TAG.finditer(line)}
                calls_here = used_names(diff.added, alias_map, modules, templates)
                if calls_here and patch.name not in tags and "(as above)" not in tags:
                    problems.append(f"{path}: {patch.name} calls the own tree without a tag naming it")
                if stray := tags - {p.name for p, _ in touching} - {"(as above)"}:
                    problems.append(f"{path}: {patch.name} adds a tag naming {sorted(stray)}")
            module_level = [
                line for line in all_added.splitlines()
                if re.match(r"^from airflow\.teams[\w.]* import", line)
            ]
            if len(module_level) > 1:
                problems.append(
                    f"{path}: {len(module_level)} module-level airflow.teams import statements: "
                    + " | ".join(line.split("#")[0].strip() for line in module_level)
                )
            plus = sum(len(d.added) for _, d in touching)
            minus = sum(d.removed for _, d in touching)
            patch_names = ", ".join(dict.fromkeys(p.name for p, _ in touching))
            call_text = ", ".join(short(c) for c in dict.fromkeys(calls)) or "-"
            rows.append((dist["series"], path, patch_names, call_text, plus, minus))

    print("| series | file | patch(es) | own-tree names used | +/- |")
    print("|---|---|---|---|---|")
    for series, path, patch_names, call_text, plus, minus in rows:
        print(f"| {series} | `{path}` | {patch_names} | {call_text} | +{plus}/-{minus} |")
    counts = defaultdict(int)
    for series, *_ in rows:
        counts[series] += 1
    print()
    print("files per series: " + ", ".join(f"{s}: {n}" for s, n in counts.items()))
    if checks:
        print()
        print("## findings")
        print(f"- {len(untested)} patches without a Tests: trailer" + (f": {', '.join(untested)}" if len(untested) < 10 else ""))
        for problem in problems:
            print(f"- {problem}")
        print("- hunks of vendor patches whose added lines carry no teams:/fork: tag (first added line):")
        for patch, hunks in untagged.items():
            print(f"  - {patch} ({len(hunks)}): " + "; ".join(hunks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
