"""The link's rate as the agent measured it on its last transfers, kept in its queue's database.

The JPEG XL effort (siteagent/jpegxl.py) weighs encoding seconds against link seconds, so it needs
the rate this site really gets: bytes over seconds of its last transfers (outages included, since
they are what a file waits through), not a figure from a contract.
"""

from __future__ import annotations

import sqlite3
import time

SCHEMA = """CREATE TABLE IF NOT EXISTS link_transfers (
    at REAL NOT NULL, bytes INTEGER NOT NULL, seconds REAL NOT NULL
)"""
MIN_BYTES = 64 * 1024  # smaller transfers measure round trips, not the rate
SAMPLES = 20
KEEP = 200


def record(db: sqlite3.Connection, nbytes: int, seconds: float) -> None:
    """Remember one transfer (bytes that crossed, seconds it took); keeps the last KEEP."""
    if nbytes < MIN_BYTES or seconds <= 0:
        return
    db.execute(SCHEMA)
    db.execute("INSERT INTO link_transfers VALUES (?,?,?)", (time.time(), int(nbytes), float(seconds)))
    db.execute(
        "DELETE FROM link_transfers WHERE rowid NOT IN "
        "(SELECT rowid FROM link_transfers ORDER BY at DESC LIMIT ?)",
        (KEEP,),
    )


def estimate(db: sqlite3.Connection) -> float | None:
    """Bytes per second over the last SAMPLES transfers, or None when none was timed yet."""
    db.execute(SCHEMA)
    row = db.execute(
        "SELECT sum(bytes), sum(seconds) FROM"
        " (SELECT bytes, seconds FROM link_transfers ORDER BY at DESC LIMIT ?)",
        (SAMPLES,),
    ).fetchone()
    if not row or not row[0] or not row[1]:
        return None
    return float(row[0]) / float(row[1])
