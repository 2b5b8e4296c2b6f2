"""The Kubernetes manifests (deploy/kubernetes/): rendered as `kubectl kustomize` renders them (tests/kustomize.py),
validated against Kubernetes' own OpenAPI schemas (kubernetes-validate, strict: an unknown field is an error),
scanned by checkov (tools/k8s-scan) with every skip explained in the manifests, and read for what the deployment
promises: each process of docker-compose.yml with the same command and port, probes on /healthz and /readyz,
sizes, autoscalers and disruption budgets, non-root pods on read-only root file systems, secrets only by reference,
the migration Job ahead of the new code, and network policies that let only requests_api and its worker (besides
the ingress controller) reach registry_api. All offline; no cluster.
"""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from shared.settings import Settings
from tests.kustomize import Obj, pod_containers, render

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAY = KUBERNETES / "overlays" / "production"
CHECKOV = ROOT / "tools" / "k8s-scan" / ".venv" / "bin" / "checkov"
NAMESPACE = "canvass"
# The oldest Kubernetes release the manifests are written for (the preStop `sleep` action is GA from 1.32), and
# the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())

# Each API service: its Deployment's name, the process docker-compose.yml runs for it, and its port.
APIS = {
    "registry-api": ("registry_api", 8001),
    "geo-query": ("geo_query", 8002),
    "requests-api": ("requests_api", 8003),
    "community-api": ("community_api", 8004),
}
WORKER = ("requests-worker", "requests_worker")
# The live relay: one pod of one process (its agents and viewings live in memory), no autoscaler.
RELAY = ("live-relay", "live_relay", 8005)
PORTAL = ("portal", 8000)
# The Secrets the operator creates and the keys each holds (docs/deployment.md, "On Kubernetes").
SECRETS = {
    "canvass-app": {
        "CANVASS_SECRET_KEY",
        "CANVASS_ENCRYPTION_KEY",
        "CANVASS_KEYSTORE_KEY",
        "CANVASS_KEYSTORE_URL",
        "DATABASE_URL",
    },
    "canvass-geo-db": {"GEO_QUERY_DATABASE_URL"},
    "canvass-migrations-db": {"MIGRATIONS_DATABASE_URL"},
}
SECRET_SETTINGS = set().union(*SECRETS.values()) | {"CANVASS_SERVICE_TOKEN", "CANVASS_JWT_PUBLIC_KEYS"}
# What a Secret key would hold, for the settings check (values that pass the production checks).
SECRET_VALUES = {
    "CANVASS_SECRET_KEY": "k" * 40,
    "CANVASS_ENCRYPTION_KEY": "v1:" + "A" * 43 + "=",
    "CANVASS_KEYSTORE_KEY": "w1:" + "B" * 43 + "=",
    "CANVASS_KEYSTORE_URL": "postgresql://canvass_keys:pw@keystore:5432/canvass_keys",
    "DATABASE_URL": "postgresql://canvass_svc:pw@db:5432/canvass",
    "GEO_QUERY_DATABASE_URL": "postgresql://canvass_geo:pw@db:5432/canvass",
    "MIGRATIONS_DATABASE_URL": "postgresql://canvass:pw@db:5432/canvass",
}


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    return render(OVERLAY)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in ("Deployment", "Job")]


def pod_labels(workload: Obj) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def compose_services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]  # type: ignore[no-any-return]


# --- Kubernetes' own schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", [OVERLAY, KUBERNETES / "base"], ids=["production", "base"])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(folder: Path, version: str) -> None:
    rendered = render(folder)
    assert {o["kind"] for o in rendered} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "NetworkPolicy",
        "ConfigMap",
        "PersistentVolumeClaim",
        "ServiceAccount",
    }
    for obj in rendered:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_schema_check_refuses_a_misspelt_field(objects: list[Obj]) -> None:
    # What makes the validation above worth having: a field Kubernetes would silently drop is refused.
    broken = copy.deepcopy(find(objects, "Deployment", "registry-api"))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


# --- the static security scan ----------------------------------------------------------------------------------


