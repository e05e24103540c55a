"""`make run`: the whole platform on one machine with embedded defaults.

SQLite, Celery on a file-system transport (no broker server), an Orthanc archive started
here on loopback, demo sites and users. Everything lives under var/ and survives restarts.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "platform")]

from orthanc.server import OrthancProcess, free_port  # noqa: E402

VAR = Path(os.environ.get("JOLIBA_DATA_DIR", REPO / "var"))


def persistent_secret(name: str) -> str:
    path = VAR / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> int:
    for folder in ("celery-queue", "celery-processed", "celery-control", "spool"):  # the file-system broker's
        (VAR / folder).mkdir(parents=True, exist_ok=True)
    if not (VAR / "models").is_dir():  # the demo AI model; every page showing it says "not for clinical use"
        from inference.demo import build_demo_model

        build_demo_model(VAR / "models")
    port = int(os.environ.get("PORT", "8000"))
    orthanc = OrthancProcess(
        VAR / "orthanc",
        password=persistent_secret("orthanc-password"),
        stable_age_s=5,
        http_port=int(os.environ.get("ORTHANC_HTTP_PORT", 0)) or free_port(),
        dicom_port=int(os.environ.get("ORTHANC_DICOM_PORT", 0)) or free_port(),
    ).start()
    env = {
        **os.environ,
        "JOLIBA_DATA_DIR": str(VAR),
        "SECRET_KEY": persistent_secret("django-secret-key"),
        "ORTHANC_URL": orthanc.url,
        "ORTHANC_USERNAME": orthanc.username,
        "ORTHANC_PASSWORD": orthanc.password,
        "PYTHONPATH": str(REPO / "platform"),
        "DJANGO_SETTINGS_MODULE": "joliba.settings",
        # A demo on one laptop: the second factor is off unless asked for (JOLIBA_2FA_REQUIRED=1
        # make run); every other deployment has it on (docs/authentication.md).
        "JOLIBA_2FA_REQUIRED": os.environ.get("JOLIBA_2FA_REQUIRED", "0"),
    }
    # The quickstart is the embedded flavour: SQLite and the file-system broker, always.
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True)
    subprocess.run([*manage, "seed_demo"], env=env, check=True)
    subprocess.run([*manage, "seed_alerts_demo"], env=env, check=True)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "joliba",
                "worker",
                "-B",
                "--pool=solo",
                "--loglevel=WARNING",
                "-s",
                str(VAR / "celerybeat-schedule"),
            ],
            env=env,
            cwd=REPO,
        ),
        subprocess.Popen([*manage, "runserver", "--noreload", f"127.0.0.1:{port}"], env=env),
    ]
    print(f"\nJoliba tourne sur / is running at  http://127.0.0.1:{port}/", flush=True)
    print(f"Archive Orthanc (loopback only): {orthanc.url}  — Ctrl-C pour arrêter / to stop", flush=True)
    if env["JOLIBA_2FA_REQUIRED"].lower() in {"1", "true", "yes", "on"}:
        print("Double authentification exigée / two-factor authentication required\n", flush=True)
    else:
        print(
            "Double authentification DÉSACTIVÉE pour la démo / two-factor authentication OFF for the demo"
            " (JOLIBA_2FA_REQUIRED=1 make run pour l'exiger / to require it)\n",
            flush=True,
        )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        orthanc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
