"""The last-alive times the health checks read: one row per Celery worker (its hostname) and one
for beat. Written by the processes themselves, so a killed process stops writing."""

from django.db import models


class Heartbeat(models.Model):
    name = models.CharField(max_length=200, primary_key=True)  # "worker:<hostname>" or "beat"
    at = models.DateTimeField()
    queues = models.CharField(max_length=500, blank=True)  # a worker's queues, comma-separated

    def __str__(self) -> str:
        return f"{self.name} @ {self.at:%Y-%m-%d %H:%M:%S}"