def test_checkov_finds_nothing_and_every_skip_is_explained_in_the_manifests(
    objects: list[Obj], tmp_path: Path
) -> None:
    assert CHECKOV.is_file(), "checkov is not installed: make tools/k8s-scan/.venv/.synced"
    rendered = tmp_path / "canvass.yaml"
    rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    result = subprocess.run(
        [
            str(CHECKOV),
            "-f",
            str(rendered),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # checkov exits 1 on a failed check, and crashes (no JSON) on an annotation it cannot read.
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["check_name"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [], failed
    assert result.returncode == 0, result.stderr[-2000:]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 500  # the scan did look at every object
    skipped = report["results"]["skipped_checks"]
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment") or "") > 40, check["check_id"]
    # Only the skips explained in the manifests: the image digest (pinned by the release pipeline), secrets as
    # environment variables (how the services read settings), and the worker's probes (it serves no port).
    assert {c["check_id"] for c in skipped} == {"CKV_K8S_43", "CKV_K8S_35", "CKV_K8S_8", "CKV_K8S_9"}
    assert {c["resource"] for c in skipped if c["check_id"] in ("CKV_K8S_8", "CKV_K8S_9")} == {
        f"Deployment.{NAMESPACE}.requests-worker"
    }


# --- in step with docker-compose.yml ---------------------------------------------------------------------------


def test_each_api_service_runs_composes_command_on_its_port_with_probes_and_a_service(
    objects: list[Obj],
) -> None:
    compose = compose_services()
    for name, (compose_name, port) in APIS.items():
        container = pod_containers(find(objects, "Deployment", name))[0]
        assert container["command"] == shlex.split(compose[compose_name]["command"]), name
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert "/readyz" in str(compose[compose_name]["healthcheck"]["test"])
        service = find(objects, "Service", name)
        assert service["spec"]["selector"] == pod_labels(find(objects, "Deployment", name))
        assert service["spec"]["ports"][0]["port"] == port
    # The other services find them by the Services' names.
    config = find(objects, "ConfigMap", "canvass-config")["data"]
    assert config["REGISTRY_API_URL"] == "http://registry-api:8001"
    assert config["GEO_QUERY_URL"] == "http://geo-query:8002"


def test_the_worker_and_the_migration_run_composes_commands(objects: list[Obj]) -> None:
    compose = compose_services()
    worker = pod_containers(find(objects, "Deployment", WORKER[0]))[0]
    assert worker["command"] == shlex.split(compose[WORKER[1]]["command"])
    assert "ports" not in worker
    job = pod_containers(find(objects, "Job", "canvass-migrate"))[0]
    assert job["command"] == shlex.split(compose["migrate"]["command"]) == ["alembic", "upgrade", "head"]


def test_the_portal_serves_the_built_page_with_liveness_and_readiness(objects: list[Obj]) -> None:
    name, port = PORTAL
    container = pod_containers(find(objects, "Deployment", name))[0]
    assert container["command"][:2] == ["uvicorn", "services.portal.main:app"]
    assert container["command"][-1] == str(port)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The portal has no database: ready once it serves the page (503 until web/dist is in the image).
    assert container["readinessProbe"]["httpGet"]["path"] == "/"
    assert container["image"].startswith("registry.canvass.example/canvass-portal:")
    assert (ROOT / "Dockerfile.portal").is_file()
    assert container["envFrom"] == [{"configMapRef": {"name": "canvass-portal-config"}}]


def test_every_workload_reads_settings_that_start_in_production(objects: list[Obj]) -> None:
    """The ConfigMaps and the Secrets a pod references hold everything production requires (shared/settings.py
    refuses to start otherwise), and each process gets the database role meant for it."""

    class Deployed(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            *args: Any,
            **kw: Any,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)  # the pod's environment only, not this test's

    configmaps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        if name == PORTAL[0]:
            continue
        env: dict[str, str] = {}
        for source in pod_containers(workload)[0]["envFrom"]:
            if "configMapRef" in source:
                env |= configmaps[source["configMapRef"]["name"]]
            else:
                env |= {key: SECRET_VALUES[key] for key in SECRETS[source["secretRef"]["name"]]}
        settings = Deployed.model_validate(env)
        assert settings.env == "production"
        assert settings.database_url.startswith("postgresql://canvass_svc:"), name
        owner_url = (name == "canvass-migrate") == (settings.migrations_database_url is not None)
        assert owner_url, f"{name}: the owner's URL belongs to the migration Job alone"
        geo_url = (name == "geo-query") == (settings.geo_query_database_url is not None)
        assert geo_url, f"{name}: the read-only role's URL belongs to geo_query alone"


# --- sizes, autoscaling, disruption ----------------------------------------------------------------------------


def test_every_container_has_resource_requests_and_limits(objects: list[Obj]) -> None:
    for workload in workloads(objects):
        for container in pod_containers(workload):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) == {"cpu", "memory"}, (workload["metadata"]["name"], bound)


def test_each_api_service_and_the_portal_autoscale_and_every_deployment_has_a_disruption_budget(
    objects: list[Obj],
) -> None:
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {*APIS, WORKER[0], PORTAL[0], RELAY[0]}
    relay = find(objects, "Deployment", RELAY[0])
    assert relay["spec"]["replicas"] == 1
    assert not [
        o for o in objects if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == RELAY[0]
    ]
    command = pod_containers(relay)[0]["command"]
    assert command == shlex.split(compose_services()[RELAY[1]]["command"])
    assert command[command.index("--workers") + 1] == "1" and command[command.index("--port") + 1] == "8005"
    for name in [*APIS, PORTAL[0]]:
        hpa = find(objects, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        assert find(objects, "Deployment", name)["spec"]["replicas"] == hpa["spec"]["minReplicas"]
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pdb = find(objects, "PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"] == pod_labels(deployment)
        # A budget that allows no eviction would block every node drain.
        assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"], name


def test_services_never_serve_before_the_migration_job_ran(objects: list[Obj]) -> None:
    """The ordering: each API pod is ready only when the schema is at its code's head (/readyz), and no old pod is
    taken away before a new one is ready, so new code serves nothing until the Job has migrated."""
    job = find(objects, "Job", "canvass-migrate")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1
    assert (
        job["spec"]["ttlSecondsAfterFinished"] > 0
    )  # a Job's template is immutable: the next release's Job is new
    for name in APIS:
        deployment = find(objects, "Deployment", name)
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert pod_containers(deployment)[0]["readinessProbe"]["httpGet"]["path"] == "/readyz"


# --- pod security ----------------------------------------------------------------------------------------------


def test_pods_run_non_root_on_a_read_only_root_and_write_only_to_their_volumes(objects: list[Obj]) -> None:
    namespace = find(objects, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's canvass user (Dockerfile)
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod_containers(workload):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
            assert "emptyDir" in mounts["/tmp"], name  # tempfile (community_api's media remux)
    evidence_dir = find(objects, "ConfigMap", "canvass-config")["data"]["CANVASS_EVIDENCE_DIR"]
    claim = find(objects, "PersistentVolumeClaim", "canvass-evidence")
    # Every requests_api replica and the worker read, write and delete the same evidence files: one durable
    # volume all of them mount, never a pod's own emptyDir.
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("requests-api", WORKER[0]):
        workload = find(objects, "Deployment", name)
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in pod_containers(workload)[0]["volumeMounts"]}
        assert volumes[mounts[evidence_dir]]["persistentVolumeClaim"] == {"claimName": "canvass-evidence"}


def test_secrets_are_referenced_never_embedded(objects: list[Obj]) -> None:
    assert not [o for o in objects if o["kind"] == "Secret"]
    for configmap in (o for o in objects if o["kind"] == "ConfigMap"):
        assert not SECRET_SETTINGS & set(configmap["data"]), configmap["metadata"]["name"]
    referenced: dict[str, set[str]] = {}
    for workload in workloads(objects):
        for container in pod_containers(workload):
            for entry in container.get("env", []):
                assert entry["name"] not in SECRET_SETTINGS or "valueFrom" in entry, entry["name"]
            for source in container["envFrom"]:
                if "secretRef" in source:
                    referenced.setdefault(source["secretRef"]["name"], set()).add(
                        workload["metadata"]["name"]
                    )
    assert set(referenced) == set(SECRETS)
    assert referenced["canvass-migrations-db"] == {"canvass-migrate"}
    assert referenced["canvass-geo-db"] == {"geo-query"}
    assert PORTAL[0] not in referenced["canvass-app"]


# --- network policies ------------------------------------------------------------------------------------------

INGRESS_CONTROLLER = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
KUBE_DNS = ("kube-system", {"k8s-app": "kube-dns"})
OUTSIDE: tuple[str, dict[str, str]] = (
    "",
    {},
)  # an address outside the cluster (the database, the identity provider)
NAMESPACE_LABELS = {
    ns: {"kubernetes.io/metadata.name": ns} for ns in ("canvass", "ingress-nginx", "kube-system")
}
Pod = tuple[str, dict[str, str]]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "the evaluator knows the In operator only"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def peer_matches(peer: dict[str, Any], pod: Pod, policy_namespace: str) -> bool:
    namespace, labels = pod
    assert "ipBlock" not in peer, "the evaluator knows pod and namespace selectors only"
    if not namespace:
        return False  # outside the cluster: only a rule without peers (or an ipBlock) admits it
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], NAMESPACE_LABELS.get(namespace, {})):
            return False
    elif namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), labels)


