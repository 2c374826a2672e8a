"""The Helm chart: lint, render, offline Kubernetes schema validation, and the rules we hold it to."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from helm_chart_support import CHART, PRODUCTION_VALUES, Render

KUBERNETES_VERSION = "1.30.0"
CRD_KINDS = {"ServiceMonitor"}  # not in the Kubernetes schemas; checked by hand below


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for d in docs:
        if d["kind"] in {"Deployment", "Job"}:
            out += d["spec"]["template"]["spec"]["containers"]
    return out


@pytest.mark.parametrize("values", [(), (PRODUCTION_VALUES,)], ids=["default", "production"])
def test_lint_strict_passes(helm: Path, values: tuple[Path, ...]) -> None:
    cmd = [str(helm), "lint", "--strict", str(CHART)]
    for f in values:
        cmd += ["-f", str(f)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", [(), (PRODUCTION_VALUES,)], ids=["default", "production"])
def test_every_manifest_is_valid_kubernetes(render: Render, values: tuple[Path, ...]) -> None:
    docs = render(*values)
    assert docs
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_catches_an_invalid_manifest(render: Render) -> None:
    deployment = _by_kind(render(), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http-port"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_default_render_has_tracking_and_artifacts(render: Render) -> None:
    docs = render()
    names = {d["metadata"]["name"] for d in _by_kind(docs, "Deployment")}
    assert names == {"rel-modelyard-tracking", "rel-modelyard-artifacts"}
    assert {d["metadata"]["name"] for d in _by_kind(docs, "Service")} == names
    assert len(_by_kind(docs, "HorizontalPodAutoscaler")) == 2
    assert len(_by_kind(docs, "PodDisruptionBudget")) == 2


@pytest.mark.parametrize("values", [(), (PRODUCTION_VALUES,)], ids=["default", "production"])
def test_every_container_has_probes_resources_and_hardening(render: Render, values: tuple[Path, ...]) -> None:
    docs = render(*values)
    for deployment in _by_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert c[probe]["httpGet"]["port"] == "http", (c["name"], probe)
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])


def test_serving_uses_the_sagemaker_health_path(render: Render) -> None:
    docs = render(PRODUCTION_VALUES)
    serving = next(d for d in _by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-serving"))
    container = serving["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ping"
    assert container["command"][:3] == ["gunicorn", "-c", "python:modelyard.serving.gunicorn_conf"]
    assert container["command"][3] == "modelyard.serving.asgi:app"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELYARD_MODEL_URI"] == "models:/churn/Production"
    assert env["MODELYARD_ARTIFACTS_URI"] == "http://rel-modelyard-artifacts:5000"
    assert env["MLFLOW_TRACKING_URI"] == "http://rel-modelyard-tracking:5000"


@pytest.mark.parametrize("values", [(), (PRODUCTION_VALUES,)], ids=["default", "production"])
def test_secrets_are_only_referenced(render: Render, values: tuple[Path, ...]) -> None:
    docs = render(*values)
    assert not _by_kind(docs, "Secret"), "the chart must not carry secret values"
    for c in _containers(docs):
        env = {e["name"]: e for e in c.get("env", [])}
        for name in ("MODELYARD_BACKEND_STORE_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if name in env:
                assert "value" not in env[name] and "secretKeyRef" in env[name]["valueFrom"], (
                    c["name"],
                    name,
                )


def test_static_s3_keys_come_from_the_named_secret(render: Render) -> None:
    docs = render(sets=("artifacts.s3.credentials.existingSecret=s3-keys",))
    artifacts = next(d for d in _by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-artifacts"))
    env = {e["name"]: e for e in artifacts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "s3-keys"
    # The artifacts service checks run ownership against the database, by the same Secret reference.
    assert env["MODELYARD_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "modelyard-database"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-keys"


def test_ingress_routes_artifacts_to_the_artifacts_service(render: Render) -> None:
    (ingress,) = _by_kind(render(PRODUCTION_VALUES), "Ingress")
    paths = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths["/api/2.0/mlflow-artifacts"] == "rel-modelyard-artifacts"
    assert paths["/ajax-api/2.0/mlflow-artifacts"] == "rel-modelyard-artifacts"
    assert paths["/"] == "rel-modelyard-tracking"
    assert ingress["spec"]["tls"][0]["secretName"] == "ml-acme-tls"


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(render: Render) -> None:
    (job,) = _by_kind(render(), "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["modelyard", "db", "upgrade"]
    tracking = next(
        d for d in _by_kind(render(), "Deployment") if d["metadata"]["name"].endswith("-tracking")
    )
    env = {e["name"]: e.get("value") for e in tracking["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELYARD_AUTO_MIGRATE"] == "false"


def test_tracking_reads_the_artifacts_destination_for_its_downloads(render: Render) -> None:
    """/get-artifact and the model-version / logged-model file endpoints are served by tracking."""
    deployments = {d["metadata"]["name"]: d for d in _by_kind(render(), "Deployment")}
    envs = {
        name.rsplit("-", 1)[1]: {
            e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        for name, d in deployments.items()
    }
    assert (
        envs["tracking"]["MODELYARD_ARTIFACTS_DESTINATION"]
        == envs["artifacts"]["MODELYARD_ARTIFACTS_DESTINATION"]
    )
    assert {k for k in envs["artifacts"] if k.startswith(("MODELYARD_S3", "AWS_"))} <= set(envs["tracking"])


def test_service_account_carries_irsa_annotation(render: Render) -> None:
    (sa,) = _by_kind(render(PRODUCTION_VALUES), "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    for d in _by_kind(render(PRODUCTION_VALUES), "Deployment"):
        assert d["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]


def test_service_monitors_scrape_every_service(render: Render) -> None:
    monitors = _by_kind(render(PRODUCTION_VALUES), "ServiceMonitor")
    assert len(monitors) == 3
    for m in monitors:
        assert m["spec"]["endpoints"][0]["path"] == "/metrics"
        assert m["metadata"]["labels"]["release"] == "prometheus"


def test_hpa_replaces_fixed_replicas(render: Render) -> None:
    docs = render(PRODUCTION_VALUES)
    for d in _by_kind(docs, "Deployment"):
        assert "replicas" not in d["spec"]
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in _by_kind(docs, "HorizontalPodAutoscaler")}
    assert targets == {d["metadata"]["name"] for d in _by_kind(docs, "Deployment")}


def test_a_broken_template_fails_lint_and_render(helm: Path, chart_copy: Path) -> None:
    template = chart_copy / "templates" / "service.yaml"
    template.write_text(template.read_text().replace("{{- end }}", "", 1))
    lint = subprocess.run([str(helm), "lint", "--strict", str(chart_copy)], capture_output=True, text=True)
    assert lint.returncode != 0
    rendered = subprocess.run([str(helm), "template", "rel", str(chart_copy)], capture_output=True, text=True)
    assert rendered.returncode != 0


def test_schema_rejects_bad_values(helm: Path) -> None:
    for bad in (
        "services.tracking.workers=two",
        "artifacts.destination=/var/data",
        "database.existingSecret=",
    ):
        result = subprocess.run(
            [str(helm), "template", "rel", str(CHART), "--set", bad], capture_output=True, text=True
        )
        assert result.returncode != 0, bad
        assert "schema" in result.stderr.lower() or "required" in result.stderr.lower(), result.stderr


def test_serving_requires_a_model_uri(helm: Path) -> None:
    result = subprocess.run(
        [str(helm), "template", "rel", str(CHART), "--set", "services.serving.enabled=true"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "modelUri" in result.stderr


def test_every_service_runs_an_app_that_exists(render: Render) -> None:
    import importlib.util

    for deployment in _by_kind(render(PRODUCTION_VALUES), "Deployment"):
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        conf, app = command[2].removeprefix("python:"), command[3].split(":")[0]
        assert importlib.util.find_spec(conf) is not None, conf
        assert importlib.util.find_spec(app) is not None, app


def test_gc_runs_as_an_opt_in_cronjob(render: Render) -> None:
    assert _by_kind(render(), "CronJob") == []
    (cron,) = _by_kind(render(sets=("gc.enabled=true", "gc.olderThan=7d", "gc.orphans=true")), "CronJob")
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["command"] == ["modelyard", "gc", "--yes", "--older-than", "7d", "--orphans"]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["MODELYARD_BACKEND_STORE_URI"]["valueFrom"]
    assert env["MODELYARD_ARTIFACTS_DESTINATION"]["value"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
def _env_list(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["env"])


@pytest.mark.parametrize("values", [(), (PRODUCTION_VALUES,)], ids=["default", "production"])
def test_every_service_answers_its_probes_and_in_cluster_names_only(render: Render, values: tuple[Path, ...]) -> None:
    from modelyard.runtime.browser_guard import HostPolicy

    deployments = _by_kind(render(*values), "Deployment")
    service_names = {d["metadata"]["name"] for d in deployments}
    for deployment in deployments:
        env = _env_list(deployment)
        names = [e["name"] for e in env]
        # $(POD_IP) is expanded by Kubernetes only from a variable defined earlier in the list.
        assert names.index("POD_IP") < names.index("MODELYARD_ALLOWED_HOSTS")
        assert env[names.index("POD_IP")]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        hosts = env[names.index("MODELYARD_ALLOWED_HOSTS")]["value"].replace("$(POD_IP)", "10.1.2.3").split(",")
        policy = HostPolicy(hosts)
        # kubelet probes and Prometheus scrapes: the pod IP; other pods: the Services' DNS names.
        assert policy.allows("10.1.2.3:5000") and policy.allows("localhost:5000")
        for name in service_names:
            for host in (name, f"{name}.ml", f"{name}.ml.svc", f"{name}.ml.svc.cluster.local:5000"):
                assert policy.allows(host), host
        assert policy.allows("ml.acme.example") == bool(values)  # the ingress host, when there is an ingress
        assert not policy.allows("rebound.evil.example") and "MODELYARD_ALLOWED_ORIGINS" not in names


def test_allowed_hosts_and_origins_are_settable(render: Render) -> None:
    sets = ("browserProtection.allowedHosts={models.internal}", "browserProtection.allowedOrigins={https://ui.acme.example}")
    for deployment in _by_kind(render(sets=sets), "Deployment"):
        env = {e["name"]: e.get("value") for e in _env_list(deployment)}
        assert "models.internal" in env["MODELYARD_ALLOWED_HOSTS"].split(",")
        assert env["MODELYARD_ALLOWED_ORIGINS"] == "https://ui.acme.example"
    for deployment in _by_kind(render(sets=("browserProtection.allowedHosts={*}",)), "Deployment"):
        assert {e["name"]: e.get("value") for e in _env_list(deployment)}["MODELYARD_ALLOWED_HOSTS"] == "*"


def test_schema_rejects_an_origin_that_is_not_one(helm: Path) -> None:
    result = subprocess.run(
        [str(helm), "template", "rel", str(CHART), "--set", "browserProtection.allowedOrigins={ui.acme.example/x}"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "schema" in result.stderr.lower(), result.stderr


AUTH_ON = (
    "auth.enabled=true",
    "auth.admin.existingSecret=modelyard-admin",
    "auth.defaultPermission=NO_PERMISSIONS",
    "auth.trustedProxies={10.0.0.0/8}",
    "auth.serviceAccount.existingSecret=modelyard-serving",
    "services.serving.enabled=true",
    "services.serving.modelUri=models:/churn@champion",
)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def test_auth_renders_with_the_admin_secret_referenced_never_inlined(render: Render) -> None:
    docs = render(sets=AUTH_ON)
    for doc in docs:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    deployments = {d["metadata"]["name"]: d for d in _by_kind(docs, "Deployment")}
    for name, deployment in deployments.items():
        env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
        assert env["MODELYARD_AUTH"]["value"] == "true", name
        assert env["MODELYARD_AUTH_DEFAULT_PERMISSION"]["value"] == "NO_PERMISSIONS"
        assert env["MODELYARD_AUTH_TRUSTED_PROXIES"]["value"] == "10.0.0.0/8"
        assert env["MODELYARD_AUTH_USER_HEADER"]["value"] == "X-Forwarded-User"
        assert "MODELYARD_ADMIN_PASSWORD" not in env  # only ever a file from the Secret
    tracking = deployments["rel-modelyard-tracking"]["spec"]["template"]["spec"]
    env = _env(tracking["containers"][0])
    assert env["MODELYARD_ADMIN_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "modelyard-admin", "key": "username"}
    assert env["MODELYARD_ADMIN_PASSWORD_FILE"]["value"] == "/etc/modelyard/admin/password"
    volume = next(v for v in tracking["volumes"] if v["name"] == "admin-password")
    assert volume["secret"]["secretName"] == "modelyard-admin"
    assert volume["secret"]["items"] == [{"key": "password", "path": "password"}]
    serving = _env(deployments["rel-modelyard-serving"]["spec"]["template"]["spec"]["containers"][0])
    assert serving["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "modelyard-serving"
    assert "secretKeyRef" in serving["MODELYARD_BACKEND_STORE_URI"]["valueFrom"]
    # No value anywhere in the rendered chart carries a secret in the clear.
    for container in _containers(docs):
        for item in container.get("env", []):
            assert "PASSWORD" not in item["name"] or "value" not in item or item["name"].endswith("_FILE"), item


def test_auth_refuses_an_inlined_admin_password_and_needs_the_secret(helm: Path) -> None:
    base = [str(helm), "template", "rel", str(CHART)]
    inlined = subprocess.run(base + ["--set", "auth.enabled=true", "--set", "auth.admin.existingSecret=s", "--set", "auth.admin.password=hunter2hunter2"], capture_output=True, text=True)
    assert inlined.returncode != 0 and "password" in inlined.stderr
    missing = subprocess.run(base + ["--set", "auth.enabled=true"], capture_output=True, text=True)
    assert missing.returncode != 0 and "auth.admin.existingSecret is required" in missing.stderr


def test_auth_off_renders_no_auth_settings(render: Render) -> None:
    for container in _containers(render()):
        assert not any(e["name"].startswith("MODELYARD_AUTH") or e["name"].startswith("MODELYARD_ADMIN") for e in container.get("env", []))


def test_presigned_downloads_are_off_by_default_and_set_on_tracking_and_artifacts(render: Render) -> None:
    names = ("MODELYARD_ARTIFACTS_PRESIGNED_DOWNLOADS", "MODELYARD_ARTIFACTS_PRESIGNED_TTL", "MODELYARD_S3_PUBLIC_ENDPOINT_URL")
    for container in _containers(render()):
        assert not set(names) & set(_env(container)), container["name"]
    sets = ("artifacts.presignedDownloads.enabled=true", "artifacts.presignedDownloads.publicEndpointUrl=https://s3.example.com", "artifacts.presignedDownloads.ttlSeconds=120")
    deployments = {d["metadata"]["name"].rsplit("-", 1)[1]: d for d in _by_kind(render(sets=sets), "Deployment")}
    for service in ("tracking", "artifacts"):
        env = _env(deployments[service]["spec"]["template"]["spec"]["containers"][0])
        assert [env[n]["value"] for n in names] == ["true", "120", "https://s3.example.com"], service


def test_the_readme_example_renders_valid_with_auth_tls_and_big_uploads(helm: Path) -> None:
    """README's `helm install` line, its --set/--set-string flags as written (shell quoting and all)."""
    import re
    import shlex

    import yaml

    readme = (CHART.parents[1] / "README.md").read_text()
    section = readme.split("## Running it on Kubernetes", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    command = block.group(1).replace("\\\n", " ")
    install = next(line for line in command.splitlines() if line.startswith("helm install"))
    words = shlex.split(install)
    flags: list[str] = []
    for i, word in enumerate(words):
        if word in ("--set", "--set-string"):
            flags += [word, words[i + 1]]
    assert len(flags) >= 20, install
    cmd = [str(helm), "template", "rel", str(CHART), "--namespace", "ml", *flags]
    docs = [d for d in yaml.safe_load_all(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    ingress = _by_kind(docs, "Ingress")[0]
    assert ingress["spec"]["tls"] == [{"secretName": "ml-example-tls", "hosts": ["ml.example.com"]}]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    tracking = next(d for d in _by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("tracking"))
    env = {e["name"]: e for e in tracking["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELYARD_AUTH"]["value"] == "true"
    assert env["MODELYARD_ADMIN_USERNAME"]["valueFrom"]["secretKeyRef"]["name"] == "modelyard-admin"
    assert tracking["spec"]["template"]["spec"]["containers"][0]["image"].startswith("123456789012.dkr.ecr.")


def test_pods_drain_before_they_stop_and_serving_may_start_slowly(render: Render) -> None:
    """A rollout or scale-down must not cut requests in flight (the artifacts service's transfers run up to
    its 600 s timeout; Kubernetes' default grace is 30 s), nor the serving master's model download."""
    docs = render(sets=("services.serving.enabled=true", "services.serving.modelUri=models:/m/1"))
    for deployment in _by_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        timeout = int(env["MODELYARD_TIMEOUT"])
        assert int(env["MODELYARD_GRACEFUL_TIMEOUT"]) == timeout
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
        assert pod["terminationGracePeriodSeconds"] > timeout + 5
        startup = container["startupProbe"]
        seconds = startup["periodSeconds"] * startup["failureThreshold"]
        assert seconds == (600 if deployment["metadata"]["name"].endswith("serving") else 120)
