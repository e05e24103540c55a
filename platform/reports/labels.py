"""The words of the report document itself, in the report's language (chosen per report, not by
the reader's interface language): headings, the signature line, the version line."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Compte rendu d'imagerie",
        "indication": "Indication",
        "technique": "Technique",
        "findings": "Résultats",
        "conclusion": "Conclusion",
        "addendum": "Addendum",
        "patient": "Patient",
        "born": "né(e) le",
        "age": "ans",
        "sex": "sexe",
        "id": "ID",
        "exam": "Examen",
        "of": "du",
        "case": "Dossier",
        "accession": "N° d'accès",
        "signed_by": "Signé par",
        "on": "le",
        "critical": "Résultat critique",
        "version": "Version",
        "original": "original",
        "amendment": "rectificatif",
        "addendum_kind": "addendum",
        "reason": "motif",
        "history": "Historique",
        "phone": "Tél.",
        "key_image": "Image clé",
        "turnaround": "Délai de lecture",
        "radiologist": "Médecin radiologue",
        "on_lossy_images": "Signé sur des images comprimées avec perte (compression irréversible).",
    },
    "en": {
        "title": "Imaging report",
        "indication": "Indication",
        "technique": "Technique",
        "findings": "Findings",
        "conclusion": "Conclusion",
        "addendum": "Addendum",
        "patient": "Patient",
        "born": "born",
        "age": "years",
        "sex": "sex",
        "id": "ID",
        "exam": "Exam",
        "of": "of",
        "case": "Case",
        "accession": "Accession no.",
        "signed_by": "Signed by",
        "on": "on",
        "critical": "Critical finding",
        "version": "Version",
        "original": "original",
        "amendment": "amendment",
        "addendum_kind": "addendum",
        "reason": "reason",
        "history": "History",
        "phone": "Phone",
        "key_image": "Key image",
        "turnaround": "Turnaround",
        "radiologist": "Radiologist",
        "on_lossy_images": "Signed on images with lossy (irreversible) compression.",
    },
}

CRITICAL = {
    "fr": {
        "immediate": "immédiat — à communiquer en quelques minutes",
        "urgent": "urgent — à communiquer en quelques heures",
        "significant": "significatif inattendu — à communiquer en quelques jours",
    },
    "en": {
        "immediate": "immediate — to be communicated within minutes",
        "urgent": "urgent — to be communicated within hours",
        "significant": "significant unexpected — to be communicated within days",
    },
}

AI_NOTE = {
    "fr": {
        "ai": "Texte proposé par l'IA ({model}), non modifié — IA acceptée par Dr {who}",
        "ai-edited": "Texte proposé par l'IA ({model}), modifié — IA acceptée par Dr {who}",
    },
    "en": {
        "ai": "Text proposed by AI ({model}), unedited — AI accepted by Dr {who}",
        "ai-edited": "Text proposed by AI ({model}), edited — AI accepted by Dr {who}",
    },
}


def words(language: str) -> dict[str, str]:
    return LABELS["en" if language == "en" else "fr"]


def duration(seconds: float, language: str = "fr") -> str:
    """« 2 h 05 min », « 14 min », « 3 j 4 h »."""
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    d = "d" if language == "en" else "j"
    if days:
        return f"{days} {d} {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"
