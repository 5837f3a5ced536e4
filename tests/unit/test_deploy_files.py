"""compose.yaml and deploy/k8s/ validated offline: the Compose file against the compose-spec schema
(deploy/schema/compose-spec.json), each Kubernetes manifest against the Kubernetes schemas that the
kubernetes-validate wheel carries; then what the issue asks of them, read from the files."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from aiohttp import web

from speechsvc.config import ENV_PREFIX, Config
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
# what a SIGTERM waits for: aiohttp's shutdown timeout for requests in flight (run_app's default, which
# speechsvc keeps); the orchestrator must wait longer before it kills the process
DRAIN_S = inspect.signature(web.run_app).parameters["shutdown_timeout"].default


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name)


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def test_compose_file_follows_the_compose_spec() -> None:
    schema = json.loads((ROOT / "deploy" / "schema" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose())


def test_compose_cluster_shape() -> None:
    services = compose()["services"]
    assert (
        services["db"]["image"].startswith("docker.io/library/postgres:") and "healthcheck" in services["db"]
    )
    assert services["api"]["command"] == ["serve", "--no-worker"]
    assert services["worker"]["command"] == ["worker"] and services["worker-gpu"]["command"] == ["worker"]
    assert [p.split(":")[-1] for p in services["proxy"]["ports"]] == ["8080"]  # one published port
    assert not any("ports" in services[name] for name in ("api", "worker", "worker-gpu"))
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and "cuda" in gpu["image"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in ("api", "worker", "worker-gpu"):
        assert services[name]["environment"]["SPEECHSVC_DATABASE"].startswith("postgresql://")
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
        assert int(services[name]["stop_grace_period"].rstrip("s")) > DRAIN_S


@pytest.mark.parametrize("manifest", manifests(), ids=lambda m: f"{m['kind']}/{m['metadata']['name']}")
def test_manifest_follows_the_kubernetes_schema(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize(("name", "args", "port"), [("speechsvc-api", ["serve", "--no-worker"], 8080),
                                                   ("speechsvc-worker", ["worker"], 9091)])  # fmt: skip
def test_deployment_probes_secret_and_grace(name: str, args: list[str], port: int) -> None:
    pod = by_kind("Deployment", name)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == args
    assert pod["terminationGracePeriodSeconds"] > DRAIN_S
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named[container["readinessProbe"]["httpGet"]["port"]] == port
    database = next(e for e in container["env"] if e["name"] == "SPEECHSVC_DATABASE")
    secret = database["valueFrom"]["secretKeyRef"]
    assert by_kind("Secret", secret["name"])["stringData"][secret["key"]].startswith("postgresql://")


def test_worker_takes_a_gpu_and_the_service_reaches_the_api() -> None:
    worker = by_kind("Deployment", "speechsvc-worker")["spec"]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1 and worker["image"].endswith(":cuda")
    service = by_kind("Service", "speechsvc")
    api = by_kind("Deployment", "speechsvc-api")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= api.items()


def test_every_environment_variable_is_one_speechsvc_reads() -> None:
    """A misspelt SPEECHSVC_* in a manifest or the Compose file would be silently ignored."""
    read = {ENV_PREFIX + field.name.upper() for field in dataclasses.fields(Config)}
    ours = {"SPEECHSVC_IMAGE", "SPEECHSVC_CUDA_IMAGE", "SPEECHSVC_PUBLISH_PORT"}  # compose.yaml's own
    text = (ROOT / "compose.yaml").read_text() + "".join(p.read_text() for p in K8S.glob("*.yaml"))
    used = set(re.findall(r"\bSPEECHSVC_[A-Z_]+\b", text)) - ours
    assert used and used <= read, used - read
