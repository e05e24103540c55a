"""Thin tasks: ids in, a service call, nothing else."""

from celery import shared_task

from .services import queue_missing, render_instance


@shared_task(acks_late=True)
def make_renditions(instance_id: int) -> None:
    render_instance(instance_id)


@shared_task(ignore_result=True)
def make_missing_renditions() -> None:
    """The beat's backfill: instances recorded before, or while no worker ran."""
    queue_missing()
