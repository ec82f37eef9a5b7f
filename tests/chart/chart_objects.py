"""Rendering the chart with the Helm embedded in ``helm-python-sdk``, and reading the rendered objects.

No cluster and no helm binary: ``helm_python`` binds Helm's Go SDK (a shared library inside its wheel)
and renders offline, as ``helm template`` does (``lookup`` finds nothing, so generated secrets are new
random values in every render). Values are validated against ``chart/values.schema.json`` by that Helm.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "chart"
RELEASE = "airflow"
NAMESPACE = "airflow"
PREFIX = f"{RELEASE}-airflow-teams"
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def team_values(count: int, kubernetes_every: int = 2) -> list[dict]:
    """``count`` teams: every ``kubernetes_every``-th one runs the KubernetesExecutor in a namespace of its
    own, the others Celery with the chart's Redis. Each has a DAG claim and a secrets backend."""
    teams = []
    for i in range(1, count + 1):
        name = f"team_{i:02d}"
        team: dict = {
            "name": name,
            "executor": "kubernetes" if kubernetes_every and i % kubernetes_every == 0 else "celery",
            "dags": {"volume": {"persistentVolumeClaim": {"claimName": f"{name.replace('_', '-')}-dags"}}},
            "secretsBackend": {
                "backend": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
                "kwargs": {"variables_file_path": f"/opt/airflow/secrets/{name}/variables.json"},
            },
        }
        if team["executor"] == "kubernetes":
            team["kubernetes"] = {"namespace": f"tasks-{name.replace('_', '-')}"}
        teams.append(team)
    return teams


class RenderError(Exception):
    """Helm refused the values (schema) or a template failed; ``str()`` is Helm's message."""


@functools.lru_cache(maxsize=64)
def _render(values_json: str, release: str, namespace: str) -> tuple[tuple[str, str], ...]:
    import helm_python as helm

    try:
        with helm.Chart.load(str(CHART)) as chart:
            manifests = chart.render(json.loads(values_json), name=release, namespace=namespace,
                                     is_install=True)
    except helm.HelmError as err:
        raise RenderError(str(err)) from None
    return tuple(sorted(manifests.items()))


@dataclass
class Rendered:
    objects: list[dict]
    notes: str

    def of_kind(self, kind: str, namespace: str | None = None) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind
                and (namespace is None or o["metadata"]["namespace"] == namespace)]

    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict:
        found = [o for o in self.of_kind(kind, namespace) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} rendered"
        return found[0]

    def secret_data(self, name: str, namespace: str) -> dict[str, str] | None:
        for secret in self.of_kind("Secret", namespace):
            if secret["metadata"]["name"] == name:
                data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
                return data | dict(secret.get("stringData") or {})
        return None

    @functools.cached_property
    def pods(self) -> list[Pod]:
        """Every pod the chart starts: workload templates, and each KubernetesExecutor team's task pod
        template (the ConfigMap the scheduler reads)."""
        pods = []
        for obj in self.objects:
            if obj["kind"] in WORKLOADS:
                template = obj["spec"]["template"]
                pods.append(Pod(f"{obj['kind']}/{obj['metadata']['name']}", obj["metadata"]["namespace"],
                                template["metadata"].get("labels", {}), template["spec"],
                                template["metadata"].get("annotations", {})))
        for pod in self.task_pod_templates():
            pods.append(Pod(f"TaskPod/{pod['metadata']['name']}", pod["metadata"]["namespace"],
                            pod["metadata"]["labels"], pod["spec"]))
        return pods

    def task_pod_templates(self) -> list[dict]:
        return [yaml.safe_load(cm["data"]["pod-template.yaml"]) for cm in self.of_kind("ConfigMap")
                if cm["metadata"]["labels"].get("app.kubernetes.io/component") == "pod-template"]

    def pod(self, component: str, team: str | None = None) -> Pod:
        found = [p for p in self.pods if p.component == component and p.team == team]
        assert len(found) == 1, f"{component} of {team}: {[p.name for p in found]}"
        return found[0]

    def team_pods(self, team: str) -> list[Pod]:
        """The pods that run ``team``'s code (its perimeter)."""
        return [p for p in self.pods if p.team == team and p.perimeter]


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict
    spec: dict
    annotations: dict = field(default_factory=dict)
    env_cache: dict = field(default_factory=dict, repr=False)

    @property
    def component(self) -> str:
        return self.labels["app.kubernetes.io/component"]

    @property
    def team(self) -> str | None:
        return self.labels.get("airflow-teams/team")

    @property
    def perimeter(self) -> bool:
        return self.labels.get("airflow-teams/perimeter") == "team"

    @property
    def containers(self) -> list[dict]:
        return [*self.spec.get("initContainers", []), *self.spec["containers"]]

    @property
    def main(self) -> dict:
        return self.spec["containers"][0]

    def ports(self) -> list[tuple[int, str, str | None]]:
        """(port, protocol, name) of the pod's containers."""
        return [(p["containerPort"], p.get("protocol", "TCP"), p.get("name"))
                for c in self.spec["containers"] for p in c.get("ports", [])]

    def secret_refs(self) -> set[str]:
        """Names of every Secret the pod reads: env, envFrom, volumes (also projected)."""
        names = set()
        for container in self.containers:
            for var in container.get("env", []):
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    names.add(source["secretRef"]["name"])
        for volume in self.spec.get("volumes", []):
            if "secret" in volume:
                names.add(volume["secret"]["secretName"])
            for source in (volume.get("projected") or {}).get("sources", []):
                if "secret" in source:
                    names.add(source["secret"]["name"])
        return names

    def env(self, rendered: Rendered, container: dict | None = None) -> dict[str, str]:
        """The container's environment as Kubernetes gives it: values, Secret keys (from the rendered
        Secrets; ``<secret NAME/KEY>`` for a Secret the chart does not render) and ``$(VAR)`` references."""
        container = container or self.main
        key = container["name"]
        if key not in self.env_cache:
            self.env_cache[key] = resolve_env(container, rendered, self.namespace)
        return self.env_cache[key]


