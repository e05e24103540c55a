from django.db.models import Prefetch, QuerySet

from studies.models import Study

from .models import ImageResult, PreRead


def current_preread(study: Study) -> PreRead | None:
    return study.prereads.filter(is_current=True).first()


def with_current_preread(studies: QuerySet[Study]) -> QuerySet[Study]:
    """Prefetch each study's current pre-read into `.current_prereads` (a list of 0 or 1)."""
    return studies.prefetch_related(
        Prefetch("prereads", queryset=PreRead.objects.filter(is_current=True), to_attr="current_prereads")
    )


def image_results_by_instance(preread: PreRead | None) -> dict[int, ImageResult]:
    if preread is None:
        return {}
    return {r.instance_id: r for r in preread.images.defer("heatmap_png")}


def preread_history(study: Study) -> QuerySet[PreRead]:
    return study.prereads.all()
