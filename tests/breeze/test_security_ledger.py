"""docs/security.md's ledger and the patch series agree: every advisory a patch names is in the ledger
with that patch, every fix the ledger claims is a patch naming the advisory, every test it cites exists,
and every advisory of the shared advisory list is accounted for."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from teams_breeze.patches import read_series
from teams_breeze.project import Project

REPO_ROOT = Path(__file__).resolve().parents[2]
LEDGER = REPO_ROOT / "docs" / "security.md"
SHARED_ADVISORIES = REPO_ROOT.parent / "shared" / "security" / "advisories-2026-12.md"
ADVISORY_ID = re.compile(r"\b(?:CVE-\d{4}-\d{4,}|GHSA(?:-[0-9a-z]{4}){3}|PYSEC-\d{4}-\d+)\b")
PATCH_REF = re.compile(r"patch `([\w./-]+)`")
TEST_REF = re.compile(r"`(tests/[\w/.-]+\.py)(?:::([\w\[\]-]+))?`")
STATUSES = {"fixed", "not affected", "mitigated"}


def ledger_rows() -> list[dict[str, str]]:
    """The rows of the table under '## Ledger' (columns: advisory, package, what, status, handled by, test)."""
    text = LEDGER.read_text()
    section = text.split("\n## Ledger", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if not line.startswith("|") or len(cells) != 6 or cells[0] in ("advisory", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append(dict(zip(("advisory", "package", "what", "status", "handled_by", "test"), cells)))
    return rows


def advisories_named_by_patches() -> dict[str, set[str]]:
    """'<series>/<patch name>' -> the advisory ids of its ``Advisory:`` trailers."""
    project = Project(REPO_ROOT)
    named = {}
    for dist in project.fork.dists:
        for name, data in read_series(project, dist).patches.items():
            header = data.decode().split("\ndiff --git ", 1)[0]
            named[f"{dist.series}/{name}"] = set(re.findall(r"^Advisory: (\S+)$", header, re.MULTILINE))
    return named


def test_every_row_has_a_known_status_and_a_reason_or_a_patch():
    rows = ledger_rows()
    assert len(rows) > 40
    for row in rows:
        assert row["status"] in STATUSES, row
        assert ADVISORY_ID.search(row["advisory"]) or row["advisory"].startswith(("fork:", "none:")), row
        if row["status"] == "fixed":
            assert PATCH_REF.search(row["handled_by"]), f"a fixed row names its patch: {row}"
        else:
            assert len(row["handled_by"]) > 8, f"the reason it does not apply: {row}"


def test_every_advisory_a_patch_names_is_in_the_ledger_with_that_patch_and_vice_versa():
    named = advisories_named_by_patches()
    fixed_by = {}
    for row in ledger_rows():
        for patch in PATCH_REF.findall(row["handled_by"]):
            assert patch in named, f"the ledger names patch {patch}, which no series holds: {row}"
            if row["status"] != "fixed":
                continue
            # an advisory and its aliases (PYSEC, GHSA); a fork: row names upstream advisories only as its class
            ids = set() if row["advisory"].startswith("fork:") else set(ADVISORY_ID.findall(row["advisory"]))
            fixed_by.setdefault(patch, set()).update(ids)
            if ids:
                assert ids & named[patch], f"{patch} fixes {sorted(ids)} per the ledger but names none in Advisory:"
    for patch, advisories in named.items():
        missing = advisories - fixed_by.get(patch, set())
        assert not missing, f"{patch} names {sorted(missing)} in Advisory: trailers, the ledger does not"


def test_every_test_the_ledger_cites_exists():
    cited = [ref for row in ledger_rows() for ref in TEST_REF.findall(row["test"])]
    assert cited
    for path, name in cited:
        file = REPO_ROOT / path
        assert file.is_file(), path
        if name:
            defined = {
                node.name
                for node in ast.walk(ast.parse(file.read_text()))
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            }
            assert name.split("[")[0] in defined, f"{path}::{name}"


def test_every_fixed_row_cites_a_test():
    for row in ledger_rows():
        if row["status"] == "fixed":
            assert TEST_REF.search(row["test"]), f"a fix without a test: {row}"


@pytest.mark.skipif(not SHARED_ADVISORIES.exists(), reason=f"{SHARED_ADVISORIES} is not beside this checkout")
def test_every_advisory_of_the_shared_list_is_accounted_for():
    listed = set(ADVISORY_ID.findall(SHARED_ADVISORIES.read_text()))
    in_ledger = {advisory for row in ledger_rows() for advisory in ADVISORY_ID.findall(row["advisory"])}
    # The shared list also cites ids only as references inside other rows' text; those must be in the
    # ledger too (each gets a verdict), so the comparison is over every id the list mentions.
    assert not listed - in_ledger, sorted(listed - in_ledger)
