"""Kannel from Debian's packages for the tests: bearerbox + smsbox + the fake SMSC, on free ports.

Two fake SMSC links: `phones` receives every message Joliba sends (a fakesmsc process prints them,
this harness reads them back), and `mo` is where a test types a phone's reply (one short fakesmsc
run per reply; Kannel routes the service's answer back to it). Only the HTTP interfaces are used by
the platform: sendsms, the dlr-url, the sms-service get-url.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
HAVE_KANNEL = all(p.exists() for p in (BEARERBOX, SMSBOX, FAKESMSC))
WHY_NOT = "Kannel is not installed (Debian packages kannel and kannel-extras: make system-deps)"
SHORT_NUMBER = "36123"  # the number phones reply to
GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>\s*$")


@dataclass(frozen=True)
class Received:
    sender: str
    to: str
    coding: str
    text: str
    seen_at: float  # time.time() when this harness first read it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


class Kannel:
    def __init__(self, workdir: Path, *, incoming_url: str, password: str = "kannel-test-pw") -> None:
        self.dir = workdir
        self.password = password
        self.incoming_url = incoming_url  # the platform's sms-service get-url (without Kannel's %-fields)
        self.admin_port, self.box_port = free_port(), free_port()
        self.phones_port, self.mo_port, self.sendsms_port = free_port(), free_port(), free_port()
        self.conf = workdir / "kannel.conf"
        self.procs: dict[str, subprocess.Popen] = {}
        self._seen: dict[int, float] = {}
        self._from_line = 0

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def write_conf(self) -> None:
        d = self.dir
        get_url = self.incoming_url + ("&" if "?" in self.incoming_url else "?") + "from=%p&to=%P&text=%a"
        self.conf.write_text(
            f"""group = core
admin-port = {self.admin_port}
admin-password = adm
admin-allow-ip = "127.0.0.1"
smsbox-port = {self.box_port}
box-allow-ip = "127.0.0.1"
log-file = "{d}/bearerbox.log"
log-level = 1
store-type = file
store-location = "{d}/store"
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = phones
port = {self.phones_port}
connect-allow-ip = "127.0.0.1"
denied-smsc-id = mo

group = smsc
smsc = fake
smsc-id = mo
port = {self.mo_port}
connect-allow-ip = "127.0.0.1"
allowed-smsc-id = mo

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.box_port}
sendsms-port = {self.sendsms_port}
log-file = "{d}/smsbox.log"
log-level = 1

group = sendsms-user
username = joliba
password = {self.password}
default-sender = {SHORT_NUMBER}
max-messages = 3
concatenation = true

group = sms-service
keyword = default
catch-all = true
get-url = "{get_url}"
max-messages = 1
concatenation = true
"""
        )

    def start(self) -> Kannel:
        self.write_conf()
        self._spawn("bearerbox", [str(BEARERBOX), str(self.conf)])
        _wait_port(self.admin_port)
        self.start_smsbox()
        self._spawn(
            "phones", [str(FAKESMSC), "-H", "127.0.0.1", "-r", str(self.phones_port), "-m", "0", "x y text z"]
        )
        self._wait_online("phones")
        return self

    def start_smsbox(self) -> None:
        self._spawn("smsbox", [str(SMSBOX), str(self.conf)])
        _wait_port(self.sendsms_port)

    def stop_smsbox(self) -> None:
        """The gateway's HTTP side goes away (as when the Kannel host reboots)."""
        self._stop("smsbox")

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = (self.dir / f"{name}.out").open("ab")
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _wait_online(self, smsc_id: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.admin_port}/status.txt?password=adm"
        while time.monotonic() < deadline:
            try:
                status = urllib.request.urlopen(url, timeout=2).read().decode()
            except OSError:
                status = ""
            if re.search(rf"^\s*{smsc_id}\[.*\(online", status, re.M):
                return
            time.sleep(0.1)
        raise RuntimeError(f"fake SMSC {smsc_id} not online: {status[-500:]}")

    def stop(self) -> None:
        for name in list(self.procs)[::-1]:
            self._stop(name)

    def forget(self) -> None:
        """From now on, received() shows only what comes next (each test starts with no messages)."""
        self._from_line = len((self.dir / "phones.out").read_text(errors="replace").splitlines())

    def received(self, to: str | None = None) -> list[Received]:
        """What the phones got, oldest first (read from the fake SMSC's output)."""
        path = self.dir / "phones.out"
        out = []
        now = time.time()
        for number, line in enumerate(path.read_text(errors="replace").splitlines()):
            if number < self._from_line:
                continue
            m = GOT.search(line)
            if not m:
                continue
            seen = self._seen.setdefault(number, now)
            sender, dest, coding, text = m.groups()
            if to is None or dest == to:
                out.append(Received(sender, dest, coding, text, seen))
        return out

    def reply_from_phone(self, phone: str, text: str, timeout: float = 15) -> str:
        """A phone sends `text` to the short number; returns the platform's answer as the phone gets it."""
        log = self.dir / f"mo-{time.monotonic_ns()}.out"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(FAKESMSC),
                    "-H",
                    "127.0.0.1",
                    "-r",
                    str(self.mo_port),
                    "-m",
                    "1",
                    f"{phone} {SHORT_NUMBER} text {text}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for line in log.read_text(errors="replace").splitlines():
                    if m := GOT.search(line):
                        return m.group(4)
                time.sleep(0.1)
            raise AssertionError(f"no answer to {text!r}: {log.read_text()[-800:]}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
