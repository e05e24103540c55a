"""Refusals, warnings and quality findings are codes with parameters; the one English table
covers every code the library can emit, with the parameters each call passes."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pydicom

from inference.pixel_codes import PREREAD_ONLY, PixelCode
from inference.preread import run_preread
from inference.quality import QualityFinding, check_quality
from inference.reasons import MESSAGES_EN, Reason, refuse
from inference.registry import ModelRegistry
from tests.helpers import REPO, build_constant_model
from tests.paths import required

LIBRARY = REPO / "inference"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
PASS_THROUGH = {"code", "self.code", "exc.reason.code"}  # refuse() itself, and reasons handed on


def _code_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "PixelCode":
        return str(PixelCode[node.attr])
    if ast.unparse(node) in PASS_THROUGH:
        return None  # a reason handed on (quality finding ↔ reason), checked where it was made
    raise AssertionError(f"reason code is not a literal: {ast.unparse(node)}")


def emitted_codes() -> list[tuple[str, frozenset[str] | None, str]]:
    """(code, parameter names or None when not literal, where) for every Reason(...),
    refuse(...) and QualityFinding(...) written in inference/."""
    found = []
    for path in sorted(LIBRARY.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            name = node.func.id
            if name not in ("Reason", "refuse", "QualityFinding") or not node.args:
                continue
            where = f"{path.name}:{node.lineno}"
            first = node.args[0]
            codes = [first.body, first.orelse] if isinstance(first, ast.IfExp) else [first]
            if name == "refuse":
                params: frozenset[str] | None = frozenset(k.arg for k in node.keywords if k.arg)
            else:
                index = 1 if name == "Reason" else 2
                literal = node.args[index] if len(node.args) > index else None
                if literal is None:
                    params = frozenset()
                elif isinstance(literal, ast.Dict):
                    params = frozenset(k.value for k in literal.keys if isinstance(k, ast.Constant))
                else:
                    params = None  # passed through from another reason
            for code_node in codes:
                code = _code_of(code_node)
                if code is not None:
                    found.append((code, params, where))
    return found


def test_every_code_the_library_emits_has_an_english_message_with_its_parameters():
    found = emitted_codes()
    assert len({code for code, _, _ in found}) >= 25, found  # the scan really sees the library
    for code, params, where in found:
        assert code in MESSAGES_EN, f"{where}: {code!r} missing from MESSAGES_EN"
        if params is not None:
            wanted = set(PLACEHOLDER.findall(MESSAGES_EN[code]))
            assert wanted == set(params), f"{where}: {code} passes {sorted(params)}, table wants {wanted}"


def test_every_pixel_code_has_a_message_and_the_enum_imports_without_numpy():
    assert {str(c) for c in PixelCode} <= set(MESSAGES_EN)
    assert {str(c) for c in PixelCode} == {
        "no_pixels",
        "not_image",
        "bad_pixel_description",
        "too_large",
        "truncated",
        "unsupported_codec",
        "undecodable",
        "multi_frame",
        "not_greyscale",
    }
    assert PREREAD_ONLY == {PixelCode.MULTI_FRAME, PixelCode.NOT_GREYSCALE}
    tree = ast.parse((LIBRARY / "pixel_codes.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported == {"__future__", "enum"}
    assert all(type(k) is str for k in MESSAGES_EN)  # plain strings, not enum members


def test_a_reason_is_a_code_and_parameters_rendered_in_english_only_on_demand():
    reason = Reason("wrong_view", {"view": "LL", "allowed": "PA, AP"})
    assert reason.to_dict() == {"code": "wrong_view", "params": {"view": "LL", "allowed": "PA, AP"}}
    assert reason.en == "View LL is outside the model's scope (PA, AP)."
    assert not hasattr(reason, "fr")
    pixel = refuse(PixelCode.TOO_LARGE, columns=65535, rows=65535, frames=1, max_pixels=36_000_000).reason
    assert type(pixel.code) is str and pixel.code == "too_large"
    assert json.loads(json.dumps(pixel.to_dict()))["params"]["columns"] == 65535
    assert "65535×65535" in pixel.en
    finding = QualityFinding("clipped", "warning", {"percent": 20})
    assert finding.to_dict() == {"code": "clipped", "severity": "warning", "params": {"percent": 20}}
    assert finding.en == "20 % of pixels saturated: burnt-out areas, detail lost."


def test_an_unknown_code_or_missing_parameter_still_renders_something():
    assert Reason("something_new", {"x": 1}).en == "something_new {'x': 1}"
    assert "View" in Reason("wrong_view").en


def test_a_stored_preread_result_carries_codes_and_parameters_not_sentences(tmp_path):
    from tests.helpers import CXR_1024

    required(CXR_1024)
    build_constant_model(tmp_path, {"pneumothorax": 0.2})
    registry = ModelRegistry.from_directory(tmp_path)
    ds = pydicom.dcmread(CXR_1024)
    ds.ViewPosition = "LL"
    stored = run_preread(ds, registry).to_dict()
    assert stored["reason"] == {"code": "wrong_view", "params": {"view": "LL", "allowed": "PA, AP"}}
    del ds.BodyPartExamined
    ds.ViewPosition = "PA"
    scored = run_preread(ds, registry).to_dict()
    assert scored["warnings"] == [{"code": "body_part_unknown", "params": {"allowed": "CHEST"}}]
    assert all(set(f) == {"code", "severity", "params"} for f in scored["quality"])


def test_quality_findings_of_a_truncated_real_file_are_codes(tmp_path):
    from tests.helpers import TIBIA_UNCOMPRESSED

    required(TIBIA_UNCOMPRESSED)
    data = Path(TIBIA_UNCOMPRESSED).read_bytes()
    (finding,) = check_quality(data[: len(data) // 2])
    assert finding.code == PixelCode.TRUNCATED and finding.severity == "error"
    assert set(finding.params) == {"actual_bytes", "expected_bytes"}
    assert finding.params["expected_bytes"] == 1760 * 1760 * 2


def test_the_readme_lists_every_code_with_its_parameters():
    readme = (LIBRARY / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\w+) \| ([^|]*) \|", readme, flags=re.MULTILINE)
    documented = {
        code: set() if params.strip() == "—" else {p.strip() for p in params.split(",")}
        for code, params in rows
        if code != "code"
    }
    assert set(documented) == set(MESSAGES_EN)
    for code, params in documented.items():
        assert params == set(PLACEHOLDER.findall(MESSAGES_EN[code])), code
