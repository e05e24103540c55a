from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.models import Site
from studies import access

from . import exports, patient_export


@login_required
@require_http_methods(["GET", "POST"])
def deidentify_study(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The de-identified ZIP of a study (teaching, research): admins and its readers."""
    study = access.get_study_for_user(request.user, pk)
    if not access.may_deidentify(request.user, study):
        raise Http404
    error = ""
    if request.method == "POST":
        confirmed = request.POST.get("confirm_burned_in") == "1"
        try:
            export = exports.export_study(study, request=request, confirm_burned_in=confirmed)
        except exports.BurnedInRefused:
            error = _(
                "Cet examen peut porter des annotations incrustées dans l'image (nom, date) que la "
                "dé-identification ne retire pas : regardez les images, puis confirmez."
            )
        except exports.ArchiveUnavailable:
            error = _("L'archive d'images ne répond pas : réessayez dans un moment.")
        else:
            response = FileResponse(
                export.path.open("rb"), as_attachment=True, filename=f"joliba-deid-{study.pk}.zip"
            )
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request, "privacy/deidentify.html", {"study": study, "error": error}, status=409 if error else 200
    )


@login_required
@require_http_methods(["GET", "POST"])
def export_patient(request: HttpRequest) -> HttpResponse:
    """Everything held about one patient, as a ZIP: admins only (others: 404)."""
    if not access.may_export_patient(request.user):
        raise Http404
    error = ""
    if request.method == "POST":
        patient_id = request.POST.get("patient_id", "").strip()
        site = request.POST.get("site", "").strip()
        site_id = int(site) if site.isdigit() else None
        if not patient_id:
            error = _("Indiquez l'identifiant du patient.")
        elif not patient_export.studies_of(patient_id, site_id).exists():
            error = _("Aucun examen pour cet identifiant.")
        else:
            data, _count = patient_export.export_patient(patient_id, site_id=site_id, request=request)
            response = HttpResponse(data, content_type="application/zip")
            response["Content-Disposition"] = 'attachment; filename="joliba-patient-export.zip"'
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request,
        "privacy/patient_export.html",
        {"sites": Site.objects.order_by("name"), "error": error},
        status=400 if error else 200,
    )
