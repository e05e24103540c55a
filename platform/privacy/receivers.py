"""Listeners of other apps' signals."""

from __future__ import annotations

from django.db import transaction

from studies.models import Instance, Study

from .burned_in import MODALITIES


def on_instance_recorded(sender: object, *, instance_id: int, study_id: int, **_: object) -> None:
    """A new instance (after commit): flag its study at once when its modality says enough,
    else let a worker read its header from the archive (no network call in the request)."""
    from .tasks import check_burned_in

    row = Instance.objects.filter(pk=instance_id).values_list("modality", "study__may_have_burned_in").first()
    if row is None:  # gone since: the study's flag alone says whether a check is owed
        modality, flagged = None, Study.objects.filter(pk=study_id, may_have_burned_in=True).exists()
    else:
        modality, flagged = row
    if flagged:
        return
    if modality is not None and modality.upper() in MODALITIES:
        Study.objects.filter(pk=study_id).update(may_have_burned_in=True)
        return
    transaction.on_commit(lambda: check_burned_in.delay(instance_id))
