"""Is this image what the model was made for? Modality, body part, view and patient population.

Missing header values do not refuse (many real CRs lack BodyPartExamined or PatientAge): they
add a warning instead, so the radiologist knows the model could not check.
"""

from __future__ import annotations

from datetime import date

from pydicom.dataset import Dataset

from inference.model_spec import Population, Scope
from inference.reasons import Reason, Refused, refuse

RADIOGRAPHY = ("CR", "DX", "RG", "DR")


def check_scope(ds: Dataset, scope: Scope) -> list[Reason]:
    """Raise `Refused` if the image is outside the model's scope; return warnings otherwise."""
    warnings: list[Reason] = []
    species = str(ds.get("PatientSpeciesDescription", "") or "").strip()
    if species and species.lower() not in ("human", "homo sapiens", "humain"):
        raise refuse(
            "not_human",
            f"Examen vétérinaire ({species}) : le modèle est prévu pour des patients humains.",
            f"Veterinary study ({species}): the model is meant for human patients.",
        )
    modality = str(ds.get("Modality", "") or "").upper()
    if not modality:
        warnings.append(
            Reason(
                "modality_unknown",
                "Modalité non renseignée dans l'en-tête.",
                "Modality missing from the header.",
            )
        )
    elif modality not in scope.modalities:
        kind = "radiographie" if modality in RADIOGRAPHY else "pas une radiographie"
        kind_en = "radiograph" if modality in RADIOGRAPHY else "not a radiograph"
        raise refuse(
            "wrong_modality",
            f"Modalité {modality} ({kind}) hors du champ du modèle ({', '.join(scope.modalities)}).",
            f"Modality {modality} ({kind_en}) is outside the model's scope ({', '.join(scope.modalities)}).",
        )
    if scope.body_parts:
        part = str(ds.get("BodyPartExamined", "") or "").upper()
        if not part:
            warnings.append(
                Reason(
                    "body_part_unknown",
                    "Région anatomique non renseignée : vérifiez qu'il s'agit bien d'un "
                    f"{'/'.join(scope.body_parts).lower()}.",
                    f"Body part not stated: check that this is a {'/'.join(scope.body_parts).lower()}.",
                )
            )
        elif part not in scope.body_parts:
            raise refuse(
                "wrong_body_part",
                f"Région {part} hors du champ du modèle ({', '.join(scope.body_parts)}).",
                f"Body part {part} is outside the model's scope ({', '.join(scope.body_parts)}).",
            )
    if scope.views:
        view = str(ds.get("ViewPosition", "") or "").upper()
        if view and view not in scope.views:
            raise refuse(
                "wrong_view",
                f"Incidence {view} hors du champ du modèle ({', '.join(scope.views)}).",
                f"View {view} is outside the model's scope ({', '.join(scope.views)}).",
            )
    warnings.extend(check_population(ds, scope.population))
    return warnings


def patient_age_years(ds: Dataset) -> float | None:
    """Age from PatientAge ('005Y', '018M', '003W', '010D'), else birth date and study date."""
    age = str(ds.get("PatientAge", "") or "").strip().upper()
    units = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}
    if len(age) >= 2 and age[:-1].isdigit() and age[-1] in units:
        return int(age[:-1]) * units[age[-1]]
    birth = _date(ds.get("PatientBirthDate"))
    seen = _date(ds.get("StudyDate")) or _date(ds.get("AcquisitionDate"))
    if birth and seen and seen >= birth:
        return (seen - birth).days / 365.25
    return None


def check_population(ds: Dataset, population: Population) -> list[Reason]:
    if population.min_age_years is None and population.max_age_years is None:
        return []
    who_fr = population.description_fr or "la population prévue"
    who_en = population.description_en or "the intended population"
    age = patient_age_years(ds)
    if age is None:
        return [
            Reason(
                "age_unknown",
                f"Âge du patient inconnu : le modèle est prévu pour {who_fr} ; résultat à "
                "interpréter avec prudence.",
                f"Patient age unknown: the model is meant for {who_en}; interpret with care.",
            )
        ]
    low = population.min_age_years
    high = population.max_age_years
    if (low is not None and age < low) or (high is not None and age > high):
        reason = Reason(
            "outside_population",
            f"Patient de {age:.1f} ans, hors de la population prévue du modèle ({who_fr}).",
            f"Patient aged {age:.1f} years, outside the model's intended population ({who_en}).",
        )
        if population.outside == "refuse":
            raise Refused(reason)
        return [reason]
    return []


def _date(value: object) -> date | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
