"""What the centre says about what a site sent: the one catalogue of verdict codes.

The database, the checker child and the tus endpoint carry a code and its parameters, never a
sentence; the sentence is rendered here when it is shown (page, API, tus answer), in the
language of whoever reads it. A code means one thing everywhere: the same code for the same
situation, whichever route a file took.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models
from django.utils.translation import gettext_lazy as _

from inference.pixel_codes import PixelCode

from .dicom_check import FileCode
from .jpegxl_restore import JpegXLCode


class Outcome(models.TextChoices):
    """What became of a file (FileVerdict) or of a transfer (all its files)."""

    STORED = "stored", _("Accepté")
    DUPLICATE = "duplicate", _("Déjà reçu (doublon ignoré)")
    REFUSED = "refused", _("Refusé")
    MIXED = "mixed", _("Accepté en partie")  # a transfer only: a bundle whose files differ


FILE_OUTCOMES = [(value, label) for value, label in Outcome.choices if value != Outcome.MIXED]


class Code:
    """Codes decided by the platform (the checker's are dicom_check.FileCode and PixelCode)."""

    DUPLICATE = "duplicate"
    OTHER_SITE = "other_site"
    STUDY_CLOSED = "study_closed"
    SOP_UID_CONFLICT = "sop_uid_conflict"
    ARCHIVE_REJECTED = "archive_rejected"
    ARCHIVE_UNAVAILABLE = "archive_unavailable"
    FILE_TOO_LARGE = "file_too_large"
    EMPTY = "empty"
    UNPROCESSABLE = "unprocessable"
    # A site agent's preview (uploads.previews): kept apart from the study's images.
    PREVIEW_KEPT = "preview_kept"
    PREVIEW_TOO_LARGE = "preview_too_large"
    PREVIEW_OTHER_STUDY = "preview_other_study"


# Accepted files need no sentence unless something was done to them.
SILENT = {FileCode.OK}

MESSAGES: dict[str, object] = {
    # Accepted.
    FileCode.FILE_META_ADDED: _("Accepté ; en-tête DICOM (File Meta) ajouté."),
    Code.DUPLICATE: _("Déjà reçu : ce fichier n'a pas été stocké deux fois."),
    Code.PREVIEW_KEPT: _(
        "Aperçu reçu : il sert à la pré-lecture provisoire et ne fait pas partie des images de l'examen."
    ),
    Code.PREVIEW_TOO_LARGE: _("Aperçu trop volumineux (plus de %(limit_kb)s ko) : ignoré, l'examen suit."),
    Code.PREVIEW_OTHER_STUDY: _("Cet aperçu n'est pas celui de l'examen annoncé : ignoré."),
    # What the checker finds in the file.
    Code.EMPTY: _("Fichier vide : renvoyez-le."),
    Code.FILE_TOO_LARGE: _("Fichier trop volumineux (plus de %(limit_mb)s Mo)."),
    FileCode.TOO_SMALL: _("Fichier trop petit pour être un fichier DICOM."),
    FileCode.NOT_DICOM: _(
        "Ce n'est pas un fichier DICOM (texte, photo ou autre document) : envoyez les images de l'examen."
    ),
    FileCode.UNREADABLE: _("Fichier DICOM illisible (%(detail)s) : exportez-le à nouveau depuis l'appareil."),
    FileCode.TOO_DEEP: _("Structure DICOM imbriquée trop profondément."),
    FileCode.MISSING_UID: _(
        "Identifiant %(uid)s absent ou invalide : ce fichier ne peut être rangé dans aucun examen."
    ),
    FileCode.EXCEEDED_LIMITS: _("Fichier refusé : sa lecture dépasse les limites de mémoire ou de temps."),
    PixelCode.NO_PIXELS: _("Image sans données de pixels (fichier incomplet ?)."),
    PixelCode.NOT_IMAGE: _("Ce fichier DICOM ne contient pas d'image à lire."),
    PixelCode.BAD_PIXEL_DESCRIPTION: _("Description des pixels incomplète ou invalide (%(field)s)."),
    PixelCode.TOO_LARGE: _(
        "Image déclarée de %(rows)s×%(columns)s×%(frames)s : trop grande pour être vérifiée."
    ),
    PixelCode.TRUNCATED: _(
        "Fichier incomplet : ses données s'arrêtent avant la fin (envoi ou copie interrompus). Renvoyez-le."
    ),
    PixelCode.UNDECODABLE: _("Pixels illisibles (%(syntax)s) : %(detail)s"),
    PixelCode.UNSUPPORTED_CODEC: _(
        "Compression non prise en charge (%(transfer_syntax)s) : "
        "renvoyez l'examen sans compression ou en JPEG-LS."
    ),
    # A file the site sent as JPEG XL (ingest.jpegxl_restore): nothing of it is stored.
    JpegXLCode.CORRUPT: _(
        "Image JPEG XL altérée ou illisible (%(detail)s) : rien n'a été stocké. "
        "Renvoyez ce fichier depuis le poste du site."
    ),
    JpegXLCode.MISMATCH: _(
        "Image JPEG XL différente de ce qu'annonce son en-tête DICOM (%(field)s) : rien n'a été "
        "stocké. Renvoyez ce fichier depuis le poste du site."
    ),
    JpegXLCode.UNSUPPORTED: _(
        "Image JPEG XL d'un type que le centre ne prend pas (%(detail)s) : renvoyez l'examen "
        "sans JPEG XL (joliba-push --no-jpegxl)."
    ),
    # What the platform decides with what it already has.
    Code.OTHER_SITE: _("Cet examen a déjà été envoyé par un autre site."),
    Code.STUDY_CLOSED: _(
        "Cet examen a déjà un compte rendu signé : envoyez ces images comme un "
        "nouvel examen, ou appelez le centre."
    ),
    Code.SOP_UID_CONFLICT: _(
        "Identifiant d'image (SOP Instance UID) déjà utilisé par un autre "
        "examen : ce fichier n'a pas été stocké. Appelez le centre."
    ),
    Code.ARCHIVE_REJECTED: _(
        "L'archive refuse ce fichier (DICOM non conforme) : exportez-le à "
        "nouveau depuis l'appareil, ou appelez le centre."
    ),
    Code.ARCHIVE_UNAVAILABLE: _("L'archive n'a pas pu enregistrer ce fichier ; renvoyez-le."),
    Code.UNPROCESSABLE: _(
        "Le centre n'a pas pu traiter ce fichier : renvoyez-le, et appelez le centre si cela se répète."
    ),
    # Resumable transfers (uploads app): the file as a whole.
    "sha256_mismatch": _("Fichier altéré en route (empreinte SHA-256 différente) : renvoyez-le."),
    "photo_unreadable": _("Photo illisible : une photo JPEG ou PNG est attendue."),
    "photo_too_large": _("Photo trop grande : réduisez-la avant l'envoi."),
    "bundle_empty": _("Lot vide : aucun fichier à vérifier."),
    "bundle_too_many": _("Lot refusé : trop de fichiers (%(limit)s au plus)."),
    "bundle_bad_member": _("Lot refusé : contenu compressé inattendu."),
    "bundle_unreadable": _("Lot illisible : renvoyez-le."),
    "not_in_manifest": _(
        "Fichier du lot absent du manifeste de l'examen (empreinte SHA-256 "
        "inconnue) : il n'a pas été stocké. Renvoyez l'examen depuis le poste "
        "du site."
    ),
    # Refusals of a tus request (the HTTP status says how; the code says why).
    "unauthenticated": _("Identification requise."),
    "forbidden": _("Seul un technicien d'un site peut envoyer des examens."),
    "bad_metadata": _("Métadonnées d'envoi illisibles."),
    "defer_unsupported": _("La taille du fichier doit être connue."),
    "bad_length": _("Taille de fichier manquante ou invalide."),
    "bad_kind": _("Type d'envoi inconnu."),
    "unknown_manifest": _("Manifeste inconnu pour ce site."),
    "bad_manifest": _("Manifeste illisible."),
    "bad_sha256": _("Empreinte SHA-256 invalide."),
    "quota": _("Quota d'envoi du site atteint : attendez la fin des envois en cours."),
    "not_found": _("Envoi inconnu."),
    "gone": _("Envoi expiré, annulé ou perdu : recommencez ce fichier."),
    "not_receiving": _("Cet envoi est déjà reçu en entier : il ne peut plus être modifié ni annulé."),
    "offset_mismatch": _("Décalage inattendu : reprenez à la position du serveur."),
    "past_end": _("Données au-delà de la taille annoncée."),
    "checksum_mismatch": _("Somme de contrôle du bloc incorrecte : renvoyez-le."),
    "bad_content_type": _("Type de contenu attendu : application/offset+octet-stream."),
    "bad_offset": _("Position manquante."),
    "bad_checksum_algorithm": _("Algorithme de somme de contrôle non pris en charge."),
    "bad_checksum": _("Somme de contrôle illisible."),
    "method_not_allowed": _("Méthode non prise en charge."),
    # Limits (ingest.quota): the same codes on every route.
    "quota_wait": _(
        "Espace d'envoi du site plein pour l'instant : l'envoi reprendra quand les fichiers "
        "en cours auront été traités."
    ),
    "daily_budget": _("Volume d'envoi du jour atteint pour ce site (%(limit_mb)s Mo) : reprise demain."),
    "too_many_open": _(
        "Trop d'envois ouverts (%(limit)s au plus) : terminez ou annulez ceux en cours "
        "avant d'en commencer d'autres."
    ),
    "rate_limited": _("Trop de demandes en peu de temps : réessayez dans un instant."),
    "length_required": _("Taille de l'envoi manquante (en-tête Content-Length)."),
    "request_too_large": _(
        "Envoi trop volumineux (plus de %(limit_mb)s Mo en une fois) : envoyez l'examen en plusieurs fois."
    ),
    "bundle_too_large": _("Lot refusé : son contenu dépasse %(limit_mb)s Mo une fois dépaqueté."),
    "bundle_overlap": _("Lot refusé : plusieurs fichiers y partagent les mêmes données (archive piégée)."),
    "bundle_ratio": _("Lot refusé : son contenu annoncé est disproportionné par rapport à sa taille."),
    "bundle_nested": _("Fichier du lot refusé : une archive dans l'archive n'est pas acceptée."),
    "manifest_too_large": _("Manifeste trop volumineux (plus de %(limit_kb)s Ko)."),
    "manifest_not_utf8": _("Manifeste illisible : le texte doit être en UTF-8."),
    "manifest_not_object": _("Manifeste illisible : un objet JSON est attendu."),
    "manifest_bad_json": _("Manifeste illisible : JSON invalide ou trop imbriqué."),
    "manifest_bad_field": _("Manifeste refusé : le champ « %(field)s » est absent ou invalide."),
    "manifest_too_many": _("Manifeste refusé : trop d'images annoncées (%(limit)s au plus)."),
    "archive_daily_budget": _(
        "Image reçue par DICOM refusée : le volume du jour de ce site (%(limit_mb)s Mo) est atteint. "
        "Renvoyez-la demain depuis l'appareil."
    ),
}
UNKNOWN = _("Refusé (code %(code)s).")


class _Params(dict):
    """Parameters for a message; one a stored row lacks (older rows have none) shows as "…"."""

    def __missing__(self, key: str) -> str:
        return "…"


def describe(code: str, params: Mapping | None = None) -> str:
    """The sentence for `code` in the active language ("" for a plain acceptance)."""
    if code in SILENT or not code:
        return ""
    message = MESSAGES.get(code)
    if message is None:
        return str(UNKNOWN) % {"code": code}
    return str(message) % _Params(params or {})
