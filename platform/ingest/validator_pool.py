"""Warm, bounded checker children: dicom_check imported once per child, one file per request.

Starting a new interpreter per file (importing pydicom and numpy) cost most of the centre's
ingest time; a child that stays up checks the next file in milliseconds. Each child keeps the
bounds the one-shot child had, and nothing carries over from one file to the next:

- memory: RLIMIT_AS for the whole child (set by the child itself before it imports anything);
- CPU: RLIMIT_CPU, its soft limit moved to "used so far + the per-file budget" before each file,
  its hard limit fixed at start-up for the child's whole life (a file cannot raise it);
- wall time: the parent waits for the answer that long, then kills the child;
- state: each file is read fresh by dicom_check's own entry point (no cache in between), into
  its own output folder; the answer carries the request's number, checked by the parent.

A child is replaced after it dies or hangs, after any refused file (a parser that failed may
have left anything behind), when its memory high-water mark passes half its limit, and after
`files_per_child` files. A file that killed a child that had checked others before, or that a
warm child refused for its limits, is checked again in a fresh child: its verdict is its own,
never the consequence of an earlier file.

One pool per process and per set of limits, created on first use and never inherited: a forked
process (Celery prefork) that finds its parent's pool drops it without touching its pipes'
other ends, and builds its own. The children exit when their stdin closes (at exit, or when the
parent dies).

    python -m ingest.validator_pool MEMORY_BYTES CPU_SECONDS CPU_HARD_SECONDS   (the child)
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

READY = "ready"
STARTUP = "startup"  # the child never got as far as reading the file: not the file's fault
# Verdicts that say the file hit a bound: from a warm child, checked again in a fresh one.
LIMIT_CODES = frozenset({"exceeded_limits", "too_large"})
STARTUP_SECONDS = 60  # importing pydicom and numpy on a loaded machine


@dataclass(frozen=True)
class ChildLimits:
    memory_bytes: int
    cpu_seconds: int
    wall_seconds: float
    files_per_child: int


class ChildDied(Exception):
    """The child gave no answer: it died, hung past its wall time, or spoke out of turn."""


class Child:
    """One checker process, used by one thread at a time (the pool hands it out)."""

    def __init__(self, limits: ChildLimits) -> None:
        self.limits = limits
        self.files = 0
        self.requests = 0
        self.peak_rss_kb = 0
        hard_cpu = limits.cpu_seconds * (limits.files_per_child + 1) + 5
        cmd = [
            sys.executable,
            "-m",
            "ingest.validator_pool",
            str(limits.memory_bytes),
            str(limits.cpu_seconds),
            str(hard_cpu),
        ]
        env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PATH": "/usr/bin:/bin"}
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,  # no other child's pipe: a child's EOF really means its parent left
        )
        self.pid = self.proc.pid
        self.owner_pid = os.getpid()
        self._buffer = b""
        self._ready = False

    def _read_line(self, deadline: float) -> dict:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildDied("wall_time")
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ChildDied("exited")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(raw)
        except ValueError:
            raise ChildDied("garbled") from None

    def check(self, path: Path, out_dir: Path) -> dict:
        """dicom_check's JSON line for `path` (index 0), or ChildDied (the child is then dead)."""
        try:
            if not self._ready:
                try:
                    started = self._read_line(time.monotonic() + STARTUP_SECONDS)
                except ChildDied:
                    raise ChildDied(STARTUP) from None
                if started.get(READY) is not True:
                    raise ChildDied(STARTUP)
                self._ready = True
            self.requests += 1
            request = {"id": self.requests, "path": str(path), "out_dir": str(out_dir)}
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            answer = self._read_line(time.monotonic() + self.limits.wall_seconds)
            if answer.get("id") != self.requests or not isinstance(answer.get("line"), dict):
                raise ChildDied("garbled")  # never take another request's answer for this one
        except (ChildDied, OSError) as exc:
            self.kill()
            raise ChildDied(str(exc)) from None
        self.files += 1
        line = answer["line"]
        with contextlib.suppress(TypeError, ValueError):
            self.peak_rss_kb = max(self.peak_rss_kb, int(line.get("peak_rss_kb") or 0))
        return line

    def worn(self, line: dict) -> bool:
        """Whether this child should check no more files after giving `line`."""
        return (
            not line.get("ok")
            or self.files >= self.limits.files_per_child
            or self.peak_rss_kb * 1024 > self.limits.memory_bytes // 2
        )

    def kill(self) -> None:
        if self.owner_pid != os.getpid():
            return  # a forked copy: the process belongs to the parent's pool
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._close_pipes()

    def close(self) -> None:
        """Ask the child to leave (EOF on its stdin); kill it if it lingers."""
        if self.owner_pid != os.getpid():
            return
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


