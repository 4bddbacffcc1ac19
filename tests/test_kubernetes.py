"""deploy/kubernetes/: every manifest is valid for the Kubernetes version below (strict: an
unknown or misspelt field fails), and has the properties the deployment relies on."""

import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"
# The version the manifests are written for (README, "Deploying to Kubernetes").
KUBERNETES_VERSION = "1.37.0"


def load(name):
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def manifest_files():
    return sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def objects(kind=None):
    found = [doc for name in manifest_files() for doc in load(name)]
    return [doc for doc in found if kind is None or doc["kind"] == kind]


def named(kind, name):
    (found,) = [doc for doc in objects(kind) if doc["metadata"]["name"] == name]
    return found


def pod_specs():
    """(name, pod spec) of every Deployment and Job."""
    return [
        (doc["metadata"]["name"], doc["spec"]["template"]["spec"])
        for doc in objects()
        if doc["kind"] in ("Deployment", "Job")
    ]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("name", manifest_files())
def test_the_manifest_is_valid_for_the_stated_kubernetes_version(name):
    for doc in load(name):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_refuses_a_misspelt_field():
    web = named("Deployment", "mlwiki-web")
    web["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_and_names_the_image():
    (kustomization,) = load("kustomization.yaml")
    assert sorted(kustomization["resources"]) == manifest_files()
    (namespace,) = objects("Namespace")
    assert kustomization["namespace"] == namespace["metadata"]["name"]
    (image,) = kustomization["images"]
    for _, spec in pod_specs():
        assert {c["image"] for c in containers(spec)} == {image["name"]}


def test_no_secret_value_is_in_the_manifests():
    assert not objects("Secret")
    text = "\n".join((MANIFESTS / name).read_text() for name in manifest_files())
    assert not re.search(r"://[^/\s]*:[^/\s]*@", text), "a URL with a password"
    (config,) = objects("ConfigMap")
    secretive = re.compile(r"SECRET|PASSWORD|TOKEN|KEY|DATABASE_URL|REDIS_URL|BROKER_URL")
    assert not [name for name in config["data"] if secretive.search(name)]
    for name, spec in pod_specs():
        for container in containers(spec):
            sources = container["envFrom"]
            assert {"secretRef": {"name": "mlwiki"}} in sources, name
            assert {"configMapRef": {"name": "mlwiki-config"}} in sources, name
            assert not [e for e in container.get("env", []) if secretive.search(e["name"])]


def variables_read():
    """The environment variables the settings and gunicorn's configuration read."""
    settings = (ROOT / "wiki" / "settings.py").read_text()
    gunicorn = (ROOT / "deploy" / "gunicorn.conf.py").read_text()
    return set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', settings)) | set(
        re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', gunicorn)
    )


def test_every_variable_the_manifests_set_is_read_by_the_app():
    (config,) = objects("ConfigMap")
    given = set(config["data"])
    for _, spec in pod_specs():
        for container in containers(spec):
            given |= {e["name"] for e in container.get("env", [])}
    assert given - variables_read() == set()


@pytest.mark.django_db
def test_the_probes_answer_200_from_the_app(settings):
    # As the kubelet asks: the pod's own address, plain HTTP, whatever ALLOWED_HOSTS says.
    settings.ALLOWED_HOSTS = ["wiki.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    web = named("Deployment", "mlwiki-web")["spec"]["template"]["spec"]["containers"][0]
    ports = {port["name"] for port in web["ports"]}
    probes = {kind: web[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = web["readinessProbe"]["httpGet"]
    assert probes["livenessProbe"]["path"] == "/healthz/"
    assert probes["readinessProbe"]["path"] == "/readyz/"
    for probe in probes.values():
        assert probe["port"] in ports
        response = Client().get(probe["path"], HTTP_HOST="10.1.2.3:8000")
        assert response.status_code == 200, probe


def test_every_container_runs_as_non_root_on_a_read_only_filesystem_with_limits():
    for name, spec in pod_specs():
        # What the namespace's Pod Security level ("restricted") demands, and more.
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        writable = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, name
            # /tmp is writable (an emptyDir): the app and celery beat write there.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/tmp"] in writable, name  # noqa: S108


def test_the_web_is_replicated_autoscaled_and_reachable():
    web = named("Deployment", "mlwiki-web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["replicas"] >= 2
    assert web["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = named("HorizontalPodAutoscaler", "mlwiki-web")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "mlwiki-web"
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = named("PodDisruptionBudget", "mlwiki-web")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < web["spec"]["replicas"]
    service = named("Service", "mlwiki-web")
    # Prometheus finds the pods to scrape by these labels.
    assert service["metadata"]["labels"] == {
        "app.kubernetes.io/name": "mlwiki",
        "app.kubernetes.io/component": "web",
    }
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http" and port["targetPort"] == "http"
    (rule,) = named("Ingress", "mlwiki")["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": "mlwiki-web", "port": {"name": "http"}}
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]
    assert (ROOT / "deploy" / "gunicorn.conf.py").exists()


def test_one_beat_replaced_not_rolled_and_migrations_before_the_web():
    beat = named("Deployment", "mlwiki-beat")["spec"]
    assert beat["replicas"] == 1 and beat["strategy"] == {"type": "Recreate"}
    job = named("Job", "mlwiki-migrate")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    (check,) = named("Deployment", "mlwiki-web")["spec"]["template"]["spec"]["initContainers"]
    assert check["command"] == ["python", "manage.py", "migrate", "--check"]


def test_the_init_container_holds_the_web_back_until_the_migrations_ran(tmp_path):
    (check,) = named("Deployment", "mlwiki-web")["spec"]["template"]["spec"]["initContainers"]
    environment = os.environ | {"DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}"}

    def run(command):
        command = [sys.executable if part == "python" else part for part in command]
        return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, check=False)

    assert run(check["command"]).returncode != 0
    assert run(["python", "manage.py", "migrate", "--noinput"]).returncode == 0
    assert run(check["command"]).returncode == 0
