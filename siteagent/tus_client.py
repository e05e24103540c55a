"""A small tus 1.0.0 client over http.client.

Why not tuspy: the agent's SQLite queue must stay the one record of where each upload is
(tuspy keeps its own URL store), the sockets need options (BBR, a modest send buffer so
progress tracks the real link), and the server's verdict headers must be read. That is
~150 lines here, with no dependency.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TUS_VERSION = "1.0.0"
SEND_BLOCK = 16 * 1024
# creation-with-upload: a file up to this size goes whole in its POST, one request. A larger one
# gains nothing from a partial body (its PATCH waits for an answer anyway), and a cut during a
# POST loses the upload's address with its bytes: at 512 kbit/s this is 2 s of the link at most.
CREATE_BODY_MAX = 128 * 1024
# A send buffer a little above a VSAT link's bandwidth-delay product (2 Mbit/s x 600 ms):
# big enough not to throttle, small enough that "sent" means "on its way over the link".
SNDBUF = 64 * 1024  # the kernel doubles it

Stream = Callable[[http.client.HTTPConnection], None]  # writes a request body to the connection


class LinkDown(ConnectionError):
    """The server could not be reached, or the connection broke: retry later."""


class Refused(Exception):
    def __init__(self, status: int, code: str, reason: str = "") -> None:
        super().__init__(f"{status} {code}: {reason}")
        self.status, self.code, self.reason = status, code, reason


def ask_for_bbr(sock: socket.socket) -> bool:
    """BBR keeps ~90 % of a lossy long link where CUBIC keeps ~50-60 %. Best effort."""
    option = getattr(socket, "TCP_CONGESTION", 13)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, b"bbr")
        return True
    except OSError:
        return False


def _tune(sock: socket.socket) -> None:
    ask_for_bbr(sock)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        pass


class _HTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _tune(self.sock)


class _HTTPS(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _tune(self.sock)


@dataclass
class PatchResult:
    offset: int
    outcome: str
    code: str


class Tally:
    """What crossed, honestly, shared by a client and its siblings: bytes written to sockets
    (request lines, headers, bodies, every retry, and whatever a cut then lost), and file bytes
    the server acknowledged by moving an upload's Upload-Offset (each byte counted once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written = 0
        self.acknowledged = 0
        self.acked: dict[str, int] = {}  # upload path -> offset the server last acknowledged
        self.extensions: set[str] | None = None

    def wrote(self, n: int) -> None:
        with self.lock:
            self.written += n


