"""The library's public shape: module names, what importing it costs, what it no longer has."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.helpers import REPO


def test_there_is_no_int8_quantisation_path():
    # Dynamic int8 was slower than fp32 on the DenseNet and off by up to 9.2: removed, not hidden.
    assert importlib.util.find_spec("inference.quantize") is None
    assert (
        "quantiz"
        not in (REPO / "inference" / "README.md").read_text(encoding="utf-8").split("## No int8 path")[0]
    )


def test_the_model_package_description_is_a_model_spec_still_read_from_manifest_json():
    from inference import model_spec

    assert importlib.util.find_spec("inference.manifest") is None
    assert model_spec.SPEC_FILE == "manifest.json" and model_spec.MODEL_FILE == "model.onnx"
    assert {"ModelSpec", "ModelSpecError", "write_model_spec"} <= set(vars(model_spec))


def test_importing_the_light_modules_loads_neither_onnxruntime_nor_django():
    code = (
        "import sys\n"
        "import inference.model_spec, inference.registry, inference.reasons, inference.pixel_codes\n"
        "import inference.windowing, inference.quality, inference.scope, inference.draft\n"
        "print(sorted(m for m in ('onnxruntime', 'django', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_windowing_module_costs_numpy_only():
    code = (
        "import sys\n"
        "import inference.windowing, inference.pixel_codes\n"
        "print(sorted(m for m in ('pydicom', 'PIL', 'onnxruntime', 'django') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_public_signatures_are_those_the_readme_gives():
    import inspect

    from inference.preread import run_preread
    from inference.quality import check_quality
    from inference.registry import ModelRegistry
    from inference.sessions import get_session
    from inference.windowing import display_float, display_pixels, render, window_covers

    def keywords(fn):
        return {
            name: p.default
            for name, p in inspect.signature(fn).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    assert keywords(ModelRegistry.from_directory) == {
        "enabled": None,
        "allow_unknown_age": frozenset(),
        "threads": 2,
    }
    assert keywords(run_preread) == {"model_name": None, "max_pixels": 36_000_000}
    assert keywords(check_quality) == {"max_pixels": 36_000_000}
    assert keywords(get_session) == {"threads": 2}
    for fn in (display_pixels, display_float, render):
        assert list(inspect.signature(fn).parameters) == ["ds", "arr", "frame"]
        assert keywords(fn) == {"frame": 0}
    assert keywords(window_covers) == {"function": "LINEAR"}
    readme = (REPO / "inference" / "README.md").read_text(encoding="utf-8")
    for text in (
        "allow_unknown_age",
        "threads=2",
        "max_pixels=36_000_000",
        "display_pixels(ds, arr=None, *, frame=0)",
    ):
        assert text in readme
