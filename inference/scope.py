"""Is this image what the model was made for? Modality, body part, view and patient population.

Missing modality or body part do not refuse (many real CRs lack BodyPartExamined): they add a
warning, so the radiologist knows the model could not check. A missing age does refuse when the
model is restricted to an age group (a paediatric model must not score an adult it cannot tell
from a child), unless the deployment opted in for that model (`allow_unknown_age`); then it is
scored with an age_unknown warning.
"""

from __future__ import annotations

from datetime import date

from pydicom.dataset import Dataset

from inference.model_spec import ModelSpec, Population
from inference.reasons import Reason, Refused, refuse


def check_scope(ds: Dataset, spec: ModelSpec, *, allow_unknown_age: bool = False) -> list[Reason]:
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
    warnings.extend(
        check_population(ds, scope.population, model=spec.name, allow_unknown_age=allow_unknown_age)
    )
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


def check_population(
    ds: Dataset, population: Population, *, model: str, allow_unknown_age: bool = False
) -> list[Reason]:
    """Refuse (or warn, as the model says) outside the age range; refuse an unknown age unless
    the deployment allowed it for this model. Applies to every age-restricted model, whether it
    refuses or only warns outside its range: an unknown age is the deployment's call, not the
    model's."""
    if not population.restricted:
        return []
    age = patient_age_years(ds)
    if age is None:
        reason = Reason("age_unknown", {"model": model, "age_range": population.age_range})
        if not allow_unknown_age:
            raise Refused(reason)
        return [reason]
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
