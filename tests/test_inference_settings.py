"""Settings are arguments: the library takes thread counts and size limits from its caller
(the platform passes its settings) and reads no environment variable itself."""

from __future__ import annotations

import ast

import pydicom
import pytest

from inference.preread import run_preread
from inference.quality import check_quality
from inference.registry import ModelRegistry
from inference.sessions import get_session
from tests.helpers import CXR_1024, REPO, build_constant_model
from tests.paths import required

# Command-line entry points may read flags and the environment; libraries may not.
# Command lines: they may take a default from the environment (the token); the library never does.
ENTRY_POINTS = {"siteagent/cli.py", "siteagent/serve.py"}


def environment_reads(path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ("environ", "getenv") for a in node.names):
                lines.append(node.lineno)
    return lines


def test_library_code_reads_no_environment_variable():
    offenders = {}
    for package in ("inference", "orthanc", "siteagent"):
        for path in sorted((REPO / package).rglob("*.py")):
            relative = str(path.relative_to(REPO))
            if relative not in ENTRY_POINTS and environment_reads(path):
                offenders[relative] = environment_reads(path)
    assert offenders == {}
    assert environment_reads(REPO / "siteagent/cli.py")  # the scan does see a real read


@pytest.fixture
def cxr():
    return pydicom.dcmread(required(CXR_1024))


def test_the_registry_sets_the_session_threads_and_the_environment_does_not(tmp_path, cxr, monkeypatch):
    monkeypatch.setenv("JOLIBA_ORT_THREADS", "7")
    build_constant_model(tmp_path, {"pneumothorax": 0.31})
    one = ModelRegistry.from_directory(tmp_path, threads=1)
    assert run_preread(cxr, one).status == "scored"
    package = one.models[0]
    session = get_session(package.model_path, package.spec.sha256, threads=1)
    assert session.get_session_options().intra_op_num_threads == 1
    default = ModelRegistry.from_directory(tmp_path)
    assert default.threads == 2
    session = get_session(package.model_path, package.spec.sha256, threads=default.threads)
    assert session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(ValueError):
        ModelRegistry.from_directory(tmp_path, threads=0)


def test_the_caller_sets_the_decoded_size_limit(tmp_path, cxr, monkeypatch):
    monkeypatch.setenv("JOLIBA_MAX_PIXELS", "10")  # ignored
    build_constant_model(tmp_path, {"pneumothorax": 0.31})
    registry = ModelRegistry.from_directory(tmp_path)
    assert run_preread(cxr, registry).status == "scored"
    small = run_preread(cxr, registry, max_pixels=500_000)  # the film is 1024² = 1 048 576 px
    assert small.status == "refused"
    assert small.reason.to_dict() == {
        "code": "too_large",
        "params": {"columns": 1024, "rows": 1024, "frames": 1, "max_pixels": 500_000},
    }
    assert [f.code for f in check_quality(cxr, max_pixels=500_000)] == ["too_large"]
    assert check_quality(cxr) == []
