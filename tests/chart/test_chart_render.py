"""chart/: lint, Kubernetes schemas, the components of every team, generated configuration, image reference.

Rendered offline with the Helm embedded in helm-python-sdk; no cluster (docs/helm.md says what that leaves
unverified).
"""

from __future__ import annotations

import functools
import json

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from tests.chart.chart_objects import CHART, NAMESPACE, PREFIX, REPO_ROOT, render, team_values

# kubernetes-validate reads its schema files (the definitions are megabytes) on every call; read each once.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.27", "1.37")
TEAM_COUNTS = (1, 2, 10)


@functools.lru_cache
def rendered_teams(count: int):
    return render({"teams": team_values(count)})


def test_lint_is_clean_with_the_default_and_the_example_values():
    import helm_python as helm

    example = yaml.safe_load((CHART / "examples" / "two-teams.yaml").read_text())
    for values in (None, example, {"teams": team_values(10)}):
        report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
        # Only Helm's "icon is recommended" (INFO) remains: no warning, no error.
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("count", TEAM_COUNTS)
def test_every_rendered_object_is_valid_for_kubernetes(count):
    rendered = rendered_teams(count)
    task_pods = rendered.task_pod_templates()
    assert len(task_pods) == count // 2
    for obj in [*rendered.objects, *task_pods]:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                raise AssertionError(f"{obj['kind']} {obj['metadata']['name']} (Kubernetes {version}): "
                                     f"{err.caught.message} at {list(err.caught.absolute_path)}") from None


def test_the_validator_refuses_an_unknown_field():
    deployment = rendered_teams(1).get("Deployment", f"{PREFIX}-scheduler")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True  # typo: System
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37", strict=True)


@pytest.mark.parametrize("count", TEAM_COUNTS)
def test_each_team_gets_its_components(count):
    rendered = rendered_teams(count)
    names = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in rendered.objects}
    for team in team_values(count):
        slug = team["name"].replace("_", "-")
        base = f"{PREFIX}-{slug}"
        expected = {
            ("Deployment", NAMESPACE, f"{base}-dag-processor-0"),
            ("Deployment", NAMESPACE, f"{base}-triggerer"),
            ("Deployment", NAMESPACE, f"{base}-internal-api"),
            ("Service", NAMESPACE, f"{base}-internal-api"),
            ("Secret", NAMESPACE, f"{base}-keys"),
            ("ServiceAccount", NAMESPACE, f"{base}-team"),
            ("NetworkPolicy", NAMESPACE, f"{base}-perimeter"),
            ("NetworkPolicy", NAMESPACE, f"{base}-internal-api"),
        }
        if team["executor"] == "celery":
            expected |= {
                ("Deployment", NAMESPACE, f"{base}-worker"),
                ("Deployment", NAMESPACE, f"{base}-redis"),
                ("Service", NAMESPACE, f"{base}-redis"),
                ("Secret", NAMESPACE, f"{base}-broker"),
                ("NetworkPolicy", NAMESPACE, f"{base}-redis"),
            }
        else:
            tasks = team["kubernetes"]["namespace"]
            expected |= {
                ("ConfigMap", NAMESPACE, f"{base}-pod-template"),
                # in the team's task namespace: what its task pods need, and the scheduler's rights there
                ("ServiceAccount", tasks, f"{base}-team"),
                ("Secret", tasks, f"{base}-keys"),
                ("ConfigMap", tasks, f"{PREFIX}-config"),
                ("NetworkPolicy", tasks, f"{base}-perimeter"),
                ("Role", tasks, f"{base}-pods"),
                ("RoleBinding", tasks, f"{base}-pods"),
                ("Role", tasks, f"{base}-pod-logs"),
            }
            assert not {n for n in names if n[2] in (f"{base}-worker", f"{base}-redis")}
        assert expected <= names, sorted(expected - names)
    shared = {"scheduler", "webserver", "postgresql", "migrate-database", "create-user"}
    assert shared <= {p.component for p in rendered.pods if p.team is None}


def test_one_dag_processor_per_dag_folder():
    teams = [{"name": "team_a", "executor": "celery",
              "dags": {"folders": ["/srv/a/main", "/srv/a/ml"], "mountPath": "/srv/a",
                       "volume": {"persistentVolumeClaim": {"claimName": "a"}}}}]
    rendered = render({"teams": teams})
    processors = [p for p in rendered.pods if p.component == "dag-processor"]
    assert sorted(p.main["args"][p.main["args"].index("--subdir") + 1] for p in processors) == ["/srv/a/main", "/srv/a/ml"]
    for pod in processors:
        assert pod.env(rendered)["AIRFLOW__TEAM_A___CORE__DAGS_FOLDER"] == "/srv/a/main,/srv/a/ml"
        assert {"name": "dags", "mountPath": "/srv/a", "readOnly": True} in pod.main["volumeMounts"]


