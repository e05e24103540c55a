import os
import subprocess
import sys

from tests.paths import REPO
from tests.settings_child import production_env, setup_in


def test_platform_folder_never_shadows_the_standard_library():
    assert not (REPO / "platform" / "__init__.py").exists()
    out = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.__file__); platform.system()"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "/platform/" not in out.stdout.replace(str(REPO), "")
    assert not out.stdout.startswith(str(REPO))


def test_tests_is_a_package_so_no_test_folder_can_shadow_a_real_one():
    """tests/inference/ or tests/orthanc/ must never be importable as `inference` or `orthanc`."""
    assert (REPO / "tests" / "__init__.py").exists()
    assert not (REPO / "platform" / "__init__.py").exists()  # and platform/ stays a plain folder


def test_framework_free_packages_do_not_import_django():
    code = (
        "import sys, orthanc.client, orthanc.server, orthanc.config, ingest.dicom_check;"
        "assert 'django' not in sys.modules, [m for m in sys.modules if m.startswith('django')]"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'platform'}"}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)


def _app_imports() -> dict[str, set[str]]:
    """Which Django apps of platform/ each app imports (function-level imports included)."""
    import ast

    root = REPO / "platform"
    apps = {p.name for p in root.iterdir() if (p / "apps.py").exists()}
    edges: dict[str, set[str]] = {app: set() for app in apps}
    for app in apps:
        for f in (root / app).rglob("*.py"):
            if "migrations" in f.parts:
                continue
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [n.name for n in node.names]
                else:
                    continue
                edges[app] |= {n.split(".")[0] for n in names} & apps - {app}
    return edges


def test_no_two_apps_import_each_other():
    """The apps form layers (accounts at the bottom): an arrow back up is a cycle, refused here
    with the pair named (a lower app that must hear of something offers a signal or a hook)."""
    edges = _app_imports()
    assert {"accounts", "studies", "audit", "ingest", "uploads"} <= set(edges)  # it does see the apps

    def reaches(a: str, b: str, seen: frozenset[str] = frozenset()) -> bool:
        return b in edges[a] or any(reaches(c, b, seen | {a}) for c in edges[a] - seen - {a})

    cycles = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if reaches(b, a)})
    assert not cycles, cycles


def test_production_refuses_the_default_secret_and_debug():
    assert "SECRET_KEY" in setup_in(production_env(SECRET_KEY=None)).stderr
    assert "DEBUG" in setup_in(production_env(DEBUG="1")).stderr
    ok = setup_in(production_env())
    assert ok.returncode == 0, ok.stderr


def test_production_refuses_kannel_callbacks_without_their_token():
    refused = setup_in(production_env(ALERTS_CALLBACK_TOKEN=""))
    assert refused.returncode != 0 and "ALERTS_CALLBACK_TOKEN" in refused.stderr
    other_provider = production_env(ALERTS_CALLBACK_TOKEN=None, ALERTS_SMS_BACKEND="africastalking")
    assert setup_in(other_provider).returncode == 0


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("y" * 50 + "\n")
    ok = setup_in(production_env(SECRET_KEY=None, SECRET_KEY_FILE=str(secret)))
    assert ok.returncode == 0, ok.stderr