def rule_admits(rule: dict[str, Any], peers_key: str, peer: Pod, port: int, protocol: str, ns: str) -> bool:
    ports = rule.get("ports")
    if ports is not None and not any(
        p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports
    ):
        return False
    peers = rule.get(peers_key)
    return peers is None or any(peer_matches(p, peer, ns) for p in peers)


def direction_allows(
    policies: list[Obj], kind: str, subject: Pod, peer: Pod, port: int, protocol: str
) -> bool:
    namespace, labels = subject
    rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    applying = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace
        and kind in p["spec"]["policyTypes"]
        and selects(p["spec"]["podSelector"], labels)
    ]
    if not applying:
        return True  # a pod no policy selects for this direction is not isolated
    return any(
        rule_admits(rule, peers_key, peer, port, protocol, namespace)
        for p in applying
        for rule in p["spec"].get(rules_key, [])
    )


def reachable(objects: list[Obj], source: Pod, target: Pod, port: int, protocol: str = "TCP") -> bool:
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    return direction_allows(policies, "Egress", source, target, port, protocol) and direction_allows(
        policies, "Ingress", target, source, port, protocol
    )


def test_only_requests_api_its_worker_and_the_ingress_controller_reach_registry_api(
    objects: list[Obj],
) -> None:
    """registry_api serves its service-only operations on its one port (8001), told apart by the caller's token;
    the policies let only requests_api and its worker reach that port inside the cluster."""
    pods = {o["metadata"]["name"]: (NAMESPACE, pod_labels(o)) for o in workloads(objects)}
    registry = pods["registry-api"]
    allowed = {name for name, pod in pods.items() if reachable(objects, pod, registry, 8001)}
    assert allowed == {"requests-api", WORKER[0], RELAY[0]}
    assert reachable(objects, INGRESS_CONTROLLER, registry, 8001)
    assert not reachable(objects, ("other", {"app.kubernetes.io/name": "requests-api"}), registry, 8001)
    assert not reachable(objects, OUTSIDE, registry, 8001)
    geo = pods["geo-query"]
    assert {name for name, pod in pods.items() if reachable(objects, pod, geo, 8002)} == {
        "requests-api",
        WORKER[0],
    }