@pytest.mark.parametrize("count", TEAM_COUNTS)
def test_the_executor_json_and_team_variables_come_from_the_values(count):
    rendered = rendered_teams(count)
    scheduler = rendered.pod("scheduler")
    env = scheduler.env(rendered)
    assert env["AIRFLOW__CORE__MULTI_TEAM"] == "True"
    assert env["AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION"] == "True"
    assert env["AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR"] == "True"
    executors = json.loads(env["AIRFLOW__CORE__EXECUTOR"])
    teams = team_values(count)
    assert executors == {
        t["name"]: [{"name": f"{t['name']}_{t['executor']}",
                     "class": "CeleryExecutor" if t["executor"] == "celery" else "KubernetesExecutor"}]
        for t in teams
    }
    for t in teams:
        prefix = f"AIRFLOW__{t['name'].upper()}___"
        assert env[f"{prefix}CORE__DAGS_FOLDER"] == f"/opt/airflow/dags/{t['name']}"
        if t["executor"] == "celery":
            assert env[f"{prefix}CELERY__BROKER_URL"].startswith("redis://:")
            assert env[f"{prefix}CELERY__RESULT_BACKEND"].endswith("/1")
        else:
            assert env[f"{prefix}KUBERNETES_EXECUTOR__NAMESPACE"] == t["kubernetes"]["namespace"]
            template = env[f"{prefix}KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE"]
            mount = next(m for m in scheduler.main["volumeMounts"] if m["name"] == "pod-templates")
            assert template.startswith(mount["mountPath"] + "/")


def test_team_config_secrets_backend_image_and_resources_per_team():
    teams = [
        {"name": "team_a", "executor": "celery",
         "config": {"core": {"parallelism": 4}, "celery": {"worker_prefetch_multiplier": 1}},
         "secretsBackend": {"backend": "airflow.providers.hashicorp.secrets.vault.VaultBackend",
                            "kwargsSecret": "team-a-vault"},
         "image": {"repository": "registry.example/team-a-airflow", "tag": "7"},
         "resources": {"worker": {"limits": {"memory": "4Gi"}}},
         "workers": {"replicas": 3, "concurrency": 16},
         "nodeSelector": {"pool": "team-a"}},
        {"name": "team_b", "executor": "kubernetes"},
    ]
    rendered = render({"teams": teams, "workers": {"resources": {"limits": {"memory": "1Gi"}}}})
    worker = rendered.pod("worker", "team_a")
    env = worker.env(rendered)
    assert env["AIRFLOW__TEAM_A___CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__TEAM_A___SECRETS__BACKEND"] == "airflow.providers.hashicorp.secrets.vault.VaultBackend"
    assert env["AIRFLOW__TEAM_A___SECRETS__BACKEND_KWARGS"] == "<secret team-a-vault/backend-kwargs>"
    assert worker.main["image"] == "registry.example/team-a-airflow:7"
    # every pod that runs team_a's code is from team_a's image (./breeze build-image --team); its internal
    # API, shared code holding the database URL, from the fork's
    for component in ("dag-processor", "triggerer"):
        assert rendered.pod(component, "team_a").main["image"] == "registry.example/team-a-airflow:7", component
    assert rendered.pod("internal-api", "team_a").main["image"] == "airflow-teams:2.11.2-teams.1"
    assert worker.main["resources"] == {"limits": {"memory": "4Gi"}}
    assert worker.spec["nodeSelector"] == {"pool": "team-a"}
    assert "16" == worker.main["args"][worker.main["args"].index("--concurrency") + 1]
    assert rendered.get("Deployment", f"{PREFIX}-team-a-worker")["spec"]["replicas"] == 3
    # the scheduler has team_a's options (its executor reads them), not its secrets backend
    scheduler_env = rendered.pod("scheduler").env(rendered)
    assert scheduler_env["AIRFLOW__TEAM_A___CELERY__WORKER_PREFETCH_MULTIPLIER"] == "1"
    assert not any(k.startswith("AIRFLOW__TEAM_A___SECRETS__") for k in scheduler_env)
    # team_b keeps the defaults and its task pods the chart's image
    (task_pod,) = rendered.task_pod_templates()
    assert task_pod["spec"]["containers"][0]["image"] == "airflow-teams:2.11.2-teams.1"
    assert not any(k.startswith("AIRFLOW__TEAM_A___") and "DAGS_FOLDER" not in k
                   for k in rendered.pod("triggerer", "team_b").env(rendered))


def test_the_default_image_is_what_breeze_build_image_tags():
    from teams_breeze.image import default_tag
    from teams_breeze.project import Project

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = Project(REPO_ROOT)
    assert chart["appVersion"] == f"{project.fork.dists[0].version}+{project.fork.local_version}"
    rendered = rendered_teams(2)
    images = {c["image"] for p in rendered.pods for c in p.containers if p.component not in ("postgresql", "redis")}
    assert images == {default_tag(project)}


