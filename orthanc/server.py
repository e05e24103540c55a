"""Start a throw-away Orthanc archive on free loopback ports (tests, quickstart).

Production runs its own Orthanc ≥ 1.12.11 (see deploy/); Debian's 1.10 serves loopback only.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .client import OrthancClient, OrthancError
from .config import archive_config, write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def orthanc_binary() -> str:
    found = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
    if not found:
        raise RuntimeError("Orthanc is not installed: apt-get install orthanc orthanc-dicomweb orthanc-gdcm")
    return found


class OrthancProcess:
    """An Orthanc child process with its own storage, config and credentials."""

    def __init__(
        self,
        workdir: Path,
        *,
        http_port: int | None = None,
        dicom_port: int | None = None,
        username: str = "joliba",
        password: str | None = None,
        stable_age_s: int = 2,
        modalities: dict[str, tuple[str, str, int]] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.http_port = http_port or free_port()
        self.dicom_port = dicom_port or free_port()
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.config_path = self.workdir / "orthanc.json"
        self.log_path = self.workdir / "orthanc.log"
        self.stable_age_s = stable_age_s
        self.modalities = modalities or {}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def client(self) -> OrthancClient:
        return OrthancClient(self.url, self.username, self.password)

    def start(self, timeout_s: float = 30) -> OrthancProcess:
        config = archive_config(
            storage_dir=self.workdir,
            http_port=self.http_port,
            dicom_port=self.dicom_port,
            username=self.username,
            password=self.password,
            stable_age_s=self.stable_age_s,
            modalities=self.modalities,
        )
        write_config(self.config_path, config)
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [orthanc_binary(), str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        client = self.client()
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start; see {self.log_path}")
            try:
                client.system()
                return self
            except OrthancError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout_s}s; see {self.log_path}")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> OrthancProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """joliba-orthanc: run the archive in the foreground (used by the quickstart)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--http-port", type=int, default=8042)
    parser.add_argument("--dicom-port", type=int, default=4242)
    parser.add_argument("--username", default="joliba")
    parser.add_argument("--password", required=True)
    args = parser.parse_args(argv)
    server = OrthancProcess(
        args.workdir,
        http_port=args.http_port,
        dicom_port=args.dicom_port,
        username=args.username,
        password=args.password,
        stable_age_s=10,
    ).start()
    print(f"Orthanc archive on {server.url} (log: {server.log_path})", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while server._proc and server._proc.poll() is None:
            time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