def resolve_env(container: dict, rendered: Rendered, namespace: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            value = re.sub(r"\$\(([A-Za-z0-9_.-]+)\)", lambda m: env.get(m.group(1), m.group(0)), str(var["value"]))
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            data = rendered.secret_data(ref["name"], namespace)
            if data is None:
                value = f"<secret {ref['name']}/{ref['key']}>"
            elif ref["key"] in data:
                value = data[ref["key"]]
            elif ref.get("optional"):
                continue
            else:
                raise AssertionError(f"{container['name']}: Secret {ref['name']} has no key {ref['key']}")
        env[var["name"]] = value
    return env


def render(values: dict | None = None, release: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
    """The objects the chart renders for ``values`` (merged over values.yaml by Helm)."""
    manifests = _render(json.dumps(values or {}, sort_keys=True), release, namespace)
    objects, notes = [], ""
    for path, text in manifests:
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects += [copy.deepcopy(doc) for doc in yaml.safe_load_all(text) if doc]
    return Rendered(objects, notes)


def render_error(values: dict) -> str:
    """Helm's message for values it refuses (fails the test if it renders them)."""
    try:
        render(values)
    except RenderError as err:
        return str(err)
    raise AssertionError(f"the chart rendered values it should refuse: {values}")


# ---- NetworkPolicies: which pod may reach which pod and port ------------------------------------

ANY_PORT = (0, "TCP", None)  # a port the pod does not declare: reached only through a rule without ports
DNS = Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns", "app.kubernetes.io/component": "kube-dns"},
          {"containers": [{"name": "dns", "ports": [{"containerPort": 53, "protocol": "UDP"},
                                                    {"containerPort": 53, "protocol": "TCP"}]}]})


def _matches(selector: dict | None, labels: dict) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: dict, policy_namespace: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return True  # over-approximation: an address range may hold any pod
    namespace_labels = {"kubernetes.io/metadata.name": pod.namespace}
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or _matches(peer["podSelector"], pod.labels)


def _port_matches(rule_ports: list | None, port: tuple[int, str, str | None]) -> bool:
    if not rule_ports:
        return True
    number, protocol, name = port
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != protocol:
            continue
        wanted = rule_port.get("port")
        if wanted is None or wanted == number or (name is not None and wanted == name):
            return True
    return False


class Network:
    """The rendered NetworkPolicies as a reachability relation over the rendered pods (and cluster DNS)."""

    def __init__(self, rendered: Rendered):
        self.policies = rendered.of_kind("NetworkPolicy")
        self.pods = [*rendered.pods, DNS]

    def _policies(self, pod: Pod, direction: str) -> list[dict]:
        return [p for p in self.policies if p["metadata"]["namespace"] == pod.namespace
                and _matches(p["spec"]["podSelector"], pod.labels)
                and direction in p["spec"].get("policyTypes", ["Ingress"])]

    def _allowed(self, policy_pod: Pod, other: Pod, port, direction: str) -> bool:
        policies = self._policies(policy_pod, direction)
        if not policies:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if (not peers or any(_peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers)) \
                        and _port_matches(rule.get("ports"), port):
                    return True
        return False

    def can_reach(self, source: Pod, target: Pod, port) -> bool:
        return self._allowed(source, target, port, "Egress") and self._allowed(target, source, port, "Ingress")

    def reachable_from(self, source: Pod) -> set[tuple[str, int]]:
        """(target pod name, port) pairs ``source`` may open; port 0 means a port the target does not declare."""
        return {(target.name, port[0]) for target in self.pods if target is not source
                for port in [*target.ports(), ANY_PORT] if self.can_reach(source, target, port)}

    def sources_of(self, target: Pod, port) -> set[str]:
        return {source.name for source in self.pods if source is not target and self.can_reach(source, target, port)}

    def ingress_selected(self, pod: Pod) -> bool:
        return bool(self._policies(pod, "Ingress"))