def test_pods_run_as_non_root_on_a_read_only_root_filesystem():
    rendered = rendered_teams(2)
    for pod in rendered.pods:
        assert pod.spec["securityContext"]["runAsNonRoot"] is True, pod.name
        assert pod.spec["securityContext"]["runAsUser"] != 0, pod.name
        assert pod.spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod.containers:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (pod.name, container["name"])
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
        if pod.component not in ("postgresql", "redis"):
            # where Airflow writes: emptyDirs; its configuration: read-only, so it never writes one
            volumes = {v["name"]: v for v in pod.spec["volumes"]}
            mounts = {m["mountPath"]: m for m in pod.main["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
            assert "emptyDir" in volumes[mounts["/opt/airflow/logs"]["name"]]
            assert mounts["/opt/airflow/config"]["readOnly"] is True
            env = pod.env(rendered)
            assert env["AIRFLOW_CONFIG"] == "/opt/airflow/config/airflow.cfg"
            assert env["AIRFLOW__WEBSERVER__CONFIG_FILE"] == "/opt/airflow/config/webserver_config.py"
            # every pid file goes to /tmp (airflow writes them below AIRFLOW_HOME by default)
            if "--pid" in pod.main["args"]:
                assert pod.main["args"][pod.main["args"].index("--pid") + 1].startswith("/tmp/")


def test_service_accounts_tokens_and_roles():
    rendered = rendered_teams(2)
    accounts = {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in rendered.of_kind("ServiceAccount")}
    for pod in rendered.pods:
        token = pod.spec["automountServiceAccountToken"]
        assert token is (pod.component in ("scheduler", "webserver")), pod.name
        if pod.team is not None and pod.perimeter:
            assert pod.spec["serviceAccountName"] == f"{PREFIX}-{pod.team.replace('_', '-')}-team"
            assert accounts[(pod.namespace, pod.spec["serviceAccountName"])]["automountServiceAccountToken"] is False
    subjects = {s["name"] for b in rendered.of_kind("RoleBinding") for s in b["subjects"]}
    assert subjects == {f"{PREFIX}-scheduler", f"{PREFIX}-webserver"}
    assert rendered.of_kind("ClusterRole") == [] and rendered.of_kind("ClusterRoleBinding") == []


def test_notes_name_the_teams_and_the_login():
    notes = render({"teams": team_values(2)}).notes
    assert "team_01: executor team_01_celery (CeleryExecutor" in notes
    assert "team_02: executor team_02_kubernetes (KubernetesExecutor, task pods in namespace tasks-team-02)" in notes
    assert f"get secret {PREFIX}-admin" in notes


def test_rendering_needs_no_network(tmp_path):
    """Helm comes from the helm-python-sdk wheel and renders with nothing fetched: run it without a network."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None or subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode:
        pytest.skip("cannot create a network namespace here (unshare --net)")
    code = (
        "import socket, sys\n"
        "from tests.chart.chart_objects import render, team_values\n"
        "try:\n"
        "    socket.create_connection(('pypi.org', 443), timeout=3)\n"
        "    sys.exit('the network namespace has a network')\n"
        "except OSError:\n"
        "    pass\n"
        "print(len(render({'teams': team_values(10)}).objects))\n"
    )
    result = subprocess.run(["unshare", "--net", sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 100


def test_generated_secrets_are_usable_and_kept_when_given():
    from cryptography.fernet import Fernet

    rendered = rendered_teams(2)
    Fernet(rendered.secret_data(f"{PREFIX}-fernet", NAMESPACE)["fernet-key"])  # a valid Fernet key
    given = render({"teams": team_values(1), "fernetKey": Fernet.generate_key().decode(),
                    "webserver": {"secretKey": "w" * 32}, "postgresql": {"password": "p@ss/word"}})
    assert given.secret_data(f"{PREFIX}-webserver", NAMESPACE)["secret-key"] == "w" * 32
    url = given.secret_data(f"{PREFIX}-database", NAMESPACE)["connection"]
    assert url == f"postgresql://airflow:p%40ss%2Fword@{PREFIX}-postgresql.{NAMESPACE}.svc:5432/airflow"


@pytest.mark.parametrize("database", [{"url": "postgresql://u:p@db.example:5432/airflow"}, {"existingSecret": "my-db"}])
def test_an_external_database_replaces_the_chart_postgresql(database):
    rendered = render({"teams": team_values(2), "postgresql": {"enabled": False}, "database": database})
    assert not [o for o in rendered.objects if o["metadata"]["labels"].get("app.kubernetes.io/component") == "postgresql"]
    secret = database.get("existingSecret", f"{PREFIX}-database")
    assert (rendered.secret_data(secret, NAMESPACE) is not None) == ("url" in database)
    for pod in rendered.pods:
        refs = {v["valueFrom"]["secretKeyRef"]["name"] for v in pod.main["env"]
                if v["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" and "valueFrom" in v}
        assert refs == ({secret} if pod.component in ("scheduler", "webserver", "migrate-database", "create-user",
                                                      "internal-api") else set()), pod.name
