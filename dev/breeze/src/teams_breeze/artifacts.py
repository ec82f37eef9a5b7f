"""Download the pinned sdists once and refuse any byte that does not match its sha256 pin.

The file is looked up on the package index's simple API (PEP 691 JSON, or PEP 503 HTML) and
downloaded as it is: nothing is built, no metadata prepared, no build dependency installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

from teams_breeze.console import BreezeError, step
from teams_breeze.project import Dist, Project

DEFAULT_INDEX = "https://pypi.org/simple"
# The first one set wins: breeze's own, then uv's, then pip's (the index the machine's clients use).
INDEX_VARIABLES = ("BREEZE_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL")
_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
_TIMEOUT = 60


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(dist: Dist, path: Path) -> Path:
    actual = sha256_of(path)
    if actual != dist.sha256:
        raise BreezeError(
            f"sha256 mismatch for {dist.sdist}: fork.toml pins {dist.sha256}, "
            f"but {path} has {actual}. Refusing to use it. If the pin is right, delete the file "
            f"and run again; if upstream re-released the artifact, review it before changing the pin."
        )
    return path


def index_url() -> str:
    for variable in INDEX_VARIABLES:
        value = os.environ.get(variable, "").strip()
        if value:
            return value.split()[0]
    return DEFAULT_INDEX


def _ssl_context() -> ssl.SSLContext:
    bundle = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT")
    return ssl.create_default_context(cafile=bundle if bundle and Path(bundle).is_file() else None)


def _open(url: str, accept: str | None = None):
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        if path.is_dir():  # a file:// simple index keeps each page as index.html
            url = (path / "index.html").as_uri()
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    return urllib.request.urlopen(request, timeout=_TIMEOUT, context=_ssl_context())


class _Anchors(HTMLParser):
    """The ``<a href>`` links of a PEP 503 project page, by their text (the file name)."""

    def __init__(self):
        super().__init__()
        self.links: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data):
        if self._href is not None and data.strip():
            self.links[data.strip()] = self._href

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None


def _project_files(page_url: str, body: bytes, content_type: str) -> dict[str, tuple[str, str | None]]:
    """File name -> (absolute URL, sha256 the index states or None)."""
    files = {}
    if "json" in content_type:
        for entry in json.loads(body)["files"]:
            url = urllib.parse.urljoin(page_url, entry["url"])
            files[entry["filename"]] = (url, entry.get("hashes", {}).get("sha256"))
        return files
    anchors = _Anchors()
    anchors.feed(body.decode("utf-8", "replace"))
    for name, href in anchors.links.items():
        url, _, fragment = urllib.parse.urljoin(page_url, href).partition("#")
        stated = re.fullmatch(r"sha256=([0-9a-f]{64})", fragment)
        files[name] = (url, stated.group(1) if stated else None)
    return files


def locate(dist: Dist, index: str) -> str:
    """The URL of ``dist``'s pinned sdist on ``index``'s simple API."""
    project_name = re.sub(r"[-_.]+", "-", dist.name).lower()
    page_url = f"{index.rstrip('/')}/{project_name}/"
    pin = f"{dist.name}=={dist.version} ({dist.sdist})"
    try:
        with _open(page_url, _ACCEPT) as response:
            files = _project_files(page_url, response.read(), response.headers.get("Content-Type", ""))
    except (urllib.error.URLError, OSError, ValueError, KeyError) as err:
        raise BreezeError(f"could not read {page_url} for the pin {pin}: {err}") from err
    if dist.sdist not in files:
        raise BreezeError(f"the pin {pin} is not on the index: {page_url} does not list {dist.sdist}")
    url, stated = files[dist.sdist]
    if stated is not None and stated != dist.sha256:
        raise BreezeError(
            f"sha256 mismatch for {dist.sdist}: fork.toml pins {dist.sha256}, but {page_url} states "
            f"{stated}. Refusing to download it; review the re-released artifact before changing the pin."
        )
    return url


def fetch(project: Project, dist: Dist) -> Path:
    """Return the verified sdist of ``dist``, downloading it into the cache the first time."""
    cached = project.cache / dist.sdist
    if not cached.exists():
        project.cache.mkdir(parents=True, exist_ok=True)
        index = index_url()
        with step(f"Downloading {dist.sdist} from {index}"), tempfile.TemporaryDirectory() as tmp:
            url = locate(dist, index)
            downloaded = Path(tmp) / dist.sdist
            try:
                with _open(url) as response, downloaded.open("wb") as out:
                    shutil.copyfileobj(response, out, 1 << 20)
            except (urllib.error.URLError, OSError) as err:
                raise BreezeError(f"could not download {url} for the pin {dist.name}=={dist.version}: {err}") from err
            verify(dist, downloaded)
            shutil.move(downloaded, cached)
    return verify(dist, cached)
