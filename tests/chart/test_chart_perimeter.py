"""The team perimeter as rendered: who holds which secret, and who may reach whom (NetworkPolicies).

The reachability check evaluates the rendered NetworkPolicies the way Kubernetes defines them (a pod
selected by a policy of a direction accepts only what some rule of those policies allows; traffic needs
the source's egress and the target's ingress) over every rendered pod, the KubernetesExecutor teams'
task pod templates and the cluster DNS. It checks the policies, not a CNI that enforces them.
"""

from __future__ import annotations

import functools

import pytest

from tests.chart.chart_objects import NAMESPACE, PREFIX, Network, render, team_values

TEAM_COUNTS = (1, 2, 10)
DATABASE_COMPONENTS = {"scheduler", "webserver", "migrate-database", "create-user", "internal-api"}


@functools.lru_cache
def rendered_teams(count: int):
    return render({"teams": team_values(count)})


def shared_secrets() -> set[str]:
    return {f"{PREFIX}-{name}" for name in ("database", "postgresql", "webserver", "admin")}


@pytest.mark.parametrize("count", TEAM_COUNTS)
def test_no_team_pod_holds_the_database_url_or_another_teams_secrets(count):
    rendered = rendered_teams(count)
    database_url = rendered.secret_data(f"{PREFIX}-database", "airflow")["connection"]
    database_password = rendered.secret_data(f"{PREFIX}-postgresql", "airflow")["password"]
    teams = [t["name"] for t in team_values(count)]
    for team in teams:
        slug = team.replace("_", "-")
        own = {f"{PREFIX}-{slug}-keys", f"{PREFIX}-{slug}-broker", f"{PREFIX}-fernet"}
        pods = rendered.team_pods(team)
        assert {p.component for p in pods} >= {"dag-processor", "triggerer"}
        for pod in pods:
            assert pod.secret_refs() <= own, (pod.name, pod.secret_refs() - own)
            assert not pod.secret_refs() & shared_secrets()
            for container in pod.containers:
                env = pod.env(rendered, container)
                values = "\n".join(env.values())
                assert database_url not in values and database_password not in values, pod.name
                assert "postgresql" not in values
                assert env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "none://") == "none://"
                others = [k for k in env if k.startswith("AIRFLOW__") and "___" in k
                          and not k.startswith(f"AIRFLOW__{team.upper()}___") and not k.endswith("___CORE__DAGS_FOLDER")]
                assert others == [], (pod.name, others)
            env = pod.env(rendered)
            prefix = f"AIRFLOW__{team.upper()}___CORE__"
            assert env[f"{prefix}INTERNAL_API_URL"] == f"http://{PREFIX}-{slug}-internal-api.airflow.svc:9080"
            own_keys = rendered.secret_data(f"{PREFIX}-{slug}-keys", pod.namespace)
            assert env[f"{prefix}INTERNAL_API_SECRET_KEY"] == own_keys["internal-api-secret-key"]
            assert f"{prefix}INTERNAL_API_PREVIOUS_SECRET_KEY" not in env
            # the Fernet key only where triggers are decrypted
            assert ("AIRFLOW__CORE__FERNET_KEY" in env) == (pod.component == "triggerer"), pod.name
            assert "AIRFLOW__WEBSERVER__SECRET_KEY" not in env
    # and the database URL is only where it belongs
    holders = {p.component for p in rendered.pods if f"{PREFIX}-database" in p.secret_refs()}
    assert holders == DATABASE_COMPONENTS
    keys = [k for t in teams for k in (f"{PREFIX}-{t.replace('_', '-')}-keys",)]
    assert len(set(rendered.secret_data(k, "airflow")["internal-api-secret-key"] for k in keys)) == len(teams)


@pytest.mark.parametrize("count", TEAM_COUNTS)
def test_each_internal_api_has_the_database_and_only_its_teams_keys(count):
    rendered = rendered_teams(count)
    for team in (t["name"] for t in team_values(count)):
        pod = rendered.pod("internal-api", team)
        assert pod.main["args"][:3] == ["internal-api", "--team", team]
        env = pod.env(rendered)
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql://airflow:")
        team_vars = {k for k in env if "___" in k and not k.endswith("___CORE__DAGS_FOLDER")}
        assert team_vars and all(k.startswith(f"AIRFLOW__{team.upper()}___") for k in team_vars), team_vars
        assert "AIRFLOW__WEBSERVER__SECRET_KEY" not in env


