"""gunicorn's configuration hooks for the metrics of several worker processes
(`gunicorn -c python:health.gunicorn_hooks …`, deploy/). With PROMETHEUS_MULTIPROC_DIR set, each
process writes its django-prometheus figures to files there and /metrics merges them; a process
that exits is marked dead, so its live gauges stop counting (its counters stay in the totals).
The folder must be empty when gunicorn starts: a tmpfs, or systemd's RuntimeDirectory."""

from __future__ import annotations

import os
from typing import Any

# gunicorn 27's control socket (~/.gunicorn/gunicorn.ctl) is one per home directory: two servers
# of one user (the tests', several on one host) would take it from each other, and the units'
# home is read-only. Nothing here uses it. (Older gunicorn ignores the name.)
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
