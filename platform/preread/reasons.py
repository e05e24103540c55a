"""The sentences behind the pre-read's codes, in French first, translated by the .po files.

The inference library returns codes with parameters (inference.reasons); the platform stores
those and renders the sentence here, at display time, in the reader's language. Every code the
library can emit has its sentence here (tests/test_preread_reasons.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

MESSAGES: dict[str, Promise] = {
    "unreadable": _("Fichier DICOM illisible (%(error)s)."),
    "no_pixels": _(
        "Le fichier ne contient pas d'image (pas de données de pixels, ou transfert "
        "interrompu) : renvoyez l'examen."
    ),
    "not_image": _("Ce fichier DICOM ne contient pas d'image à lire."),
    "bad_pixel_description": _(
        "Description de l'image incomplète ou invalide (lignes, colonnes, "
        "bits alloués ou échantillons par pixel)."
    ),
    "too_large": _(
        "Image trop grande (%(columns)s×%(rows)s, %(frames)s trame(s) ; limite "
        "%(max_pixels)s pixels) : refusée sans être décodée."
    ),
    "truncated": _(
        "Données d'image tronquées (%(actual_bytes)s octets sur %(expected_bytes)s) : "
        "transfert interrompu ? Renvoyez l'examen."
    ),
    "unsupported_codec": _("Compression non prise en charge (%(transfer_syntax)s)."),
    "undecodable": _("L'image n'a pas pu être décodée (%(transfer_syntax)s, %(error)s) : fichier abîmé ?"),
    "multi_frame": _("Image multi-trame (%(frames)s trames) : ce n'est pas une radiographie simple."),
    "not_greyscale": _(
        "Interprétation photométrique « %(photometric)s » : ce n'est pas une radiographie en niveaux de gris."
    ),
    "not_human": _("Examen vétérinaire (%(species)s) : le modèle est prévu pour des patients humains."),
    "modality_unknown": _("Modalité absente de l'en-tête : le modèle n'a pas pu la vérifier."),
    "wrong_modality": _("Modalité %(modality)s hors du champ du modèle (%(allowed)s)."),
    "body_part_unknown": _(
        "Région anatomique non indiquée dans l'en-tête : vérifiez que l'image "
        "est de celles prévues pour le modèle (%(allowed)s)."
    ),
    "wrong_body_part": _("Région %(body_part)s hors du champ du modèle (%(allowed)s)."),
    "wrong_view": _("Incidence %(view)s hors du champ du modèle (%(allowed)s)."),
    "age_unknown": _(
        "Âge du patient inconnu : le modèle %(model)s est prévu pour des patients de "
        "%(age_range)s ans, et l'image ne porte pas d'âge (âge, ou dates de naissance "
        "et d'examen)."
    ),
    "outside_population": _(
        "Patient de %(age_years)s ans, hors de la population prévue du modèle %(model)s (%(age_range)s ans)."
    ),
    "blank_image": _("Image vide ou quasi uniforme : rien à lire."),
    "colour_image": _(
        "Image en couleur (%(photometric)s) : une radiographie est en niveaux de gris (film photographié ?)."
    ),
    "tiny_matrix": _(
        "Image très petite (%(columns)s×%(rows)s pixels) : les détails fins ne sont pas lisibles."
    ),
    "clipped": _("%(percent)s %% des pixels saturés : zones brûlées, détails perdus."),
    "underexposed_or_dark": _("Image très sombre (film surexposé ou fenêtre inadaptée)."),
    "overexposed_or_light": _(
        "Image très claire (sous-exposée, ou interprétation photométrique inversée ?)."
    ),
    "window_ignored": _(
        "La fenêtre de l'en-tête (centre %(centre)s, largeur %(width)s) couvre "
        "%(coverage_percent)s %% des pixels : image affichée avec un étirement de "
        "ses propres valeurs."
    ),
    "no_model": _("Aucun modèle d'IA n'est activé pour cet examen."),
    "model_failed": _("Le modèle n'a pas pu analyser l'image (%(error)s)."),
    "invalid_manifest": _("Description du modèle invalide (manifest.json) : %(error)s."),
    "hash_mismatch": _(
        "Le fichier du modèle ne correspond pas à sa description (sha256 %(actual)s… "
        "au lieu de %(expected)s…) : modèle refusé."
    ),
    # The platform's own codes, around the library.
    "archive_unavailable": _("Image non disponible dans l'archive."),
    "internal_error": _("Erreur interne de la pré-lecture (%(error)s)."),
    "no_model_for_study": _("Aucun modèle d'IA pour cet examen (%(modality)s)."),
}


def render(code: str, params: Mapping[str, Any] | None = None) -> str:
    """The sentence for a code, in the active language; an unknown code is shown as itself."""
    template = MESSAGES.get(code)
    if template is None:
        return code
    try:
        return str(template) % dict(params or {})
    except (KeyError, TypeError, ValueError):  # a parameter missing: still say something useful
        return str(template).split("(")[0].strip()
