"""Run dicom_check in a bounded child process and turn its output into verdicts.

The parent never parses untrusted DICOM itself. A file that kills its child (memory, CPU,
wall time) is checked again alone, so it gets its own verdict and cannot take others down.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Verdict:
    """The checker's answer for one file: a code and its parameters (ingest.verdicts says it)."""

    ok: bool
    code: str
    params: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)
    clean_path: Path | None = None
    repaired: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 1536 * 1024**2
    cpu_seconds: int = 30
    wall_seconds: float = 120
    max_file_bytes: int = 2 * 1024**3


_peak = {"rss_kb": 0}


def child_peak_rss_kb() -> int:
    """The largest peak RSS (KiB) a checker child of this process has reported since the last
    reset: the memory that checking untrusted files really takes (RLIMIT_AS bounds it anyway)."""
    return _peak["rss_kb"]


def reset_child_peak() -> None:
    _peak["rss_kb"] = 0


def _limit_child(limits: Limits):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _run_child(paths: list[Path], out_dir: Path, limits: Limits) -> dict[int, dict]:
    cmd = [sys.executable, "-m", "ingest.dicom_check", str(out_dir), *map(str, paths)]
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PATH": "/usr/bin:/bin"}
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            timeout=limits.wall_seconds * max(1, len(paths)),
            preexec_fn=_limit_child(limits),
            env=env,
            check=False,
        )
        stdout = proc.stdout
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout or b""
    lines = {}
    for raw in stdout.splitlines():
        try:
            line = json.loads(raw)
            lines[int(line["index"])] = line
            _peak["rss_kb"] = max(_peak["rss_kb"], int(line.get("peak_rss_kb") or 0))
        except (ValueError, KeyError, TypeError):
            continue
    return lines


def _verdict(line: dict) -> Verdict:
    return Verdict(
        ok=line["ok"],
        code=line["code"],
        params=line.get("params") or {},
        facts=line.get("facts", {}),
        repaired=line.get("repaired", []),
        clean_path=Path(line["clean_path"]) if line.get("clean_path") else None,
    )


def check_files(paths: list[Path], out_dir: Path, limits: Limits | None = None) -> list[Verdict]:
    """One verdict per path, in order; accepted files get a clean copy under out_dir."""
    limits = limits or Limits()
    verdicts: list[Verdict | None] = [None] * len(paths)
    todo = []
    for i, path in enumerate(paths):
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            verdicts[i] = Verdict(False, "file_too_large", {"limit_mb": limits.max_file_bytes // 1024**2})
        elif size == 0:
            verdicts[i] = Verdict(False, "empty")
        else:
            todo.append(i)
    batch_dir = out_dir / "batch"
    batch_dir.mkdir(parents=True, exist_ok=True)
    lines = _run_child([paths[i] for i in todo], batch_dir, limits) if todo else {}
    for pos, i in enumerate(todo):
        if pos in lines:
            verdicts[i] = _verdict(lines[pos])
            continue
        # The batch child died before this file: check it alone to learn whose fault it was.
        alone_dir = out_dir / f"alone-{i}"
        alone_dir.mkdir(parents=True, exist_ok=True)
        alone = _run_child([paths[i]], alone_dir, limits)
        verdicts[i] = _verdict(alone[0]) if 0 in alone else Verdict(False, "exceeded_limits")
    return [v for v in verdicts if v is not None]
