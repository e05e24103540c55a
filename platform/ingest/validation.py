"""Run dicom_check in bounded child processes and turn its output into verdicts.

The parent never parses untrusted DICOM itself. The children are warm (ingest.validator_pool):
started once per worker process, each checks one file at a time under its memory, CPU and
wall-time limits, and is replaced after a refusal, a breach or `files_per_child` files. A file
that kills its child is checked again alone, so it gets its own verdict and cannot take others
down.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .validator_pool import ChildLimits, get_pool


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
    pool_size: int = 2  # warm children per worker process
    files_per_child: int = 200  # then the child is replaced, whatever happened


_peak = {"rss_kb": 0}


def child_peak_rss_kb() -> int:
    """The largest peak RSS (KiB) a checker child of this process has reported since the last
    reset: the memory that checking untrusted files really takes (RLIMIT_AS bounds it anyway)."""
    return _peak["rss_kb"]


def reset_child_peak() -> None:
    _peak["rss_kb"] = 0


def _check_one(path: Path, out_dir: Path, limits: Limits) -> Verdict:
    child_limits = ChildLimits(
        memory_bytes=limits.memory_bytes,
        cpu_seconds=limits.cpu_seconds,
        wall_seconds=limits.wall_seconds,
        files_per_child=limits.files_per_child,
    )
    line = get_pool(child_limits, limits.pool_size).check(path, out_dir)
    if line is None:  # it killed a child of its own: memory, CPU or wall time
        return Verdict(False, "exceeded_limits")
    try:
        _peak["rss_kb"] = max(_peak["rss_kb"], int(line.get("peak_rss_kb") or 0))
        return _verdict(line)
    except (ValueError, KeyError, TypeError):
        return Verdict(False, "exceeded_limits")  # an answer cut short by the limits


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
    # One file per request, spread over the pool's children: the pool bounds the parallelism.
    workers = min(limits.pool_size, len(todo))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as executor:
            done = list(executor.map(lambda i: _check_one(paths[i], out_dir / f"file-{i}", limits), todo))
    else:
        done = [_check_one(paths[i], out_dir / f"file-{i}", limits) for i in todo]
    for i, verdict in zip(todo, done, strict=True):
        verdicts[i] = verdict
    return [v for v in verdicts if v is not None]
