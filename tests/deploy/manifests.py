"""The parsed deployment manifests: docker-compose services as Compose resolves them, Kubernetes objects as
kustomize lists them, and the settings each container starts with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jetscribe.config import Settings
from tests.deploy.dockerfiles import parse_dockerfile
from tests.deploy.repo import COMPOSE_FILES, K8S, REPO, interpolate, load_yaml, load_yaml_docs, read_dotenv

JETSCRIBE_IMAGES = ("jetscribe/gateway", "jetscribe/worker-cuda", "jetscribe/worker-cpu")
# Placeholders for the variables .env.example leaves for the user to fill in.
FILLED_IN = {"NATS_GATEWAY_PASSWORD": "gateway-secret", "NATS_WORKER_PASSWORD": "worker-secret"}


def env_example() -> dict[str, str]:
    return read_dotenv(REPO / ".env.example")


def user_env() -> dict[str, str]:
    return {**{k: v for k, v in env_example().items() if v}, **FILLED_IN}


def services(path: Path = REPO / "docker-compose.yml") -> dict[str, dict[str, Any]]:
    """The services of a compose file with `.env.example` (filled in) substituted, anchors merged."""
    return interpolate(load_yaml(path)["services"], user_env())


def all_services() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for path in COMPOSE_FILES:
        merged.update(services(path))
    return merged


def jetscribe_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in all_services().items() if s["image"].startswith("jetscribe/")}


def has_health_check(service: dict[str, Any]) -> bool:
    if "healthcheck" in service:
        return not service["healthcheck"].get("disable", False)
    build = service.get("build")
    return bool(build and parse_dockerfile(REPO / build["dockerfile"]).final.all("HEALTHCHECK"))


def image_repo(image: str) -> str:
    return image.rsplit(":", 1)[0]


# Kubernetes
NAMESPACE = "jetscribe"
NATS_RELEASE = "nats"  # the Helm release name docs/deploy.md installs nats-values.yaml under
SECRET_PLACEHOLDER = "from-a-secret"


def kustomization() -> dict[str, Any]:
    return load_yaml(K8S / "kustomization.yaml")


def manifests() -> list[dict[str, Any]]:
    return [doc for resource in kustomization()["resources"] for doc in load_yaml_docs(K8S / resource)]


def find(kind: str, name: str) -> dict[str, Any]:
    (found,) = [m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def deployments() -> list[dict[str, Any]]:
    return [m for m in manifests() if m["kind"] == "Deployment"]


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The environment a container starts with; values from Secrets read as a placeholder."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            secret = find("Secret", source["secretRef"]["name"])
            env.update({key: SECRET_PLACEHOLDER for key in secret["stringData"]})
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", SECRET_PLACEHOLDER)
    return env


def worker_settings() -> Settings:
    (worker,) = find("Deployment", "jetscribe-worker")["spec"]["template"]["spec"]["containers"]
    return Settings.from_env(container_env(worker))


def scalers() -> dict[str, dict[str, str]]:
    """The worker autoscaler's triggers by the metric each reads (its `valueLocation` up to the labels)."""
    triggers = find("ScaledObject", "jetscribe-worker")["spec"]["triggers"]
    assert {trigger["type"] for trigger in triggers} == {"metrics-api"}
    return {trigger["metadata"]["valueLocation"].split("{")[0]: trigger["metadata"] for trigger in triggers}
