"""The Helm chart in helm/llmproxy, rendered by Helm itself and validated against Kubernetes' schemas.

Rendering uses helm-python-sdk: Helm's own Go SDK (v4) built into a shared library that the wheel ships, called
through ctypes, so no helm binary is needed and the templates run on the real engine (sprig functions, `fail`,
`.Files`, `sha256sum`). Every rendered manifest is checked with kubernetes-validate (schemas ship in its wheel,
so this works offline) in strict mode for KUBERNETES_VERSION. The ServiceMonitor is a Prometheus Operator CRD
that kubernetes-validate has no schema for: it is checked structurally here instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from llmproxy.settings import ServerSettings, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "llmproxy"
KUBERNETES_VERSION = "1.30"
RELEASE = "demo"
NAMESPACE = "prod"
FULLNAME = f"{RELEASE}-llmproxy"
METRICS = ("llmproxy_requests_total", "llmproxy_stage_duration_seconds_bucket", "llmproxy_cost_saved_usd_total")
# Prometheus Operator's Duration pattern (monitoring.coreos.com/v1).
DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")

EXTERNAL_REDIS = {"redis": {"bundled": {"enabled": False}, "external": {"url": "redis://redis.cache:6379/0"}}}
SECRETS = {
    "upstream": {"apiKey": {"existingSecret": "openai", "key": "api-key"}},
    "admin": {"token": {"existingSecret": "llmproxy-admin", "key": "token"}},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "external-redis": EXTERNAL_REDIS,
    "external-redis-from-secret": {
        "redis": {"bundled": {"enabled": False}, "external": {"existingSecret": "redis-url", "key": "url"}}
    },
    "service-monitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "autoscaling-off": {"autoscaling": {"enabled": False}, "replicaCount": 3, "pdb": {"enabled": False}},
    "secrets-and-extras": {
        **SECRETS,
        "config": {"routes": "routes: []\n"},
        "workers": 2,
        "env": [{"name": "LLMPROXY_CACHE__DEFAULT_TTL_S", "value": "3600"}],
        "grafanaDashboard": {"enabled": False},
        "redis": {"bundled": {"persistence": {"storageClass": "fast"}}},
    },
}


def render(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Helm's rendered templates as {template file: text}."""
    with helm_python.Chart.load(CHART) as chart:
        return chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)