@pytest.mark.parametrize("count", TEAM_COUNTS)
def test_network_policies_confine_each_team(count):
    rendered = rendered_teams(count)
    network = Network(rendered)
    teams = team_values(count)
    api = {t["name"]: rendered.pod("internal-api", t["name"]) for t in teams}
    redis = {t["name"]: rendered.pod("redis", t["name"]) for t in teams if t["executor"] == "celery"}
    postgresql = rendered.pod("postgresql")

    for team in teams:
        name = team["name"]
        allowed = {(api[name].name, 9080), ("kube-dns", 53)}
        if name in redis:
            allowed.add((redis[name].name, 6379))
        pods = rendered.team_pods(name)
        assert {p.component for p in pods} == ({"dag-processor", "triggerer", "worker"})
        for pod in pods:
            reachable = network.reachable_from(pod)
            assert reachable <= allowed, (pod.name, sorted(reachable - allowed))
            assert {(api[name].name, 9080), ("kube-dns", 53)} <= reachable, pod.name
            if pod.component == "worker" and name in redis and pod.namespace == "airflow":
                assert (redis[name].name, 6379) in reachable
            # nothing reaches a team pod (its log servers are off)
            assert network.sources_of(pod, (0, "TCP", None)) == set(), pod.name
        # only the team's own pods reach its internal API, only the scheduler and its workers its Redis
        assert network.sources_of(api[name], (9080, "TCP", "http")) == {p.name for p in pods}
        if name in redis:
            assert network.sources_of(redis[name], (6379, "TCP", "redis")) == (
                {rendered.pod("scheduler").name} | {p.name for p in pods if p.component == "worker"})

    database_sources = network.sources_of(postgresql, (5432, "TCP", "postgresql"))
    assert {p.component for p in network.pods if p.name in database_sources} == DATABASE_COMPONENTS
    assert len(database_sources) == 4 + count  # scheduler, webserver, 2 jobs, one internal API per team
    # every pod the chart starts is selected by an ingress policy
    assert [p.name for p in rendered.pods if not network.ingress_selected(p)] == []


def test_log_fetching_opens_only_the_log_ports_to_the_webserver_and_is_off_by_default():
    rendered = render({"teams": team_values(2), "webserver": {"fetchLogsFromTeamPods": True}})
    network = Network(rendered)
    webserver = rendered.pod("webserver")
    worker = rendered.pod("worker", "team_01")
    triggerer = rendered.pod("triggerer", "team_01")
    assert network.sources_of(worker, (8793, "TCP", "logs")) == {webserver.name}
    assert network.sources_of(triggerer, (8794, "TCP", "logs")) == {webserver.name}
    assert network.sources_of(worker, (0, "TCP", None)) == set()
    # each team's log servers verify with their own team's log key only, never the webserver's key
    # (patch teams-log-server-keys); the webserver holds every team's
    webserver_env = webserver.env(rendered)
    log_keys = {}
    for team in ("team_01", "team_02"):
        name = f"AIRFLOW__{team.upper()}___LOGGING__LOG_SERVER_SECRET_KEY"
        log_keys[team] = rendered.secret_data(f"{PREFIX}-{team.replace('_', '-')}-keys", NAMESPACE)[
            "log-server-secret-key"]
        assert webserver_env[name] == log_keys[team]
        for component in ("worker", "triggerer", "dag-processor"):
            env = rendered.pod(component, team).env(rendered)
            assert "AIRFLOW__WEBSERVER__SECRET_KEY" not in env, (component, team)
            assert webserver_env["AIRFLOW__WEBSERVER__SECRET_KEY"] not in env.values(), (component, team)
            # log servers: Celery workers and triggerers (a KubernetesExecutor team's "worker" is its task pod)
            serves_logs = component == "triggerer" or (component == "worker" and team == "team_01")
            assert [k for k in env if k.endswith("___LOGGING__LOG_SERVER_SECRET_KEY")] == (
                [name] if serves_logs else []), (component, team)
            if serves_logs:
                assert env[name] == log_keys[team]
    assert len(set(log_keys.values())) == 2
    assert "--skip-serve-logs" not in worker.main["args"]
    default = rendered_teams(2)
    assert "--skip-serve-logs" in default.pod("worker", "team_01").main["args"]
    assert "--skip-serve-logs" in default.pod("triggerer", "team_01").main["args"]


