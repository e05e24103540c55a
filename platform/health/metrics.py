"""Prometheus metrics of the platform itself (docs/operations.md#metrics), computed at scrape time.

Every figure here is read from PostgreSQL or the broker when Prometheus asks, never counted in
the process that happens to serve the scrape: gunicorn runs several processes and Celery more,
and a counter kept in one of them would be a fraction of the truth (and lost at each restart).
django-prometheus's request, database and cache metrics are per process; with
PROMETHEUS_MULTIPROC_DIR set (deploy/) the scrape merges every process's files.

No label names a patient or a study: sites, queues, priorities, alert categories only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

# Pre-read: from the study complete to its pre-read done (seconds). Alert acknowledgement: from
# sent to acknowledged. Buckets cover a fast worker (seconds) to a night without one (hours).
PREREAD_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
ACK_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def celery_queues() -> list[str]:
    """The queues tasks can land in: the default one, and the split queues when routes are on."""
    names = [settings.CELERY_TASK_DEFAULT_QUEUE]
    if settings.CELERY_SPLIT_QUEUES:
        names += [settings.CELERY_QUEUE_PREFIX + queue for queue in settings.JOLIBA_TASK_QUEUES]
    names += settings.METRICS_EXTRA_QUEUES
    return list(dict.fromkeys(names))


def queue_depths(queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each queue, asked of the broker: a passive declare on RabbitMQ (it
    answers the ready count and creates nothing), LLEN on Redis (kombu keeps a queue as a list,
    one per priority step). A queue the broker does not know has no message: 0."""
    from joliba.celery import app

    depths: dict[str, int] = {}
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return depths  # the quickstart's folder queue: not measured
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    with app.connection_for_read(url=settings.CELERY_BROKER_URL, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)
        channel = conn.default_channel
        if conn.transport.driver_type == "redis":
            client = channel.client
            for queue in queues:
                keys = {channel._q_for_pri(queue, pri) for pri in channel.priority_steps}
                depths[queue] = sum(int(client.llen(key)) for key in keys)
            return depths
        if conn.transport.driver_type == "amqp":
            for queue in queues:
                try:
                    with conn.channel() as passive:
                        depths[queue] = int(passive.queue_declare(queue, passive=True).message_count)
                except Exception as error:  # noqa: BLE001 — NOT_FOUND closes that channel only
                    if "NOT_FOUND" not in repr(error) and "404" not in repr(error):
                        raise
                    depths[queue] = 0
            return depths
    return depths  # other transports (the quickstart's file system, memory): not measured


def _seconds(delta_expr: Combinable) -> ExpressionWrapper:
    return ExpressionWrapper(delta_expr, output_field=DurationField())


def _histogram_counts(
    rows: Iterable[dict], *, labels: Sequence[str], buckets: Sequence[float]
) -> dict[tuple[str, ...], tuple[list[int], int, float]]:
    """{label values: (cumulative count per bucket, count, sum of seconds)} from rows that carry
    the label values and `b<i>` (count at or under bucket i), `n` and `total` (a timedelta)."""
    out = {}
    for row in rows:
        key = tuple(str(row[name]) for name in labels)
        total = row["total"]
        seconds = total.total_seconds() if isinstance(total, timedelta) else float(total or 0)
        out[key] = ([int(row[f"b{i}"]) for i in range(len(buckets))], int(row["n"]), seconds)
    return out


def _aggregate_histogram(qs, latency: str, labels: Sequence[str], buckets: Sequence[float]):
    counts = {
        f"b{i}": Count("pk", filter=Q(**{f"{latency}__lte": timedelta(seconds=b)}))
        for i, b in enumerate(buckets)
    }
    rows = qs.values(*labels).annotate(n=Count("pk"), total=Sum(latency), **counts).order_by(*labels)
    return _histogram_counts(rows, labels=labels, buckets=buckets)


def _histogram(
    name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float], data: dict
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for key, (cumulative, count, total) in data.items():
        points = [(_le(b), float(c)) for b, c in zip(buckets, cumulative, strict=True)]
        family.add_metric(list(key), [*points, ("+Inf", float(count))], sum_value=total)
    return family


