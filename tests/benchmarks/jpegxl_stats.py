"""Bytes of JPEG XL against the best of as-is / JPEG-LS / JPEG 2000, per file, as the agent decides.

    .venv/bin/python -m tests.benchmarks.jpegxl_stats [--rate BYTES_PER_S] [--pipelined] [--effort N] PATH...

For each DICOM file: the best of as-is, JPEG-LS and J2K for its pixels (the agent without JPEG XL,
`SitePolicy(jpegxl=False)`, plus JPEG-LS / J2K of the sources it sends as they are), what the
agent sends with JPEG XL at the given link rate (the effort rule of siteagent/jpegxl.py;
--pipelined: the rule of an agent that encodes while sending), and, with --effort, JPEG XL forced
at that effort (what the codec can do whatever the link). Ratios are of whole files (what crosses
the link). The upload benchmark calls `jxl_stats(paths)`; the last line printed here is its JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from siteagent import jpegxl
from siteagent.compression import SitePolicy, compress_for_link


def _forced(path: Path, effort: int) -> tuple[int | None, float]:
    import pydicom

    ds = pydicom.dcmread(path)
    started = time.perf_counter()
    if str(ds.file_meta.TransferSyntaxUID) == jpegxl.JPEG_BASELINE:
        wire = jpegxl.encode_jpeg_recompression(ds)
    elif str(ds.file_meta.TransferSyntaxUID) in jpegxl.LOSSLESS_SOURCES:
        wire = jpegxl.encode_lossless(ds, best_bytes=0, link_bytes_per_s=1, force_effort=effort)
    else:
        wire = None
    if wire is None:
        return None, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        wire.dataset.save_as(Path(tmp) / "w.dcm", enforce_file_format=True)
        return (Path(tmp) / "w.dcm").stat().st_size, time.perf_counter() - started


def _best_standard(path: Path, as_is: int) -> tuple[str, int]:
    """Best of as-is, JPEG-LS and J2K for a file the agent sends as it is (a lossless syntax
    already): what a peer that re-encodes its pixels would send."""
    import pydicom

    from siteagent.compression import _encode, _to_bytes

    best = ("as-is", as_is)
    ds = pydicom.dcmread(path)
    if str(ds.file_meta.TransferSyntaxUID) not in jpegxl.LOSSLESS_SOURCES:
        return best
    reference = ds.pixel_array
    for name in ("jpegls", "j2k"):
        try:
            size = len(_to_bytes(_encode(path, name, reference)))
        except Exception:  # noqa: BLE001 - a codec that cannot take this image does not count
            continue
        best = min(best, (name, size), key=lambda b: b[1])
    return best


def jxl_stats(
    paths: list[Path],
    *,
    link_bytes_per_s: float = jpegxl.DEFAULT_LINK_BYTES_PER_S,
    effort: int | None = None,
    pipelined: bool = False,
) -> dict[str, Any]:
    """Per-file and summary figures: {"files": [...], "median_ratio", "by_modality", "total_ratio",
    "encode_s", "baseline_encode_s", "link_bytes_per_s"}; ratio = agent's bytes with JPEG XL over
    the best of as-is / JPEG-LS / J2K for the same pixels (JPEG-LS and J2K tried on compressed
    sources too, which the agent without JPEG XL sends as they are)."""
    import pydicom

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i, path in enumerate(map(Path, paths)):
            head = pydicom.dcmread(path, stop_before_pixels=True)
            off = compress_for_link(path, work / f"off{i}.dcm", SitePolicy(jpegxl=False))
            baseline_codec, baseline = off.codec, off.size
            if off.codec == "as-is":
                baseline_codec, baseline = _best_standard(path, off.size)
            on = compress_for_link(
                path,
                work / f"on{i}.dcm",
                SitePolicy(link_bytes_per_s=link_bytes_per_s, encode_while_sending=pipelined),
            )
            row: dict[str, Any] = {
                "file": path.name,
                "modality": str(head.get("Modality", "")),
                "baseline_codec": baseline_codec,
                "baseline_bytes": baseline,
                "agent_without_jxl_bytes": off.size,
                "codec": on.codec,
                "effort": on.effort,
                "bytes": on.size,
                "ratio": round(on.size / baseline, 4),
                "encode_s": round(on.encode_seconds, 3),
                "baseline_encode_s": round(off.encode_seconds, 3),
            }
            if effort is not None:
                forced, seconds = _forced(path, effort)
                row["forced_ratio"] = round(forced / baseline, 4) if forced else None
                row["forced_encode_s"] = round(seconds, 3)
            rows.append(row)
    by_modality: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        by_modality[row["modality"]].append(row["ratio"])
    return {
        "link_bytes_per_s": link_bytes_per_s,
        "pipelined": pipelined,
        "files": rows,
        "median_ratio": statistics.median(r["ratio"] for r in rows) if rows else None,
        "by_modality": {m: round(statistics.median(v), 4) for m, v in sorted(by_modality.items())},
        "total_ratio": round(
            sum(r["bytes"] for r in rows) / max(sum(r["baseline_bytes"] for r in rows), 1), 4
        ),
        "bytes": sum(r["bytes"] for r in rows),
        "agent_without_jxl_bytes": sum(r["agent_without_jxl_bytes"] for r in rows),
        "baseline_bytes": sum(r["baseline_bytes"] for r in rows),
        "encode_s": round(sum(r["encode_s"] for r in rows), 2),
        "baseline_encode_s": round(sum(r["baseline_encode_s"] for r in rows), 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=jpegxl.DEFAULT_LINK_BYTES_PER_S, help="link bytes/s")
    p.add_argument("--effort", type=int, default=None, help="also JPEG XL forced at this effort")
    p.add_argument("--pipelined", action="store_true", help="effort rule of an agent encoding while sending")
    p.add_argument("paths", nargs="+", type=Path)
    args = p.parse_args(argv)
    files = sorted(f for p in args.paths for f in ([p] if p.is_file() else p.rglob("*.dcm")))
    stats = jxl_stats(files, link_bytes_per_s=args.rate, effort=args.effort, pipelined=args.pipelined)
    for row in stats["files"]:
        forced = f" forced e{args.effort} {row['forced_ratio']}" if args.effort else ""
        sys.stderr.write(
            f"{row['modality']:3} {row['file'][:28]:28} {row['baseline_codec']:7} "
            f"{row['baseline_bytes']:>9} -> "
            f"{row['codec']:11} e{row['effort'] or '-'} {row['bytes']:>9} ({row['ratio']:.3f}) "
            f"{row['encode_s']:.2f} s{forced}\n"
        )
    print(json.dumps({k: v for k, v in stats.items() if k != "files"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
