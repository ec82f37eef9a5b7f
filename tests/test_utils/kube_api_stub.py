"""A local stand-in for a Kubernetes API server: just the v1 Pod API the KubernetesExecutor uses.

Each :class:`KubeApiStub` is a threaded HTTP server on 127.0.0.1 that records every request and keeps
pods in memory. With ``kubelet_env`` it also acts as a mini-kubelet: a created pod's container runs as
a local process (``command`` + ``args``, with ``kubelet_env`` plus the container's literal ``env``), and
the pod goes Pending -> Running -> Succeeded/Failed, which watchers see as MODIFIED events.
:meth:`KubeApiStub.go_down` and :meth:`KubeApiStub.come_back` simulate an API outage.

Not a real API server: no admission, RBAC, defaulting, validation, scheduling or images.
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from teams_breeze.services import stop_process_group

POD_PATH = re.compile(r"^/api/v1/(?:namespaces/(?P<ns>[^/]+)/)?pods(?:/(?P<name>[^/]+))?(?:/(?P<sub>log|status))?$")
API_RESOURCES = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "v1",
    "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "patch", "update"]},
    ],
}
STATIC = {
    "/version": {"major": "1", "minor": "30", "gitVersion": "v1.30.0-stub", "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": API_RESOURCES,
}


@dataclass(frozen=True)
class Request:
    """One recorded API call."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


# ---- selectors ----------------------------------------------------------------------------------

_REQUIREMENT = re.compile(r"\s*(!?[^,!=()\s]+)(?:\s*(==|=|!=)\s*([^,\s]*)|\s+(notin|in)\s*\(([^)]*)\))?\s*")


def _requirements(selector: str) -> list[tuple[str, str, set[str]]]:
    """``a=b,c!=d,e in (f,g),h,!i`` -> [(key, operator, values)]."""
    requirements, position = [], 0
    while position < len(selector):
        match = _REQUIREMENT.match(selector, position)
        if not match or match.end() == position:
            raise ValueError(f"unsupported selector {selector!r}")
        key, operator, value, set_operator, values = match.groups()
        if operator:
            requirements.append((key, "!=" if operator == "!=" else "=", {value}))
        elif set_operator:
            requirements.append((key, set_operator, {v.strip() for v in values.split(",") if v.strip()}))
        elif key.startswith("!"):
            requirements.append((key[1:], "!exists", set()))
        else:
            requirements.append((key, "exists", set()))
        position = match.end()
        if position < len(selector) and selector[position] == ",":
            position += 1
    return requirements


def matches(selector: str | None, values: dict[str, str]) -> bool:
    """Whether labels (or fields) satisfy a Kubernetes label/field selector."""
    for key, operator, wanted in _requirements(selector or ""):
        value = values.get(key)
        if operator == "=" and value not in wanted:
            return False
        if operator in ("!=", "notin") and value in wanted:
            return False
        if operator == "in" and value not in wanted:
            return False
        if operator == "exists" and value is None:
            return False
        if operator == "!exists" and value is not None:
            return False
    return True


def pod_fields(pod: dict) -> dict[str, str]:
    return {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"],
            "status.phase": pod["status"]["phase"]}


