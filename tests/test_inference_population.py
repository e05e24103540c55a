"""A model restricted to an age group refuses an image that carries no age, unless the deployment
opted in for that model; then it scores it with an age_unknown warning. Real paediatric films
(Kermany et al., Cell 2018, CC BY 4.0) wrapped as DICOM as a digitised film arrives."""

from __future__ import annotations

import pytest

from inference.preread import run_preread
from inference.registry import ModelRegistry
from tests.helpers import PAEDIATRIC, build_constant_model, wrap_jpeg_as_dicom
from tests.paths import required

FILM = PAEDIATRIC / "normal/NORMAL2-IM-1427-0001.jpeg"
CHILDREN = {
    "min_age_years": 0,
    "max_age_years": 17,
    "outside": "refuse",
    "description_fr": "enfants",
    "description_en": "children",
}
ADULTS_WARN = {"min_age_years": 18, "outside": "warn"}


@pytest.fixture
def film() -> bytes:
    required(FILM)
    return wrap_jpeg_as_dicom(FILM)


def registry(tmp_path, population, **kwargs) -> ModelRegistry:
    scope = {
        "modalities": ["CR", "DX"],
        "body_parts": ["CHEST"],
        "views": ["PA", "AP"],
        "population": population,
    }
    build_constant_model(
        tmp_path, {"consolidation": 0.7}, name="paediatric", manifest_overrides={"scope": scope}
    )
    return ModelRegistry.from_directory(tmp_path, **kwargs)


def test_a_paediatric_model_refuses_a_film_without_age(tmp_path, film):
    result = run_preread(film, registry(tmp_path, CHILDREN))
    assert result.status == "refused" and result.urgency is None and result.outputs == {}
    assert result.reason.to_dict() == {
        "code": "age_unknown",
        "params": {"model": "paediatric", "age_range": "0–17"},
    }


def test_with_the_deployments_opt_in_it_scores_the_film_with_a_warning(tmp_path, film):
    result = run_preread(film, registry(tmp_path, CHILDREN, allow_unknown_age={"paediatric"}))
    assert result.status == "scored", result.reason
    assert result.outputs["consolidation"] == pytest.approx(0.7, abs=1e-5)
    assert [w.to_dict() for w in result.warnings] == [
        {"code": "age_unknown", "params": {"model": "paediatric", "age_range": "0–17"}}
    ]


def test_the_opt_in_is_per_model_and_never_lets_an_adult_through(tmp_path):
    required(FILM)
    other = registry(tmp_path, CHILDREN, allow_unknown_age={"another-model"})
    assert run_preread(wrap_jpeg_as_dicom(FILM), other).reason.code == "age_unknown"
    opted = ModelRegistry.from_directory(tmp_path, allow_unknown_age={"paediatric"})
    adult = run_preread(wrap_jpeg_as_dicom(FILM, PatientAge="045Y"), opted)
    assert adult.status == "refused" and adult.reason.code == "outside_population"
    child = run_preread(wrap_jpeg_as_dicom(FILM, PatientAge="004Y"), opted)
    assert child.status == "scored" and child.warnings == []
    with pytest.raises(TypeError):
        ModelRegistry.from_directory(tmp_path, allow_unknown_age="paediatric")


def test_a_model_that_only_warns_outside_its_population_still_refuses_an_unknown_age(tmp_path, film):
    warn_only = registry(tmp_path, ADULTS_WARN)
    assert run_preread(film, warn_only).reason.code == "age_unknown"
    child = run_preread(wrap_jpeg_as_dicom(FILM, PatientAge="004Y"), warn_only)
    assert child.status == "scored"
    assert [w.code for w in child.warnings] == ["outside_population"]
    assert child.warnings[0].params == {"model": "paediatric", "age_years": 4.0, "age_range": "≥ 18"}


def test_a_model_without_population_scores_a_film_without_age(tmp_path, film):
    build_constant_model(tmp_path, {"consolidation": 0.7})  # the demo scope: no age limits
    result = run_preread(film, ModelRegistry.from_directory(tmp_path))
    assert result.status == "scored" and result.warnings == []
