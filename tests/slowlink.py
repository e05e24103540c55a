"""A slow, lossy-in-time link on loopback: bandwidth, latency and scheduled cuts (no netem).

    with SlowLink(("127.0.0.1", 8000), rate_bps=512_000, rtt_s=0.3, cut_every_s=30) as link:
        requests.get(link.url + "/...")
        link.stats()  # bytes that crossed the link each way, cuts so far

Each direction is one shared link (all connections queue on it, like a real access line):
bytes are serialised at `rate_bps`, then delivered `rtt_s / 2` later. A cut resets every
open connection (queued bytes are lost, as on a real drop) and refuses new ones for
`down_s`. Bytes are counted when they cross the link, so data still in the sender's own
socket buffer when a cut comes is not counted as sent — only what reached the wire.
"""

from __future__ import annotations

import collections
import socket
import struct
import threading
import time

CHUNK = 2048


class _Direction:
    """One way of the link: serialisation at the rate, shared by every connection."""

    def __init__(self, rate_bps: float) -> None:
        self.rate_bps = rate_bps
        self.lock = threading.Lock()
        self.next_free = 0.0
        self.bytes = 0

    def transmit(self, n: int) -> None:
        with self.lock:
            start = max(time.monotonic(), self.next_free)
            self.next_free = start + n * 8 / self.rate_bps
            done = self.next_free
            self.bytes += n
        delay = done - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
    except OSError:
        pass
    try:
        # close() alone leaves a connection open while another thread is blocked in recv on it.
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Connection:
    def __init__(self, link: SlowLink, client: socket.socket) -> None:
        self.link = link
        self.client = client
        self.server = socket.create_connection(link.target, timeout=10)
        self.server.settimeout(None)
        self.closed = threading.Event()
        for src, dst, direction in ((client, self.server, link.up), (self.server, client, link.down)):
            queue: collections.deque = collections.deque()
            ready = threading.Condition()
            threading.Thread(target=self._read, args=(src, direction, queue, ready), daemon=True).start()
            threading.Thread(target=self._write, args=(dst, queue, ready), daemon=True).start()

    def _read(self, src, direction: _Direction, queue, ready) -> None:
        while not self.closed.is_set():
            try:
                data = src.recv(CHUNK)
            except OSError:
                data = b""
            if self.closed.is_set():
                return
            if data:
                direction.transmit(len(data))
            with ready:
                queue.append((time.monotonic() + self.link.rtt_s / 2, data))
                ready.notify()
            if not data:
                return

    def _write(self, dst, queue, ready) -> None:
        while not self.closed.is_set():
            with ready:
                while not queue and not self.closed.is_set():
                    ready.wait(0.2)
                if self.closed.is_set():
                    return
                due, data = queue.popleft()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if self.closed.is_set():
                return
            try:
                if data:
                    dst.sendall(data)
                else:
                    dst.shutdown(socket.SHUT_WR)  # the other side finished sending
                    return
            except OSError:
                self.cut()
                return

    def cut(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            _reset(self.client)
            _reset(self.server)


class SlowLink:
    def __init__(
        self,
        target: tuple[str, int],
        *,
        rate_bps: float = 512_000,
        rtt_s: float = 0.3,
        cut_every_s: float | None = None,
        down_s: float = 0.5,
        first_cut_s: float | None = None,
    ) -> None:
        self.target = target
        self.rtt_s = rtt_s
        self.cut_every_s = cut_every_s
        self.first_cut_s = first_cut_s
        self.down_s = down_s
        self.up = _Direction(rate_bps)
        self.down = _Direction(rate_bps)
        self.cuts = 0
        self.connections_cut = 0
        self._conns: set[_Connection] = set()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # A small receive buffer (inherited by accepted sockets): the link, not loopback, holds data.
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SlowLink:
        threading.Thread(target=self._accept, daemon=True).start()
        if self.cut_every_s:
            threading.Thread(target=self._cutter, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                _reset(client)  # the link is down: nothing gets through
                continue
            try:
                conn = _Connection(self, client)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns = {c for c in self._conns if not c.closed.is_set()}
                self._conns.add(conn)

    def _cutter(self) -> None:
        wait = self.first_cut_s if self.first_cut_s is not None else self.cut_every_s
        while not self._stop.wait(wait):
            self.cut()
            wait = self.cut_every_s

    def cut(self) -> int:
        """Drop the link now: every open connection is reset, queued bytes are lost."""
        self._down_until = time.monotonic() + self.down_s
        with self._lock:
            conns, self._conns = self._conns, set()
        live = [c for c in conns if not c.closed.is_set()]
        for conn in live:
            conn.cut()
        self.cuts += 1
        self.connections_cut += len(live)
        return len(live)

    def stats(self) -> dict:
        return {
            "bytes_up": self.up.bytes,
            "bytes_down": self.down.bytes,
            "cuts": self.cuts,
            "connections_cut": self.connections_cut,
        }

    def stop(self) -> None:
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            for conn in self._conns:
                conn.cut()

    def __enter__(self) -> SlowLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
