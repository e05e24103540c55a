"""gunicorn's configuration hooks for the metrics of several worker processes
(`gunicorn -c python:health.gunicorn_hooks …`, deploy/). With PROMETHEUS_MULTIPROC_DIR set, each
process writes its django-prometheus figures to files there and /metrics merges them; a process
that exits is marked dead, so its live gauges stop counting (its counters stay in the totals).
The folder must be empty when gunicorn starts: a tmpfs, or systemd's RuntimeDirectory."""

from __future__ import annotations

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