def _le(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{bound:.1f}"


def preread_latency() -> HistogramMetricFamily:
    """Seconds from a study's `received` to the end of its pre-read, every finished run
    (cumulative, as a histogram must be: rate() in Prometheus gives the recent ones)."""
    from preread.models import PreRead
    from studies.models import Status, StudyEvent

    # The last `received` before the run ended: a study sent again (returned, completed late) is
    # measured from the arrival its pre-read answered.
    received = StudyEvent.objects.filter(
        study=OuterRef("study_id"), to_status=Status.RECEIVED, at__lte=OuterRef("finished_at")
    ).order_by("-at")
    runs = (
        PreRead.objects.filter(finished_at__isnull=False)
        .annotate(received_at=Subquery(received.values("at")[:1]))
        .filter(received_at__isnull=False)
        .annotate(latency=_seconds(F("finished_at") - F("received_at")))
    )
    data = _aggregate_histogram(runs, "latency", ["status"], PREREAD_BUCKETS)
    return _histogram(
        "joliba_preread_latency_seconds",
        "Seconds from a study received (complete) to its AI pre-read finished, by outcome",
        ["status"],
        PREREAD_BUCKETS,
        data,
    )


def alert_ack_seconds() -> HistogramMetricFamily:
    """Seconds from an alert sent to its acknowledgement, by category and channel."""
    from alerts.models import Alert

    acked = Alert.objects.filter(sent_at__isnull=False, acked_at__gte=F("sent_at")).annotate(
        latency=_seconds(F("acked_at") - F("sent_at"))
    )
    labels = ["category", "channel"]
    data = _aggregate_histogram(acked, "latency", labels, ACK_BUCKETS)
    return _histogram(
        "joliba_alert_ack_seconds",
        "Seconds from an alert sent to its acknowledgement, by category and channel",
        labels,
        ACK_BUCKETS,
        data,
    )


def bytes_received() -> CounterMetricFamily:
    """Bytes each site brought in, every route (the daily-budget rows of ingest.quota)."""
    from accounts.models import Site
    from ingest.models import DailyUsage

    family = CounterMetricFamily(
        "joliba_site_received_bytes", "Bytes received from each site, every route together", labels=["site"]
    )
    totals = dict(DailyUsage.objects.values("site_id").annotate(b=Sum("bytes")).values_list("site_id", "b"))
    for pk, code in Site.objects.order_by("code").values_list("pk", "code"):
        family.add_metric([code], float(totals.get(pk) or 0))
    return family


def sla_breaches(now: datetime | None = None) -> GaugeMetricFamily:
    """Open cases (received, queued, in reading) waiting longer than their priority's SLA."""
    from alerts.sla import sla_minutes
    from studies.models import Priority, Status, Study

    now = now or timezone.now()
    waiting = Study.objects.filter(status__in=[Status.RECEIVED, Status.QUEUED, Status.IN_READING]).annotate(
        since=Coalesce(F("waiting_since"), F("created_at"))
    )
    family = GaugeMetricFamily(
        "joliba_sla_breaches", "Open cases waiting past their priority's reading SLA", labels=["priority"]
    )
    for priority in Priority.values:
        late = now - timedelta(minutes=sla_minutes(priority))
        family.add_metric([priority], float(waiting.filter(priority=priority, since__lt=late).count()))
    return family


def studies_by_status() -> GaugeMetricFamily:
    from studies.models import Status, Study

    family = GaugeMetricFamily("joliba_studies", "Studies by lifecycle status", labels=["status"])
    counts = dict(Study.objects.values("status").annotate(n=Count("pk")).values_list("status", "n"))
    for status in Status.values:
        family.add_metric([status], float(counts.get(status, 0)))
    return family


class PlatformCollector(Collector):
    """Collected at each scrape; one part failing (the broker down) leaves the others, and says so
    in joliba_metrics_up{part=…}."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "joliba_metrics_up", "Whether each part of these metrics could be read", labels=["part"]
        )
        parts = {
            "preread": preread_latency,
            "alerts": alert_ack_seconds,
            "bytes": bytes_received,
            "sla": sla_breaches,
            "studies": studies_by_status,
        }
        for part, build in parts.items():
            try:
                yield build()
                up.add_metric([part], 1.0)
            except Exception:  # noqa: BLE001 — one broken part must not hide the others
                log.exception("metrics: %s could not be read", part)
                up.add_metric([part], 0.0)
        depth = GaugeMetricFamily(
            "joliba_queue_messages",
            "Messages waiting in each Celery queue (from the broker)",
            labels=["queue"],
        )
        try:
            for queue, count in queue_depths(celery_queues()).items():
                depth.add_metric([queue], float(count))
            up.add_metric(["broker"], 1.0)
        except Exception as error:  # noqa: BLE001
            log.warning("metrics: queue depths unavailable: %s", type(error).__name__)
            up.add_metric(["broker"], 0.0)
        yield depth
        yield up


def orthanc_metrics() -> bytes:
    """Orthanc's own exposition (/tools/metrics-prometheus), appended to the platform's: one scrape
    job, and Orthanc stays on loopback. Empty (and joliba_metrics_up{part="orthanc"} 0) when the
    archive does not answer within the health timeout."""
    import requests

    answer = requests.get(
        f"{settings.ORTHANC_URL.rstrip('/')}/tools/metrics-prometheus",
        auth=(settings.ORTHANC_USERNAME, settings.ORTHANC_PASSWORD),
        timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS,
    )
    answer.raise_for_status()
    return answer.content


def registry() -> CollectorRegistry:
    """The platform's collector, plus django-prometheus's metrics: every process's (the files of
    PROMETHEUS_MULTIPROC_DIR) when set, else this process's own."""
    import os

    from prometheus_client import REGISTRY, multiprocess

    merged = CollectorRegistry(auto_describe=False)
    merged.register(PlatformCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(merged)
        return merged
    return _Chain(merged, REGISTRY)


class _Chain(CollectorRegistry):
    """Two registries read as one (the process's default registry and the platform's)."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        super().__init__(auto_describe=False)
        self._parts = registries

    def collect(self) -> Iterator[Metric]:
        for part in self._parts:
            yield from part.collect()


def exposition() -> bytes:
    from prometheus_client import generate_latest

    text = generate_latest(registry())
    if not settings.METRICS_INCLUDE_ORTHANC:
        return text
    try:
        theirs = orthanc_metrics()
        up = 1
    except Exception as error:  # noqa: BLE001 — the archive down: the platform's figures still go out
        log.warning("metrics: Orthanc's metrics unavailable: %s", type(error).__name__)
        theirs, up = b"", 0
    gauge = (
        b"# HELP joliba_orthanc_metrics_up Whether Orthanc's own metrics could be read\n"
        b"# TYPE joliba_orthanc_metrics_up gauge\n"
        b"joliba_orthanc_metrics_up %d\n" % up
    )
    return text + gauge + _only_samples(theirs)


def _only_samples(text: bytes) -> bytes:
    """Orthanc's lines, each ending in a newline (its answer may not end with one)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return b"".join(line + b"\n" for line in lines)
