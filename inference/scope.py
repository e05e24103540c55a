"""Is this image what the model was made for? Modality, body part, view and patient population.

Missing header values do not refuse (many real CRs lack BodyPartExamined or PatientAge): they
add a warning instead, so the radiologist knows the model could not check.
"""

from __future__ import annotations

from datetime import date

from pydicom.dataset import Dataset

from inference.model_spec import ModelSpec, Population
from inference.reasons import Reason, Refused, refuse


def check_scope(ds: Dataset, spec: ModelSpec) -> list[Reason]:
    """Raise `Refused` if the image is outside the model's scope; return warnings otherwise."""
    scope = spec.scope
    warnings: list[Reason] = []
    species = str(ds.get("PatientSpeciesDescription", "") or "").strip()
    if species and species.lower() not in ("human", "homo sapiens", "humain"):
        raise refuse("not_human", species=species)
    modality = str(ds.get("Modality", "") or "").upper()
    if not modality:
        warnings.append(Reason("modality_unknown"))
    elif modality not in scope.modalities:
        raise refuse("wrong_modality", modality=modality, allowed=", ".join(scope.modalities))
    if scope.body_parts:
        part = str(ds.get("BodyPartExamined", "") or "").upper()
        if not part:
            warnings.append(Reason("body_part_unknown", {"allowed": ", ".join(scope.body_parts)}))
        elif part not in scope.body_parts:
            raise refuse("wrong_body_part", body_part=part, allowed=", ".join(scope.body_parts))
    if scope.views:
        view = str(ds.get("ViewPosition", "") or "").upper()
        if view and view not in scope.views:
            raise refuse("wrong_view", view=view, allowed=", ".join(scope.views))
    warnings.extend(check_population(ds, scope.population, model=spec.name))
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


def check_population(ds: Dataset, population: Population, *, model: str = "") -> list[Reason]:
    if not population.restricted:
        return []
    age = patient_age_years(ds)
    if age is None:
        return [Reason("age_unknown", {"model": model, "age_range": population.age_range})]
    low = population.min_age_years
    high = population.max_age_years
    if (low is not None and age < low) or (high is not None and age > high):
        reason = Reason(
            "outside_population",
            {"model": model, "age_years": round(age, 1), "age_range": population.age_range},
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