def merge_patch(target: dict, patch: dict) -> dict:
    """JSON merge patch (RFC 7386), enough for the executor's label/annotation patches."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


# ---- the server ---------------------------------------------------------------------------------


class KubeApiStub:
    """A fake Kubernetes API server for one cluster (one per team in the tests)."""

    def __init__(self, name: str, *, token: str | None = None, kubelet_env: dict[str, str] | None = None,
                 kubelet_cwd: Path | None = None, log_dir: Path | None = None):
        self.name = name
        self.token = token
        self.kubelet_env = kubelet_env
        self.kubelet_cwd = kubelet_cwd
        self.log_dir = log_dir
        self.requests: list[Request] = []
        self.pods: dict[tuple[str, str], dict] = {}
        self.events: list[tuple[int, str, dict]] = []  # (resourceVersion, type, pod)
        self.processes: dict[tuple[str, str], subprocess.Popen] = {}
        self._resource_version = 1000
        self._changed = threading.Condition()
        self._stopping = False
        self._down = False
        self._connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"kube-api-{name}", daemon=True)

    # ---- lifecycle ----

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KubeApiStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            processes = list(self.processes.values())
        for process in processes:
            stop_process_group(process, grace=10)
        self._server.shutdown()
        self._drop_connections()
        self._server.server_close()
        self._thread.join(10)

    def go_down(self) -> None:
        """An API outage until :meth:`come_back`: open connections (watches too) and new requests are
        dropped without a response. The port stays bound, so nothing else can take it meanwhile."""
        with self._changed:
            self._down = True
            self._changed.notify_all()
        self._drop_connections()

    def come_back(self) -> None:
        with self._changed:
            self._down = False

    def _drop_connections(self) -> None:
        for connection in list(self._connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> KubeApiStub:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig whose current context is this stub (bearer token auth when a token is set)."""
        return write_kubeconfig(path, self.name, self.url, self.token, namespace)

    # ---- what the tests look at ----

    def recorded(self, method: str | None = None, path_prefix: str = "") -> list[Request]:
        with self._changed:
            return [r for r in self.requests
                    if (method is None or r.method == method) and r.path.startswith(path_prefix)]

    def created_pods(self) -> list[dict]:
        """The bodies of all pod creations, in order."""
        return [r.body for r in self.recorded("POST") if POD_PATH.match(r.path)]

    def pod_log(self, namespace: str, name: str) -> str:
        path = self._log_path(namespace, name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    # ---- state changes (under the lock) ----

    def _emit(self, event_type: str, pod: dict) -> None:
        self._resource_version += 1
        pod["metadata"]["resourceVersion"] = str(self._resource_version)
        self.events.append((self._resource_version, event_type, copy.deepcopy(pod)))
        self._changed.notify_all()

    def add_pod(self, namespace: str, body: dict, phase: str = "Pending") -> None:
        """Create a pod as if a client had (without running it) and move it to ``phase``."""
        code, created = self._create(namespace, body)
        assert code == 201, created
        if phase != "Pending":
            self.set_phase(namespace, body["metadata"]["name"], phase)

    def set_phase(self, namespace: str, name: str, phase: str, exit_code: int | None = None) -> None:
        """Move a pod to ``phase`` (with a container status to match) and tell the watchers."""
        with self._changed:
            pod = self.pods.get((namespace, name))
            if pod is None:
                return
            containers = pod["spec"].get("containers") or [{"name": "base"}]
            if phase == "Running":
                state = {"running": {"startedAt": now()}}
            elif phase in ("Succeeded", "Failed"):
                code = exit_code or 0
                state = {"terminated": {"exitCode": code, "startedAt": now(), "finishedAt": now(),
                                        "reason": "Completed" if code == 0 else "Error"}}
            else:
                state = {"waiting": {"reason": "ContainerCreating"}}
            pod["status"].update(phase=phase, containerStatuses=[
                {"name": c["name"], "image": c.get("image") or "", "imageID": "", "restartCount": 0,
                 "ready": phase == "Running", "started": phase == "Running", "state": state}
                for c in containers
            ])
            self._emit("MODIFIED", pod)

    def _create(self, namespace: str, body: dict) -> tuple[int, dict]:
        metadata = body.setdefault("metadata", {})
        name = metadata.get("name")
        if not name:
            return 422, status(422, "Invalid", "metadata.name is required (generateName is not supported)")
        if metadata.setdefault("namespace", namespace) != namespace:
            return 400, status(400, "BadRequest", "the namespace of the object does not match the request")
        with self._changed:
            if (namespace, name) in self.pods:
                return 409, status(409, "AlreadyExists", f'pods "{name}" already exists')
            pod = copy.deepcopy(body)
            pod.update(apiVersion="v1", kind="Pod")
            pod["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now())
            pod["metadata"].setdefault("labels", {})
            pod["metadata"].setdefault("annotations", {})
            pod["status"] = {"phase": "Pending"}
            self.pods[(namespace, name)] = pod
            self._emit("ADDED", pod)
            created = copy.deepcopy(pod)
        if self.kubelet_env is not None:
            threading.Thread(target=self._run_pod, args=(namespace, name, created), daemon=True).start()
        return 201, created

    def _delete(self, namespace: str, name: str) -> tuple[int, dict]:
        with self._changed:
            pod = self.pods.pop((namespace, name), None)
            if pod is None:
                return 404, status(404, "NotFound", f'pods "{name}" not found')
            pod["metadata"]["deletionTimestamp"] = now()
            self._emit("DELETED", pod)
            process = self.processes.get((namespace, name))
        if process is not None:
            stop_process_group(process, grace=10)
        return 200, copy.deepcopy(pod)

    def _patch(self, namespace: str, name: str, patch: dict) -> tuple[int, dict]:
        with self._changed:
            pod = self.pods.get((namespace, name))
            if pod is None:
                return 404, status(404, "NotFound", f'pods "{name}" not found')
            merge_patch(pod, patch)
            self._emit("MODIFIED", pod)
            return 200, copy.deepcopy(pod)

    def _list(self, namespace: str | None, query: dict[str, str]) -> dict:
        with self._changed:
            items = [copy.deepcopy(pod) for pod in self._matching(namespace, query, self.pods.values())]
            version = str(self._resource_version)
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": version}, "items": items}

    def _matching(self, namespace: str | None, query: dict[str, str], pods) -> list[dict]:
        return [
            pod for pod in pods
            if namespace in (None, pod["metadata"]["namespace"])
            and matches(query.get("labelSelector"), pod["metadata"].get("labels") or {})
            and matches(query.get("fieldSelector"), pod_fields(pod))
        ]

    # ---- the mini-kubelet ----

    def _log_path(self, namespace: str, name: str) -> Path | None:
        return self.log_dir / f"{self.name}-{namespace}-{name}.log" if self.log_dir else None

    def _run_pod(self, namespace: str, name: str, pod: dict) -> None:
        container = pod["spec"]["containers"][0]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        env = dict(self.kubelet_env or {})
        env.update({e["name"]: e["value"] for e in container.get("env") or [] if "value" in e})
        env["HOSTNAME"] = name
        log_path = self._log_path(namespace, name)
        time.sleep(0.2)
        self.set_phase(namespace, name, "Running")
        with open(log_path or os.devnull, "w") as log:
            try:
                process = subprocess.Popen(argv, env=env, cwd=self.kubelet_cwd, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as error:
                log.write(f"kubelet stub: cannot start {argv}: {error}\n")
                self.set_phase(namespace, name, "Failed", exit_code=128)
                return
            with self._changed:
                self.processes[(namespace, name)] = process
            exit_code = process.wait()
        with self._changed:
            self.processes.pop((namespace, name), None)
            if self._stopping:
                return
        self.set_phase(namespace, name, "Succeeded" if exit_code == 0 else "Failed", exit_code=exit_code)

    # ---- watches ----

    def _watch(self, handler: BaseHTTPRequestHandler, namespace: str | None, query: dict[str, str]) -> None:
        """Stream events as JSON lines until timeoutSeconds, like ``?watch=true``."""
        deadline = time.monotonic() + int(query.get("timeoutSeconds") or 1800)
        since = query.get("resourceVersion") or "0"
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        with self._changed:
            if since == "0":  # "any version": the current state first, as ADDED events
                pending = [("ADDED", copy.deepcopy(p)) for p in self._matching(namespace, query, self.pods.values())]
                position = len(self.events)
            else:
                pending = []
                position = next((i for i, (rv, _, _) in enumerate(self.events) if rv > int(since)), len(self.events))
        try:
            while True:
                for event_type, pod in pending:
                    line = json.dumps({"type": event_type, "object": pod}).encode() + b"\n"
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                handler.wfile.flush()
                with self._changed:
                    while (position == len(self.events) and not (self._stopping or self._down)
                           and time.monotonic() < deadline):
                        self._changed.wait(min(1.0, max(deadline - time.monotonic(), 0.01)))
                    if self._stopping or self._down:
                        handler.close_connection = True
                        return
                    if position == len(self.events):  # timeoutSeconds reached: end the stream cleanly
                        handler.wfile.write(b"0\r\n\r\n")
                        handler.wfile.flush()
                        return
                    new, position = self.events[position:], len(self.events)
                    pending = [(t, p) for _, t, p in new if self._matching(namespace, query, [p])]
        except (BrokenPipeError, ConnectionResetError, OSError):
            handler.close_connection = True

    # ---- HTTP ----

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                stub._connections.add(self.connection)

            def finish(self):
                stub._connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PUT(self):
                self._serve("PUT")

            def do_PATCH(self):
                self._serve("PATCH")

            def do_DELETE(self):
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                authorization = self.headers.get("Authorization")
                with stub._changed:
                    if stub._down:
                        self.close_connection = True
                        return
                    stub.requests.append(Request(method, parts.path, query, body, authorization))
                if stub.token and authorization != f"Bearer {stub.token}":
                    return self._json(401, status(401, "Unauthorized", "Unauthorized"))
                self._route(method, parts.path, query, body)

            def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
                if method == "GET" and path in STATIC:
                    return self._json(200, STATIC[path])
                match = POD_PATH.match(path)
                if not match:
                    return self._json(404, status(404, "NotFound", f"the server could not find {path}"))
                namespace, name, sub = match.group("ns"), match.group("name"), match.group("sub")
                if name is None:
                    if method == "GET" and query.get("watch", "").lower() in ("true", "1"):
                        return stub._watch(self, namespace, query)
                    if method == "GET":
                        return self._json(200, stub._list(namespace, query))
                    if method == "POST" and namespace and isinstance(body, dict):
                        return self._json(*stub._create(namespace, body))
                elif namespace and sub == "log" and method == "GET":
                    with stub._changed:
                        known = (namespace, name) in stub.pods
                    if not known:
                        return self._json(404, status(404, "NotFound", f'pods "{name}" not found'))
                    return self._send(200, stub.pod_log(namespace, name).encode(), "text/plain")
                elif namespace and sub is None:
                    if method == "GET":
                        with stub._changed:
                            pod = copy.deepcopy(stub.pods.get((namespace, name)))
                        if pod is None:
                            return self._json(404, status(404, "NotFound", f'pods "{name}" not found'))
                        return self._json(200, pod)
                    if method == "DELETE":
                        return self._json(*stub._delete(namespace, name))
                    if method == "PATCH" and isinstance(body, dict):
                        return self._json(*stub._patch(namespace, name, body))
                return self._json(405, status(405, "MethodNotAllowed", f"{method} {path} is not supported"))

            def _json(self, code: int, document: dict) -> None:
                self._send(code, json.dumps(document).encode(), "application/json")

            def _send(self, code: int, payload: bytes, content_type: str) -> None:
                self.send_response(code, HTTPStatus(code).phrase)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def write_kubeconfig(path: Path, name: str, server: str, token: str | None, namespace: str = "default") -> Path:
    """A kubeconfig whose current context is the API server at ``server``."""
    user = {"token": token} if token else {}
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
    }, indent=2))
    return path
