"""What an alert says, per kind and language: French first, English second.

Kept here rather than in the .po file on purpose: an SMS must fit 160 GSM-7 characters in each
language, and tests check every text (tests/test_alerts_messages.py); a translation edited
elsewhere could silently make it two or three SMS. Texts carry a case code and a link, never a
patient's name; the AI's flags are marked as not validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .gsm import encode_for_sms, shorten_to_one_sms

# {kind: {lang: (sms head, email subject, email lead paragraph)}}; the SMS tail (reply, link) is added.
TEXTS: dict[str, dict[str, tuple[str, str, str]]] = {
    "ai_critical": {
        "fr": (
            "CRITIQUE {code}: l'IA signale {flags} (non validé), examen {modality} de {site}.",
            "[Joliba] CRITIQUE {code} : signal de l'IA à vérifier",
            "La pré-lecture IA signale {flags} sur l'examen {code} ({modality}, site {site}). "
            "Ce signal n'est pas validé par un radiologue : lisez l'examen en priorité.",
        ),
        "en": (
            "CRITICAL {code}: AI flags {flags} (not validated), {modality} study from {site}.",
            "[Joliba] CRITICAL {code}: AI flag to check",
            "The AI pre-read flags {flags} on study {code} ({modality}, site {site}). "
            "No radiologist has validated this flag: read the study first.",
        ),
    },
    "stat_arrived": {
        "fr": (
            "STAT {code}: examen {modality} de {site} arrivé, à lire en extrême urgence.",
            "[Joliba] STAT {code} : examen à lire en extrême urgence",
            "Un examen {modality} en extrême urgence (STAT) arrive du site {site} : {code}.",
        ),
        "en": (
            "STAT {code}: {modality} study from {site} arrived, to read now.",
            "[Joliba] STAT {code}: study to read now",
            "A STAT {modality} study is arriving from site {site}: {code}.",
        ),
    },
    "sla_breach": {
        "fr": (
            "DELAI {code}: examen {modality} de {site} non pris, délai dépassé dans {minutes} min.",
            "[Joliba] {code} : délai de lecture bientôt dépassé",
            "Personne n'a pris l'examen {code} ({modality}, site {site}) ; son délai de lecture "
            "est dépassé dans {minutes} minutes.",
        ),
        "en": (
            "SLA {code}: {modality} study from {site} unclaimed, breach in {minutes} min.",
            "[Joliba] {code}: reading deadline about to pass",
            "Nobody has claimed study {code} ({modality}, site {site}); its reading deadline "
            "passes in {minutes} minutes.",
        ),
    },
    "critical_finding": {
        "fr": (
            "RESULTAT CRITIQUE {code} ({acr}): compte rendu signé, à lire maintenant.",
            "[Joliba] Résultat critique {code} ({acr})",
            "Le compte rendu signé de l'examen {code} contient un résultat critique ({acr}). "
            "Lisez-le maintenant et prenez en charge le patient.",
        ),
        "en": (
            "CRITICAL RESULT {code} ({acr}): signed report, read it now.",
            "[Joliba] Critical result {code} ({acr})",
            "The signed report of study {code} holds a critical result ({acr}). "
            "Read it now and take care of the patient.",
        ),
    },
    "returned": {
        "fr": (
            "{code}: images non diagnostiques ({reason}). Merci de refaire l'examen.",
            "[Joliba] {code} : examen à refaire",
            "Le radiologue a renvoyé l'examen {code} : images non diagnostiques ({reason}). "
            "Merci de refaire l'examen et de l'envoyer à nouveau.",
        ),
        "en": (
            "{code}: images not diagnostic ({reason}). Please repeat the study.",
            "[Joliba] {code}: study to repeat",
            "The radiologist returned study {code}: images not diagnostic ({reason}). "
            "Please repeat the study and send it again.",
        ),
    },
    "report_ready": {
        "fr": (
            "{code}: compte rendu disponible.",
            "[Joliba] {code} : compte rendu disponible",
            "Le compte rendu de l'examen {code} est signé et disponible.",
        ),
        "en": (
            "{code}: report available.",
            "[Joliba] {code}: report available",
            "The report of study {code} is signed and available.",
        ),
    },
    "phone_confirmation": {
        "fr": (
            "Joliba: votre code de confirmation est {otp}.",
            "[Joliba] Code de confirmation",
            "Votre code de confirmation est {otp}.",
        ),
        "en": (
            "Joliba: your confirmation code is {otp}.",
            "[Joliba] Confirmation code",
            "Your confirmation code is {otp}.",
        ),
    },
}

ACK_TAIL = {"fr": " OK {code} ou {link}", "en": " OK {code} or {link}"}
ACK_LEAD = {
    "fr": "Accusez réception en répondant « OK {code} » par SMS ou par ce lien : {link}",
    "en": "Acknowledge by replying “OK {code}” by SMS or with this link: {link}",
}
OPEN_LEAD = {"fr": "Ouvrir : {link}", "en": "Open: {link}"}
ESCALATION = {"fr": "RELANCE ", "en": "REMINDER "}
ACR = {
    "fr": {"immediate": "immédiat", "urgent": "urgent", "significant": "inattendu significatif"},
    "en": {"immediate": "immediate", "urgent": "urgent", "significant": "significant unexpected"},
}


@dataclass(frozen=True)
class Rendered:
    sms: str
    encoding: str  # gsm7 | ucs2
    subject: str
    lead: str
    action: str


def _lang(language: str) -> str:
    return "en" if language.startswith("en") else "fr"


def render(
    *, kind: str, language: str, params: dict[str, Any], link: str, needs_ack: bool, step: int
) -> Rendered:
    """The SMS and email texts of one alert in one language."""
    lang = _lang(language)
    head, subject, lead = TEXTS[kind][lang]
    values = {k: _value(k, v, lang) for k, v in params.items()}
    values.setdefault("code", "")
    values["link"] = link
    prefix = ESCALATION[lang] if step else ""
    sms_head = prefix + head.format_map(_Missing(values))
    if needs_ack:
        tail = ACK_TAIL[lang].format_map(_Missing(values))
        action = ACK_LEAD[lang].format_map(_Missing(values))
    else:
        tail = f" {link}" if link else ""
        action = OPEN_LEAD[lang].format_map(_Missing(values)) if link else ""
    text, encoding = encode_for_sms(sms_head)
    if encoding == "gsm7":
        text = shorten_to_one_sms(text, encode_for_sms(tail)[0])
    else:
        text += tail
    return Rendered(
        sms=text,
        encoding=encoding,
        subject=prefix + subject.format_map(_Missing(values)),
        lead=lead.format_map(_Missing(values)),
        action=action,
    )


def _value(key: str, value: Any, lang: str) -> str:
    if key == "flags" and isinstance(value, list):  # [{"fr": ..., "en": ...}, ...]
        return ", ".join(
            str(v.get(lang) or v.get("fr") or "") if isinstance(v, dict) else str(v) for v in value
        )
    if key == "acr":
        return ACR[lang].get(str(value), str(value))
    if key == "reason" and isinstance(value, dict):
        return str(value.get(lang) or value.get("fr") or "")
    return str(value)


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"
