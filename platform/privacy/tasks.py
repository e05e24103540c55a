from __future__ import annotations

import logging

from celery import shared_task

from orthanc.client import OrthancError
from studies.archive import get_archive
from studies.models import Instance, Study

from .burned_in import may_carry_burned_in

log = logging.getLogger(__name__)


@shared_task
def check_burned_in(instance_id: int) -> bool:
    """Read the instance's header from the archive and flag its study if it may carry
    burned-in annotations. Returns whether the study is flagged after the check."""
    instance = Instance.objects.filter(pk=instance_id).select_related("study").first()
    if instance is None:
        return False
    if instance.study.may_have_burned_in:
        return True
    try:
        tags = get_archive().instance_tags(instance.orthanc_id)
    except OrthancError as exc:
        log.warning("burned-in check: archive unreachable for instance %s (%s)", instance_id, exc)
        return False
    if may_carry_burned_in(tags):
        Study.objects.filter(pk=instance.study_id).update(may_have_burned_in=True)
        return True
    return False


@shared_task
def purge_retention() -> dict[str, int]:
    """Periodic (beat): delete what the deployment's retention rules say is due."""
    from .retention import purge

    return purge()
