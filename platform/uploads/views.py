"""The technician's resumable upload page. The bytes go to the tus endpoint (tus.py);
this only renders the page, which falls back to the classic form without JavaScript."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie

from studies.access import may_send_for_site
from studies.models import Priority

from . import transfers


def _text() -> dict[str, str]:
    """What the script says, translated here so the page needs no JavaScript catalogue."""
    return {
        "no_files": _("Choisissez au moins un fichier."),
        "no_name": _("Le nom du patient est nécessaire pour une photo."),
        "waiting": _("En attente"),
        "hashing": _("Calcul de l'empreinte…"),
        "sending": _("Envoi"),
        "retrying": _("Liaison coupée : nouvel essai…"),
        "link_down": _("Liaison coupée : l'envoi reprendra tout seul dès le retour du réseau."),
        "checking": _("Reçu, vérification au centre…"),
        "stored": _("Accepté"),
        "duplicate": _("Déjà reçu (doublon ignoré)"),
        "refused": _("Refusé"),
        "mixed": _("Accepté en partie"),
        "study_waiting": _("Examen en cours de réception au centre…"),
        "study_ready": _("Examen reçu au centre :"),
        "study_open": _("voir l'examen"),
        "resumed": _("Reprise de l'envoi interrompu."),
        # crypto.subtle exists only in secure contexts (https, localhost): a plain-http site sends unhashed.
        "no_hash": _(
            "Empreinte SHA-256 indisponible (connexion non sécurisée) : "
            "fichiers envoyés sans contrôle d'intégrité de bout en bout."
        ),
        "files": _("fichier(s)"),
        "forget": _("Abandonner"),
        "started": _("commencé le"),
    }


@login_required
@ensure_csrf_cookie
def send_page(request: HttpRequest) -> HttpResponse:
    if not may_send_for_site(request.user):
        raise PermissionDenied
    return render(
        request,
        "uploads/send.html",
        {
            "priorities": Priority.choices,
            "chunk_size": settings.UPLOADS_PAGE_CHUNK_BYTES,
            "max_bytes": transfers.max_upload_bytes(),
            "text": _text(),
        },
    )
