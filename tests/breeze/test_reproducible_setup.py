"""Pinned inputs, pinned steps: sdists fetched from the index's simple API without building anything,
wheels built in pinned build environments, byte for byte the same every time."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from teams_breeze import artifacts, build, build_constraints, patches
from teams_breeze.console import BreezeError
from teams_breeze.project import Project

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def index(tmp_path: Path):
    """A package index on 127.0.0.1 serving the files of ``tmp_path / "index"`` as they are."""
    root = tmp_path / "index"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


def fab_sdist(project: Project) -> tuple[bytes, str]:
    dist = project.fork.dist("providers/fab")
    return (project.cache / dist.sdist).read_bytes(), dist.sdist


def publish_html(root: Path, project_name: str, filename: str, payload: bytes, stated_sha: str | None) -> None:
    page = root / "simple" / project_name
    page.mkdir(parents=True)
    (root / "files").mkdir(exist_ok=True)
    (root / "files" / filename).write_bytes(payload)
    fragment = f"#sha256={stated_sha}" if stated_sha else ""
    (page / "index.html").write_text(f'<html><body><a href="../../files/{filename}{fragment}">{filename}</a></body></html>')


@pytest.fixture
def empty_cache(project, tmp_path, monkeypatch):
    """The project with its own empty download cache: every fetch goes to the index."""
    artifacts.fetch(project, project.fork.dist("providers/fab"))  # the shared cache has it
    monkeypatch.setenv("BREEZE_CACHE", str(tmp_path / "empty-cache"))
    payload, filename = fab_sdist(project)
    return Project(project.root), payload, filename


def test_sdist_comes_from_the_pep503_index_and_is_verified(empty_cache, index, monkeypatch):
    project, payload, filename = empty_cache
    root, url = index
    publish_html(root, "apache-airflow-providers-fab", filename, payload, hashlib.sha256(payload).hexdigest())
    monkeypatch.setenv("BREEZE_INDEX_URL", url)

    fetched = artifacts.fetch(project, project.fork.dist("providers/fab"))

    assert fetched == project.cache / filename
    assert fetched.read_bytes() == payload


def test_pep691_json_pages_are_read_with_relative_urls_and_hashes():
    page = "https://index.invalid/simple/apache-airflow-providers-fab/"
    body = json.dumps({"meta": {"api-version": "1.1"}, "files": [
        {"filename": "a-1.tar.gz", "url": "../../files/a-1.tar.gz", "hashes": {"sha256": "ab" * 32}},
        {"filename": "a-1-py3-none-any.whl", "url": "https://files.invalid/a.whl", "hashes": {}},
    ]}).encode()

    files = artifacts._project_files(page, body, "application/vnd.pypi.simple.v1+json")

    assert files["a-1.tar.gz"] == ("https://index.invalid/files/a-1.tar.gz", "ab" * 32)
    assert files["a-1-py3-none-any.whl"] == ("https://files.invalid/a.whl", None)


def test_a_file_missing_from_the_index_names_the_pin(empty_cache, index, monkeypatch):
    project, payload, filename = empty_cache
    root, url = index
    publish_html(root, "apache-airflow-providers-fab", "apache_airflow_providers_fab-0.0.1.tar.gz", payload, None)
    monkeypatch.setenv("BREEZE_INDEX_URL", url)

    with pytest.raises(BreezeError) as err:
        artifacts.fetch(project, project.fork.dist("providers/fab"))

    assert "the pin apache-airflow-providers-fab==1.5.4" in str(err.value)
    assert f"does not list {filename}" in str(err.value)
    assert not (project.cache / filename).exists()


def test_an_index_stating_another_hash_is_refused_before_download(empty_cache, index, monkeypatch):
    project, payload, filename = empty_cache
    root, url = index
    publish_html(root, "apache-airflow-providers-fab", filename, payload, "1" * 64)
    monkeypatch.setenv("BREEZE_INDEX_URL", url)

    with pytest.raises(BreezeError, match=f"sha256 mismatch for {filename}: fork.toml pins [0-9a-f]{{64}}, but"):
        artifacts.fetch(project, project.fork.dist("providers/fab"))
    assert not (project.cache / filename).exists()


def test_downloaded_bytes_that_differ_from_the_pin_are_refused(empty_cache, index, monkeypatch):
    project, payload, filename = empty_cache
    root, url = index
    publish_html(root, "apache-airflow-providers-fab", filename, payload + b"tampered", None)
    monkeypatch.setenv("BREEZE_INDEX_URL", url)

    with pytest.raises(BreezeError, match=f"sha256 mismatch for {filename}"):
        artifacts.fetch(project, project.fork.dist("providers/fab"))
    assert not (project.cache / filename).exists()


def test_an_unreachable_index_names_the_pin_and_the_url(empty_cache, monkeypatch):
    project, _, _ = empty_cache
    monkeypatch.setenv("BREEZE_INDEX_URL", "http://127.0.0.1:9/simple")

    with pytest.raises(BreezeError, match=r"could not read http://127\.0\.0\.1:9/simple/apache-airflow-providers-fab/ "
                                          r"for the pin apache-airflow-providers-fab==1\.5\.4"):
        artifacts.fetch(project, project.fork.dist("providers/fab"))


def test_the_index_is_the_one_the_machine_configures(monkeypatch):
    for variable in artifacts.INDEX_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert artifacts.index_url() == "https://pypi.org/simple"
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.invalid/pip/simple")
    assert artifacts.index_url() == "https://mirror.invalid/pip/simple"
    monkeypatch.setenv("UV_DEFAULT_INDEX", "https://mirror.invalid/uv/simple")
    assert artifacts.index_url() == "https://mirror.invalid/uv/simple"


def test_every_build_has_a_complete_pinned_environment(project):
    for dist in project.fork.dists:
        pins = build_constraints.for_dist(project, dist).read_text().splitlines()
        pinned = {line.split("==")[0] for line in pins if line and not line.startswith("#")}
        assert all("==" in line for line in pins if line and not line.startswith("#")), dist.name
        requires = build_constraints.sdist_build_requires(artifacts.fetch(project, dist))
        backends = {r.split("=")[0].split(";")[0].strip().replace("_", "-").lower() for r in requires
                    if "python_version < '3.11'" not in r}
        assert backends <= pinned, f"{dist.name}: {backends - pinned} not pinned"
    install = build_constraints.path(project, build_constraints.INSTALL).read_text()
    for backend in ("hatchling==", "setuptools==", "wheel=="):
        assert backend in install


def test_two_builds_of_the_same_series_give_byte_identical_wheels(project):
    """The checkout's own dist/ (built by the setup before this run) against a build in another tree."""
    for dist in project.fork.dists:  # every tree first: the core wheel's git_version names all their sources
        patches.apply(project, dist)
    for dist in project.fork.dists:
        rebuilt = build.build_wheel(project, dist)
        original = REPO_ROOT / "dist" / rebuilt.name
        assert original.exists(), f"{original} missing: run the suite through ./breeze testing tests"
        assert rebuilt.read_bytes() == original.read_bytes(), f"{rebuilt.name} differs between two builds"