def test_every_service_is_reached_from_the_ingress_controller_on_its_own_port_only(
    objects: list[Obj],
) -> None:
    pods = {o["metadata"]["name"]: (NAMESPACE, pod_labels(o)) for o in workloads(objects)}
    for name, port in [*((n, p) for n, (_, p) in APIS.items()), PORTAL, (RELAY[0], RELAY[2])]:
        assert reachable(objects, INGRESS_CONTROLLER, pods[name], port), name
        assert not reachable(objects, INGRESS_CONTROLLER, pods[name], 5432), name
    assert not reachable(objects, INGRESS_CONTROLLER, pods[WORKER[0]], 8003)
    assert not reachable(objects, INGRESS_CONTROLLER, pods["canvass-migrate"], 8001)


def test_pods_resolve_names_and_only_the_database_users_reach_postgresql(objects: list[Obj]) -> None:
    pods = {o["metadata"]["name"]: (NAMESPACE, pod_labels(o)) for o in workloads(objects)}
    for name, pod in pods.items():
        assert reachable(objects, pod, KUBE_DNS, 53, "UDP"), name
        assert reachable(objects, pod, OUTSIDE, 5432) == (name != PORTAL[0]), name
    # The portal reaches nothing but the name service: the browser calls the APIs, not the portal.
    assert not reachable(objects, pods[PORTAL[0]], pods["registry-api"], 8001)
    assert not reachable(objects, pods[PORTAL[0]], OUTSIDE, 443)