def test_extra_egress_and_an_external_broker_are_per_team():
    teams = team_values(2)
    teams[0]["celery"] = {"redis": {"enabled": False}, "brokerUrl": "redis://:pw@broker-a.example:6379/0",
                          "resultBackend": "redis://:pw@broker-a.example:6379/1",
                          "brokerPeers": [{"ipBlock": {"cidr": "192.0.2.10/32"}}]}
    teams[1]["networkPolicy"] = {"extraEgress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}],
                                                  "ports": [{"port": 8200}]}]}
    rendered = render({"teams": teams})
    policies = {p["metadata"]["namespace"] + "/" + p["metadata"]["name"]: p for p in rendered.of_kind("NetworkPolicy")}
    egress_a = policies[f"airflow/{PREFIX}-team-01-perimeter"]["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"port": 6379, "protocol": "TCP"}]} in egress_a
    assert not [o for o in rendered.objects if o["metadata"]["name"] == f"{PREFIX}-team-01-redis"]
    worker_env = rendered.pod("worker", "team_01").env(rendered)
    assert worker_env["AIRFLOW__TEAM_01___CELERY__BROKER_URL"] == "redis://:pw@broker-a.example:6379/0"
    egress_b = policies[f"tasks-team-02/{PREFIX}-team-02-perimeter"]["spec"]["egress"]
    assert egress_b[-1] == {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"port": 8200}]}
    assert not any(rule.get("to") == [{"ipBlock": {"cidr": "198.51.100.0/24"}}] for rule in egress_a)


def test_rotating_a_teams_key_restarts_the_right_pods_in_the_right_order():
    """docs/helm.md "Rotating a team's internal API key": three upgrades, no refused call in between."""
    old, new = "o" * 40, "n" * 40

    def state(api_values):
        teams = team_values(2)
        teams[0]["internalApi"] = api_values
        rendered = render({"teams": teams})
        keys = rendered.secret_data(f"{PREFIX}-team-01-keys", "airflow")
        api = rendered.pod("internal-api", "team_01")
        restart = {p.component: p.annotations for p in [*rendered.team_pods("team_01"), api]}
        accepted = {keys["internal-api-secret-key"], keys.get("internal-api-previous-secret-key")} - {None}
        signing = rendered.pod("worker", "team_01").env(rendered)["AIRFLOW__TEAM_01___CORE__INTERNAL_API_SECRET_KEY"]
        previous_env = api.env(rendered).get("AIRFLOW__TEAM_01___CORE__INTERNAL_API_PREVIOUS_SECRET_KEY")
        return restart, accepted, signing, previous_env

    before = state({"secretKey": old})
    step1 = state({"secretKey": old, "previousSecretKey": new})
    step2 = state({"secretKey": new, "previousSecretKey": old})
    step3 = state({"secretKey": new})
    assert before[1:3] == ({old}, old)
    # 1: the internal API also accepts the new key and restarts; the components keep signing with the old one
    assert step1[1:] == ({old, new}, old, new)
    assert step1[0]["internal-api"] != before[0]["internal-api"]
    assert all(step1[0][c] == before[0][c] for c in ("worker", "triggerer", "dag-processor"))
    # 2: the components sign with the new key and restart; the internal API accepts both throughout
    assert step2[1:] == ({old, new}, new, old)
    assert all(step2[0][c] != step1[0][c] for c in ("worker", "triggerer", "dag-processor", "internal-api"))
    # 3: the old key is gone; only the internal API restarts
    assert step3[1:] == ({new}, new, None)
    assert all(step3[0][c] == step2[0][c] for c in ("worker", "triggerer", "dag-processor"))
    assert step3[0]["internal-api"] != step2[0]["internal-api"]