class ValidatorPool:
    """At most `size` warm children; a thread borrows one for one file and gives it back."""

    def __init__(self, limits: ChildLimits, size: int) -> None:
        self.limits = limits
        self.size = max(1, size)
        self.owner_pid = os.getpid()
        self._idle: list[Child] = []
        self._count = 0  # children alive, idle or lent
        self._cond = threading.Condition()
        self._closed = False
        self.replaced = 0  # children retired (died, worn, refused a file): for tests and logs

    def _borrow(self) -> Child:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("validator pool closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return Child(self.limits)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _give_back(self, child: Child, *, retire: bool) -> None:
        if retire or self._closed:
            child.close()
        with self._cond:
            if not retire and not self._closed:
                self._idle.append(child)
            else:
                self._count -= 1
                self.replaced += int(retire)
                if retire and not self._closed:
                    # Start the replacement now: it imports while the caller does other work.
                    with contextlib.suppress(OSError):
                        self._idle.append(Child(self.limits))
                        self._count += 1
            self._cond.notify()

    def check(self, path: Path, out_dir: Path) -> dict | None:
        """dicom_check's line for one file, or None when the file killed a fresh child."""
        out_dir.mkdir(parents=True, exist_ok=True)
        child = self._borrow()
        warm = child.files > 0
        try:
            line = child.check(path, out_dir)
        except ChildDied as exc:
            self._give_back(child, retire=True)
            return self._alone(path, out_dir) if warm or str(exc) == STARTUP else None
        self._give_back(child, retire=child.worn(line))
        if warm and not line.get("ok") and line.get("code") in LIMIT_CODES:
            return self._alone(path, out_dir)
        return line

    def _alone(self, path: Path, out_dir: Path) -> dict | None:
        """The file again, in a child of its own that checks nothing else (not the pool's)."""
        child = Child(self.limits)
        try:
            return child.check(path, out_dir)
        except ChildDied:
            return None
        finally:
            child.close()

    def pids(self) -> list[int]:
        with self._cond:
            return [c.pid for c in self._idle]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        if self.owner_pid == os.getpid():
            for child in idle:
                child.close()


_pools: dict[tuple[ChildLimits, int], ValidatorPool] = {}
_pools_lock = threading.Lock()
MAX_POOLS = 4  # one per set of limits in use; tests use a few


def get_pool(limits: ChildLimits, size: int) -> ValidatorPool:
    """This process's pool for these limits, created on first use."""
    key = (limits, size)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is not None and pool.owner_pid == os.getpid():
            return pool
        if len(_pools) >= MAX_POOLS:
            _pools.pop(next(iter(_pools))).close()
        pool = _pools[key] = ValidatorPool(limits, size)
        return pool


def close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def _forget_inherited_pools() -> None:
    """In a forked child: the pools belong to the parent. Close our copies of their pipes (the
    parent's children still have the parent's copies) and start afresh on first use."""
    global _pools_lock
    _pools_lock = threading.Lock()  # it may have been held by another thread at fork time
    for pool in _pools.values():
        for child in pool._idle:
            child._close_pipes()
    _pools.clear()


atexit.register(close_pools)
os.register_at_fork(after_in_child=_forget_inherited_pools)


# --- the child ------------------------------------------------------------------------------


def _prefer_charls() -> None:
    """JPEG-LS through CharLS (pyjpegls) first, libjpeg's after: 4-5x faster here on CR, and
    JPEG-LS decoding is exact, so which one answers changes no verdict (pydicom still falls back
    to the other when the first fails). The other codecs keep pydicom's order: a JPEG baseline
    decoded by another library may differ by a grey level."""
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import JPEGLSLossless, JPEGLSNearLossless

    for uid in (JPEGLSLossless, JPEGLSNearLossless):
        decoder = get_decoder(uid)
        if {"pyjpegls", "pylibjpeg"} <= set(decoder.available_plugins):
            with contextlib.suppress(Exception):  # a pydicom that changed this API: its order
                decoder.remove_plugin("pylibjpeg")
                decoder.add_plugin("pylibjpeg", ("pydicom.pixels.decoders.pylibjpeg", "_decode_frame"))


def _serve(memory_bytes: int, cpu_seconds: int, cpu_hard: int) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C for the worker is the parent's to handle

    import numpy  # noqa: F401 - warm: what a one-shot child paid for on every file
    import pydicom  # noqa: F401
    import pydicom.pixels  # noqa: F401

    from ingest import dicom_check

    _prefer_charls()
    # The answers get a descriptor of their own; fd 1 goes to /dev/null, so that a C library
    # writing to stdout cannot put a stray line in the protocol.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    out.write(json.dumps({READY: True}).encode() + b"\n")
    out.flush()
    for raw in sys.stdin.buffer:
        request = json.loads(raw)
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = int(used.ru_utime + used.ru_stime) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (min(spent + cpu_seconds, cpu_hard), cpu_hard))
        captured = io.StringIO()
        # dicom_check's own entry point and JSON contract, as the one-shot child ran it.
        with contextlib.redirect_stdout(captured):
            dicom_check.main([request["out_dir"], request["path"]])
        lines = [json.loads(s) for s in captured.getvalue().splitlines() if s.strip().startswith("{")]
        if lines:
            lines[-1]["peak_rss_kb"] = _high_water_kb()
        answer = {"id": request["id"], "line": lines[-1] if lines else None}
        out.write(json.dumps(answer).encode() + b"\n")
        out.flush()
        del captured, lines, answer
        gc.collect()  # what the file left behind goes before the next one arrives
    return 0


def _high_water_kb() -> int:
    """This process's own memory high-water mark (VmHWM). Not getrusage's ru_maxrss: Linux carries
    the parent's peak across fork and exec into it, so a child of a large worker (or test run)
    would look worn from its first file and be replaced after every one."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for row in status:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    sys.exit(_serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