def manifests(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = render(values)
    docs = (yaml.safe_load_all(text) for name, text in rendered.items() if name.endswith((".yaml", ".yml")))
    return [doc for group in docs for doc in group if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(docs, kind)
    return found


def proxy_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return container


def env_of(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in proxy_container(docs)["env"]}


def service_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (service,) = [doc for doc in by_kind(docs, "Service") if doc["metadata"]["name"] == FULLNAME]
    return service


def check_service_monitor(monitor: dict[str, Any], service: dict[str, Any]) -> None:
    """What the CRD requires, and that it scrapes the proxy's Service on its named port."""
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert selector.items() <= service["spec"]["selector"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
        assert DURATION.match(endpoint["interval"])


@pytest.fixture(params=list(VARIANTS), ids=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    yield manifests(VARIANTS[request.param])


def test_every_manifest_validates_against_the_kubernetes_schemas(variant: list[dict[str, Any]]) -> None:
    for doc in variant:
        if doc["kind"] == "ServiceMonitor":
            check_service_monitor(doc, service_of(variant))
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_no_secret_is_rendered_and_secret_settings_come_from_secret_refs(variant: list[dict[str, Any]]) -> None:
    assert not by_kind(variant, "Secret")
    for name, var in env_of(variant).items():
        if name in {"LLMPROXY_UPSTREAM__API_KEY", "LLMPROXY_ADMIN__TOKEN"}:
            assert "value" not in var
            assert var["valueFrom"]["secretKeyRef"]["name"]


def test_defaults_the_pod_is_probed_non_root_bounded_and_drains_before_it_is_killed() -> None:
    docs = manifests()
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = proxy_container(docs)
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"/tmp", "/app/config"} <= {mount["mountPath"] for mount in container["volumeMounts"]}
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "1536Mi"}
    assert container["resources"]["limits"]["memory"] == "1536Mi"
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] >= pause + 35  # the proxy drains for up to 30 s


def test_defaults_listen_on_all_interfaces_and_use_the_bundled_redis() -> None:
    docs = manifests()
    env = env_of(docs)
    assert env["LLMPROXY_SERVER__HOST"]["value"] == "0.0.0.0"
    assert proxy_container(docs)["ports"][0]["containerPort"] == int(env["LLMPROXY_SERVER__PORT"]["value"]) == 8080
    assert env["LLMPROXY_REDIS__URL"]["value"] == f"redis://{FULLNAME}-redis:6379/0"
    redis = one(docs, "StatefulSet")
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "8Gi"
    redis_service = next(doc for doc in by_kind(docs, "Service") if doc["metadata"]["name"] == f"{FULLNAME}-redis")
    assert redis_service["spec"]["clusterIP"] == "None"
    assert redis["spec"]["serviceName"] == redis_service["metadata"]["name"]
    assert "LLMPROXY_UPSTREAM__API_KEY" not in env and "LLMPROXY_ADMIN__TOKEN" not in env


def test_the_bundled_redis_evicts_only_keys_with_a_ttl() -> None:
    (container,) = one(manifests(), "StatefulSet")["spec"]["template"]["spec"]["containers"]
    args = next(item["value"] for item in container["env"] if item["name"] == "REDIS_ARGS").split()
    # allkeys-* would evict the audit log, traffic history and routes, which have no TTL (README: Reliability).
    assert args[args.index("--maxmemory-policy") + 1] == "volatile-lru"
    assert args[args.index("--maxmemory") + 1] == "1gb"


def test_defaults_autoscale_keep_a_pod_through_drains_and_ship_the_dashboard() -> None:
    docs = manifests()
    assert "replicas" not in one(docs, "Deployment")["spec"]  # the HPA owns the count
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == FULLNAME
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert not by_kind(docs, "ServiceMonitor")
    (dashboard,) = [doc for doc in by_kind(docs, "ConfigMap") if doc["metadata"]["name"].endswith("-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard_json = (CHART / "dashboards" / "llmproxy.json").read_text()
    assert dashboard["data"]["llmproxy.json"].strip() == dashboard_json.strip()
    panels = json.loads(dashboard_json)["panels"]
    exprs = " ".join(target["expr"] for panel in panels for target in panel["targets"])
    for metric in METRICS:
        assert metric in exprs


def test_external_redis_drops_the_statefulset() -> None:
    docs = manifests(EXTERNAL_REDIS)
    assert not by_kind(docs, "StatefulSet")
    assert [doc["metadata"]["name"] for doc in by_kind(docs, "Service")] == [FULLNAME]
    assert env_of(docs)["LLMPROXY_REDIS__URL"]["value"] == "redis://redis.cache:6379/0"


def test_external_redis_url_with_a_password_comes_from_a_secret() -> None:
    docs = manifests(VARIANTS["external-redis-from-secret"])
    url = env_of(docs)["LLMPROXY_REDIS__URL"]
    assert url == {"name": "LLMPROXY_REDIS__URL", "valueFrom": {"secretKeyRef": {"name": "redis-url", "key": "url"}}}


@pytest.mark.parametrize(
    "values",
    [{"redis": {"bundled": {"enabled": False}}}, {"redis": {"external": {"url": "redis://elsewhere:6379/0"}}}],
    ids=["no-redis", "both-redis"],
)
def test_rendering_fails_without_exactly_one_redis(values: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmError, match="redis"):
        render(values)


def test_service_monitor_scrapes_the_proxy_service_when_enabled() -> None:
    docs = manifests(VARIANTS["service-monitor"])
    monitor = one(docs, "ServiceMonitor")
    check_service_monitor(monitor, service_of(docs))
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_autoscaling_off_sets_replicas_and_drops_the_hpa() -> None:
    docs = manifests(VARIANTS["autoscaling-off"])
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert not by_kind(docs, "HorizontalPodAutoscaler")
    assert not by_kind(docs, "PodDisruptionBudget")


def test_defaults_set_the_read_deadlines_the_proxy_defaults_to() -> None:
    # uvicorn has no header deadline; the chart passes the proxy's own, so operators see and tune them here.
    env = env_of(manifests())
    server = ServerSettings()
    assert float(env["LLMPROXY_SERVER__HEADER_TIMEOUT_S"]["value"]) == server.header_timeout_s
    assert float(env["LLMPROXY_SERVER__BODY_READ_TIMEOUT_S"]["value"]) == server.body_read_timeout_s
    changed = env_of(manifests({"timeouts": {"headerSeconds": 3, "bodyReadSeconds": 30}}))
    assert (
        changed["LLMPROXY_SERVER__HEADER_TIMEOUT_S"]["value"],
        changed["LLMPROXY_SERVER__BODY_READ_TIMEOUT_S"]["value"],
    ) == ("3", "30")


def test_secret_refs_workers_and_extra_env() -> None:
    env = env_of(manifests(VARIANTS["secrets-and-extras"]))
    assert env["LLMPROXY_UPSTREAM__API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "openai", "key": "api-key"}}
    assert env["LLMPROXY_ADMIN__TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "llmproxy-admin", "key": "token"}}
    assert env["LLMPROXY_SERVER__WORKERS"]["value"] == "2"
    assert env["LLMPROXY_CACHE__DEFAULT_TTL_S"]["value"] == "3600"


def test_a_config_change_changes_the_checksum_that_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        annotations = one(manifests(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    default = checksum({})
    assert checksum({"config": {"settings": "cache:\n  default_ttl_s: 60\n"}}) != default
    assert checksum({"config": {"routes": "routes: []\n"}}) != default
    assert checksum({"replicaCount": 5}) == default


def test_the_chart_ships_the_repository_settings_file_and_no_routes() -> None:
    assert (CHART / "files" / "llmproxy.yaml").read_text() == (REPO / "config" / "llmproxy.yaml").read_text()
    assert sorted(path.name for path in (CHART / "files").iterdir()) == ["llmproxy.yaml"]


def test_routes_are_mounted_and_named_only_when_given() -> None:
    def routes_of(values: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        docs = manifests(values)
        (config_map,) = [doc for doc in by_kind(docs, "ConfigMap") if doc["metadata"]["name"] == f"{FULLNAME}-config"]
        return config_map["data"].get("routes.yaml"), env_of(docs).get("LLMPROXY_ROUTER__ROUTES_FILE")

    assert routes_of({}) == (None, None)
    routes = (REPO / "config" / "routes.example.yaml").read_text()
    text, variable = routes_of({"config": {"routes": routes}})
    assert text is not None and yaml.safe_load(text) == yaml.safe_load(routes)
    assert variable == {"name": "LLMPROXY_ROUTER__ROUTES_FILE", "value": "/app/config/routes.yaml"}


def test_the_rendered_config_and_env_load_as_valid_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = manifests(VARIANTS["secrets-and-extras"])
    (config_map,) = [doc for doc in by_kind(docs, "ConfigMap") if doc["metadata"]["name"] == f"{FULLNAME}-config"]
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
    for name, var in env_of(docs).items():
        if name.startswith("LLMPROXY_") and name != "LLMPROXY_CONFIG":
            # The loader rejects an unknown key inside a section but ignores an unknown section.
            assert name.removeprefix("LLMPROXY_").split("__")[0].lower() in Settings.model_fields, name
            value = var.get("value", "secret-from-kubernetes")
            monkeypatch.setenv(name, value.replace("/app/config", str(tmp_path)))
    settings = load_settings(tmp_path / "llmproxy.yaml")
    assert settings.server.host == "0.0.0.0"
    assert settings.server.workers == 2
    assert settings.router.routes_file == tmp_path / "routes.yaml"
    assert settings.cache.default_ttl_s == 3600


def test_an_external_cluster_with_a_search_node_sets_mode_and_search_url() -> None:
    values = {"redis": {"bundled": {"enabled": False}, "external": {"mode": "cluster", "url": "redis://node-0:6379"}}}
    values["redis"]["external"]["searchUrl"] = "redis://search:6379/0"
    env = env_of(manifests(values))
    assert env["LLMPROXY_REDIS__MODE"]["value"] == "cluster"
    assert env["LLMPROXY_REDIS__URL"]["value"] == "redis://node-0:6379"
    assert env["LLMPROXY_REDIS__SEARCH_URL"]["value"] == "redis://search:6379/0"


def test_an_external_sentinel_setup_needs_no_url(monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = {"mode": "sentinel", "sentinels": ["s-0:26379", "s-1:26379"], "sentinelService": "cache"}
    env = env_of(manifests({"redis": {"bundled": {"enabled": False}, "external": sentinel}}))
    assert "LLMPROXY_REDIS__URL" not in env and "LLMPROXY_REDIS__SEARCH_URL" not in env
    for name in ("LLMPROXY_REDIS__MODE", "LLMPROXY_REDIS__SENTINELS", "LLMPROXY_REDIS__SENTINEL_SERVICE"):
        monkeypatch.setenv(name, env[name]["value"])
    redis = load_settings(None).redis
    assert (redis.mode, redis.sentinels, redis.sentinel_service) == ("sentinel", ["s-0:26379", "s-1:26379"], "cache")


def test_the_default_chart_sets_no_redis_mode() -> None:
    env = env_of(manifests())
    assert "LLMPROXY_REDIS__MODE" not in env and "LLMPROXY_REDIS__SEARCH_URL" not in env
