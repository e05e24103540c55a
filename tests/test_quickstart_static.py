"""The quickstart's server sends static files compressed, as production does: the page a
technician opens on a 2G link costs 31 kB, not 107 kB."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests

from orthanc.server import free_port
from tests.paths import REPO


def test_the_quickstart_server_sends_static_files_gzipped(tmp_path):
    env = {
        **os.environ,
        "JOLIBA_ENV": "development",
        "DEBUG": "1",
        "STATIC_ROOT": str(tmp_path / "static"),
        "JOLIBA_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO / "platform"),
    }
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], env=env, check=True, timeout=300)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/static/uploads/send.js"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the quickstart server did not start"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert answer.headers["Content-Encoding"] == "gzip"
        sent = len(answer.raw.read(decode_content=False))
        plain = (REPO / "platform/uploads/static/uploads/send.js").stat().st_size
        assert sent < plain / 2, (sent, plain)
    finally:
        server.terminate()
        server.wait(timeout=10)