class TusClient:
    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 60,
        chunk_size: int = 2 * 1024**2,
        tally: Tally | None = None,
        wire: threading.Lock | None = None,
    ) -> None:
        self.server = server
        parts = urlsplit(server.rstrip("/"))
        self.scheme, self.netloc, self.base_path = parts.scheme, parts.netloc, parts.path
        self.token = token
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.tally = tally or Tally()
        # Held while a request is being written: siblings take turns on the link, so one of them
        # writes the next request while another waits for its answer (pipelining without HTTP
        # pipelining), and files still cross one at a time, in the queue's order.
        self.wire = wire
        self._conn: http.client.HTTPConnection | None = None

    def sibling(self) -> TusClient:
        """A client with a connection of its own, sharing the counters and the turn on the link."""
        if self.wire is None:
            self.wire = threading.Lock()
        return TusClient(
            self.server,
            self.token,
            timeout=self.timeout,
            chunk_size=self.chunk_size,
            tally=self.tally,
            wire=self.wire,
        )

    @property
    def bytes_written(self) -> int:
        return self.tally.written

    @property
    def bytes_acknowledged(self) -> int:
        return self.tally.acknowledged

    # --- plumbing ------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                context = ssl.create_default_context()
                self._conn = _HTTPS(self.netloc, timeout=self.timeout, context=context)
            else:
                self._conn = _HTTP(self.netloc, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _path(self, url_or_path: str) -> str:
        parts = urlsplit(url_or_path)
        return parts.path if parts.scheme else url_or_path

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Tus-Resumable": TUS_VERSION, "Authorization": f"Token {self.token}", **(extra or {})}

    def _request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None = None,
        stream: Stream | None = None,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        reused = self._conn is not None
        try:
            return self._request_once(method, path, headers, body, stream)
        except LinkDown as exc:
            # A kept-alive connection the server closed while idle: one fresh try, no backoff.
            # A body is sent again from its file: what the first try wrote is counted as written.
            stale = isinstance(exc.__cause__, http.client.RemoteDisconnected | BrokenPipeError)
            if reused and stale:
                return self._request_once(method, path, headers, body, stream)
            raise

    def _request_once(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None, stream: Stream | None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = self._connection()
        try:
            if self.wire is not None:
                self.wire.acquire()
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for key, value in headers.items():
                    conn.putheader(key, value)
                conn.endheaders()
                self.tally.wrote(_head_size(method, path, self.netloc, headers))
                if body:
                    conn.send(body)
                    self.tally.wrote(len(body))
                if stream:
                    stream(conn)
            finally:
                if self.wire is not None:
                    self.wire.release()  # written: a sibling may use the link while we wait
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise LinkDown(f"{method}: {exc.__class__.__name__}") from exc
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response, data

    @staticmethod
    def _refusal(response: http.client.HTTPResponse, data: bytes) -> Refused:
        try:
            info = json.loads(data or b"{}")
        except ValueError:
            info = {}
        return Refused(response.status, info.get("code", str(response.status)), info.get("reason", ""))

    # --- Joliba extensions -----------------------------------------------------------------
    def post_manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(manifest).encode()
        response, data = self._request(
            "POST",
            f"{self.base_path}/api/v1/uploads/manifests/",
            self._headers({"Content-Type": "application/json", "Content-Length": str(len(body))}),
            body,
        )
        if response.status not in (200, 201):
            raise self._refusal(response, data)
        return _json_object(data)

    def manifest_status(self, manifest_id: str) -> dict[str, Any]:
        response, data = self._request(
            "GET", f"{self.base_path}/api/v1/uploads/manifests/?id={manifest_id}", self._headers()
        )
        if response.status != 200:
            raise self._refusal(response, data)
        return _json_object(data)

    # --- tus ---------------------------------------------------------------------------------
    def _acknowledged(self, path: str, offset: int, *, baseline: bool = False) -> None:
        """The server says it holds `offset` bytes of this upload: count what is new (once)."""
        tally = self.tally
        with tally.lock:
            if baseline and path not in tally.acked:
                tally.acked[path] = offset  # sent by an earlier process: not this run's bytes
                return
            before = tally.acked.get(path, 0)
            if offset > before:
                tally.acknowledged += offset - before
                tally.acked[path] = offset

    def extensions(self) -> set[str]:
        """The server's tus extensions (OPTIONS, asked once); empty if it cannot be asked."""
        if self.tally.extensions is None:
            response, _data = self._request("OPTIONS", f"{self.base_path}/api/v1/uploads/", {})
            header = response.getheader("Tus-Extension", "") if response.status in (200, 204) else ""
            self.tally.extensions = {e.strip() for e in header.split(",") if e.strip()}
        return self.tally.extensions

    def create(
        self,
        length: int,
        metadata: dict[str, str],
        *,
        path: Path | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[str, PatchResult]:
        """Create an upload; with `path` (a file of at most CREATE_BODY_MAX bytes) and a server
        offering creation-with-upload, the whole file goes in the same request. Returns the
        upload's address and the server's offset (and verdict, when all the bytes came with it)."""
        encoded = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items() if v is not None
        )
        size = 0
        if path is not None and 0 < length <= CREATE_BODY_MAX and "creation-with-upload" in self.extensions():
            size = length
        headers = {"Upload-Length": str(length), "Upload-Metadata": encoded, "Content-Length": str(size)}
        if size:
            headers["Content-Type"] = "application/offset+octet-stream"
        response, data = self._request(
            "POST",
            f"{self.base_path}/api/v1/uploads/",
            self._headers(headers),
            stream=self._body(path, 0, size, progress) if size and path is not None else None,
        )
        if response.status != 201:
            raise self._refusal(response, data)
        location = response.getheader("Location")
        if not location:
            # http.client takes a connection that ends inside the headers for their end: an answer
            # cut short by the link, not a refusal (the file would be dropped). Tried again.
            raise LinkDown("answer cut short (no Location header)")
        offset = _upload_offset(response) if response.getheader("Upload-Offset") else 0
        with self.tally.lock:
            self.tally.acked[self._path(location)] = 0
        self._acknowledged(self._path(location), offset)
        return location, PatchResult(
            offset, response.getheader("Joliba-Outcome", ""), response.getheader("Joliba-Code", "")
        )

    def offset(self, url: str) -> int:
        response, data = self._request("HEAD", self._path(url), self._headers())
        if response.status != 200:
            raise self._refusal(response, data)
        offset = _upload_offset(response)
        # Bytes a cut request delivered before it broke count once they are acknowledged here;
        # the first HEAD of an upload an earlier process sent to only sets where we start.
        self._acknowledged(self._path(url), offset, baseline=True)
        return offset

    def _body(self, path: Path, offset: int, size: int, progress: Callable[[int], None] | None) -> Stream:
        def stream(conn: http.client.HTTPConnection) -> None:
            with path.open("rb") as f:
                f.seek(offset)
                left = size
                while left > 0:
                    block = f.read(min(SEND_BLOCK, left))
                    if not block:
                        raise OSError("file shrank while sending")
                    conn.send(block)
                    self.tally.wrote(len(block))
                    left -= len(block)
                    if progress:
                        progress(offset + size - left)

        return stream

    def patch(
        self, url: str, path: Path, offset: int, length: int, progress: Callable[[int], None] | None = None
    ) -> PatchResult:
        """Send one chunk from `offset`; returns the server's new offset (and verdict if known)."""
        size = min(self.chunk_size, length - offset)
        response, data = self._request(
            "PATCH",
            self._path(url),
            self._headers(
                {
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(size),
                }
            ),
            stream=self._body(path, offset, size, progress),
        )
        if response.status != 204:
            raise self._refusal(response, data)
        new_offset = _upload_offset(response)
        with self.tally.lock:
            self.tally.acked.setdefault(self._path(url), offset)  # resumed without a HEAD: from here
        self._acknowledged(self._path(url), new_offset)
        return PatchResult(
            new_offset,
            response.getheader("Joliba-Outcome", ""),
            response.getheader("Joliba-Code", ""),
        )


def _head_size(method: str, path: str, netloc: str, headers: dict[str, str]) -> int:
    """Bytes of a request's line and headers as http.client writes them (Host added)."""
    line = len(method) + len(path) + len(" HTTP/1.1\r\n") + 1
    return line + len(f"Host: {netloc}\r\n") + sum(len(k) + len(str(v)) + 4 for k, v in headers.items()) + 2


def _upload_offset(response: http.client.HTTPResponse) -> int:
    try:
        return int(response.getheader("Upload-Offset") or "")
    except ValueError:
        # Headers cut short by the link (http.client reads a connection's end as their end).
        raise LinkDown("answer cut short (no valid Upload-Offset header)") from None


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:  # a body cut short by the link (its headers were, too): tried again
        raise LinkDown("answer cut short (not JSON)") from None
    if not isinstance(value, dict):
        raise Refused(200, "bad_answer", "the centre answered with something else than a JSON object")
    return value
