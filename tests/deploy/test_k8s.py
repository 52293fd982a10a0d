"""Kubernetes: manifests parse, reference only what exists, and expect the topology the services create."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest

from cli.main import main as jetscribe_cli
from gateway.auth import OPEN_PATHS
from jetscribe.config import Settings
from jetscribe.embedded import MAX_PAYLOAD_BYTES
from jetscribe.topology import stream_configs
from tests.deploy.dockerfiles import copy_destination, parse_dockerfile
from tests.deploy.manifests import (
    NAMESPACE,
    NATS_RELEASE,
    container_env,
    containers,
    deployments,
    find,
    kustomization,
    manifests,
    scalers,
    worker_settings,
)
from tests.deploy.nats_process import config_test
from tests.deploy.repo import DEPLOY, K8S, NATS_VALUES, REPO, RUNTIME_ENV, load_yaml, read_dotenv, settings_env_names

KUBERNETES_VERSION = "1.30"  # the oldest release the manifests target


def test_kustomization_lists_every_manifest_and_only_existing_files() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", NATS_VALUES.name}
    assert listed == on_disk


def test_every_manifest_has_kind_and_name() -> None:
    for manifest in manifests():
        assert manifest["apiVersion"] and manifest["kind"] and manifest["metadata"]["name"]


def test_core_manifests_validate_strictly_against_the_kubernetes_api_schema() -> None:
    validated = 0
    for manifest in manifests():
        if manifest["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: checked field by field below
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        validated += 1
    assert validated == len(manifests()) - 1


def test_images_are_the_ones_the_dockerfiles_build() -> None:
    defined = {f"jetscribe/{p.name.removesuffix('.Dockerfile')}" for p in DEPLOY.glob("*.Dockerfile")}
    used = {c["image"] for d in deployments() for c in containers(d)}
    assert used <= defined
    assert {image["name"] for image in kustomization()["images"]} == used


def test_containers_set_only_jetscribe_settings_with_valid_values() -> None:
    known = settings_env_names() | RUNTIME_ENV
    for deployment in deployments():
        for container in containers(deployment):
            env = container_env(container)
            assert set(env) <= known, f"{container['name']}: {set(env) - known}"
            Settings.from_env({k: v for k, v in env.items() if k not in RUNTIME_ENV})


def test_secret_and_config_references_resolve() -> None:
    for deployment in deployments():
        for container in containers(deployment):
            for variable in container.get("env", []):
                if "valueFrom" in variable:
                    ref = variable["valueFrom"]["secretKeyRef"]
                    assert ref["key"] in find("Secret", ref["name"])["stringData"]
    for variable in load_yaml(NATS_VALUES)["container"]["env"].values():
        ref = variable["valueFrom"]["secretKeyRef"]
        assert ref["key"] in find("Secret", ref["name"])["stringData"]


def test_selectors_match_the_pods_they_mean() -> None:
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments()}
    for deployment in deployments():
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pods[deployment["metadata"]["name"]].items()
    service = find("Service", "jetscribe-gateway")
    assert service["spec"]["selector"].items() <= pods["jetscribe-gateway"].items()
    for budget in (m for m in manifests() if m["kind"] == "PodDisruptionBudget"):
        assert budget["spec"]["selector"]["matchLabels"].items() <= pods[budget["metadata"]["name"]].items()


def test_gateway_probes_use_the_liveness_and_readiness_routes_on_its_port() -> None:
    deployment = find("Deployment", "jetscribe-gateway")
    (gateway,) = deployment["spec"]["template"]["spec"]["containers"]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port_names = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert port_names[gateway["readinessProbe"]["httpGet"]["port"]] == Settings.from_env(container_env(gateway)).port
    service = find("Service", "jetscribe-gateway")
    assert service["spec"]["ports"][0]["targetPort"] in port_names


def test_worker_requests_a_gpu_and_probes_its_heartbeat() -> None:
    (worker,) = find("Deployment", "jetscribe-worker")["spec"]["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker_settings().use_gpu
    final = parse_dockerfile(DEPLOY / "worker-cuda.Dockerfile").final
    installed = {copy_destination(copy) for copy in final.all("COPY")}
    for probe in ("startupProbe", "livenessProbe"):
        assert worker[probe]["exec"]["command"][-1] in installed


def test_worker_threads_match_its_cpu_request() -> None:
    (worker,) = find("Deployment", "jetscribe-worker")["spec"]["template"]["spec"]["containers"]
    assert worker_settings().threads == int(worker["resources"]["requests"]["cpu"])


def test_worker_replicas_are_left_to_the_autoscaler() -> None:
    worker = find("Deployment", "jetscribe-worker")
    assert "replicas" not in worker["spec"]
    target = find("ScaledObject", "jetscribe-worker")["spec"]["scaleTargetRef"]
    assert target["name"] == worker["metadata"]["name"] and target.get("kind", "Deployment") == "Deployment"


def test_worker_gets_longer_to_stop_than_its_shutdown_grace() -> None:
    spec = find("Deployment", "jetscribe-worker")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > worker_settings().shutdown_grace_s


def test_worker_model_init_container_fills_the_models_dir_the_worker_reads() -> None:
    spec = find("Deployment", "jetscribe-worker")["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert "jetscribe models pull" in init["args"][0]
    (worker,) = spec["containers"]
    model_dir = str(worker_settings().model_dir)
    init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    worker_mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    assert init_mounts[model_dir] == worker_mounts[model_dir]


def test_streams_and_buckets_are_replicated_on_every_nats_server() -> None:
    settings = worker_settings()
    cluster = load_yaml(NATS_VALUES)["config"]["cluster"]
    assert cluster["enabled"] and cluster["replicas"] == 3
    assert settings.replicas == cluster["replicas"]
    assert {config.num_replicas for config in stream_configs(settings)} == {3}


def test_nats_server_accepts_job_sized_payloads_like_the_embedded_one() -> None:
    assert load_yaml(NATS_VALUES)["config"]["merge"]["max_payload"] == MAX_PAYLOAD_BYTES


def test_services_reach_nats_through_the_helm_release() -> None:
    settings = worker_settings()
    assert settings.nats_url == f"nats://{NATS_RELEASE}.{NAMESPACE}.svc.cluster.local:4222"
    assert kustomization()["namespace"] == NAMESPACE


def test_autoscaler_reads_its_workers_models_queue_from_the_gateways_metrics() -> None:
    (model,) = worker_settings().served_models
    gateway = find("Service", "jetscribe-gateway")
    (port,) = gateway["spec"]["ports"]
    triggers = scalers()
    assert set(triggers) == {"jetscribe_model_queue_pending", "jetscribe_model_queue_in_flight"}
    for metric, metadata in triggers.items():
        assert metadata["url"] == f"http://jetscribe-gateway.{NAMESPACE}.svc.cluster.local:{port['port']}/metrics"
        assert metadata["format"] == "prometheus"
        assert metadata["valueLocation"] == f'{metric}{{model="{model}"}}'
    assert float(triggers["jetscribe_model_queue_in_flight"]["targetValue"]) == worker_settings().worker_slots
    assert float(triggers["jetscribe_model_queue_pending"]["targetValue"]) >= worker_settings().worker_slots


def test_autoscaler_reads_metrics_the_gateway_serves_without_a_key() -> None:
    assert "/metrics" in OPEN_PATHS


def test_gateways_take_jobs_for_the_autoscaled_model_while_its_workers_are_scaled_to_zero() -> None:
    (gateway,) = find("Deployment", "jetscribe-gateway")["spec"]["template"]["spec"]["containers"]
    settings = Settings.from_env(container_env(gateway))
    (model,) = worker_settings().served_models
    assert model in settings.declared_models
    assert settings.job_default_model == model


def test_nats_users_match_the_compose_config() -> None:
    accounts = load_yaml(NATS_VALUES)["config"]["merge"]["accounts"]
    users = {u["user"]: u["password"] for acc in accounts.values() for u in acc["users"]}
    assert users == {"gateway": "<< $NATS_GATEWAY_PASSWORD >>", "worker": "<< $NATS_WORKER_PASSWORD >>"}
    conf = (DEPLOY / "nats/accounts.conf").read_text()
    for user, password in users.items():
        assert f"{{ user: {user}, password: {password.strip('<> ')} }}" in conf


def test_gateway_and_workers_have_disruption_budgets() -> None:
    budgets = {m["metadata"]["name"]: m["spec"] for m in manifests() if m["kind"] == "PodDisruptionBudget"}
    assert budgets["jetscribe-gateway"]["minAvailable"] < find("Deployment", "jetscribe-gateway")["spec"]["replicas"]
    assert budgets["jetscribe-worker"]["maxUnavailable"] == 1
    assert load_yaml(NATS_VALUES)["podDisruptionBudget"]["enabled"]


def test_helm_values_merge_renders_a_config_nats_server_accepts(tmp_path: Path) -> None:
    merge = load_yaml(NATS_VALUES)["config"]["merge"]
    # The chart writes `merge` as JSON into nats.conf and the << $VAR >> markers unquoted.
    text = json.dumps(merge, indent=2)
    for variable in ("NATS_GATEWAY_PASSWORD", "NATS_WORKER_PASSWORD"):
        text = text.replace(f'"<< ${variable} >>"', f"${variable}")
    conf = tmp_path / "nats.conf"
    conf.write_text(f"port: 4222\njetstream {{ store_dir: {json.dumps(str(tmp_path))} }}\n{text[1:-1]}\n")
    result = config_test(conf, {"NATS_GATEWAY_PASSWORD": "g", "NATS_WORKER_PASSWORD": "w"})
    assert result.returncode == 0, result.stderr


def test_cluster_runs_the_same_nats_release_as_compose() -> None:
    nats_version = read_dotenv(REPO / ".env.example")["NATS_VERSION"]
    assert load_yaml(NATS_VALUES)["container"]["image"]["tag"] == f"{nats_version}-alpine"


def test_jetstream_store_limit_leaves_room_on_its_volume() -> None:
    file_store = load_yaml(NATS_VALUES)["config"]["jetstream"]["fileStore"]
    assert file_store["enabled"] and file_store["pvc"]["enabled"]
    assert gibibytes(file_store["maxSize"]) < gibibytes(file_store["pvc"]["size"])


def gibibytes(quantity: str) -> int:
    assert quantity.endswith("Gi"), quantity
    return int(quantity.removesuffix("Gi"))


def test_containers_run_real_jetscribe_commands() -> None:
    for deployment in deployments():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "command" not in container, "the image's entrypoint is `jetscribe`"
            with pytest.raises(SystemExit) as exited:
                jetscribe_cli([*container["args"], "--help"])
            assert exited.value.code == 0, container["args"]
