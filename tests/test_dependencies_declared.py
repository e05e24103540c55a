"""Every third-party module the code imports is declared in pyproject.toml: in the main
dependencies, or in the extra that the importing part of the code runs with."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests.paths import REPO

# Where the code is, and the extras its imports may come from besides the main dependencies.
TREES = {
    "platform": ("ai",),  # the worker's pre-read runs inference with onnxruntime
    "inference": ("ai", "keras", "xrv"),  # the importers run in venvs of their own (Makefile)
    "orthanc": (),
    "siteagent": (),
    "scripts": ("ai",),
}
# Imported only by an importer whose extra is not installed in the test venv, under a module name
# that is not its distribution's.
NOT_INSTALLED_HERE = {"tensorflow": "tensorflow-cpu"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normal(re.match(r"[A-Za-z0-9._-]+", r).group(0)) for r in requirements}


def _first_party() -> set[str]:
    apps = {p.name for p in (REPO / "platform").iterdir() if (p / "__init__.py").exists()}
    return apps | {"inference", "orthanc", "siteagent", "tests"}


def _imported_top_level(folder) -> dict[str, set[str]]:
    """{top-level module: {files importing it}} for the absolute imports under folder."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        if "migrations" in path.parts or "staticfiles" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_third_party_module_is_declared():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    main = _requirement_names(project["dependencies"])
    extras = {name: _requirement_names(reqs) for name, reqs in project["optional-dependencies"].items()}
    distributions = {m: {_normal(d) for d in dists} for m, dists in packages_distributions().items()}
    first_party, stdlib = _first_party(), set(sys.stdlib_module_names)
    undeclared = []
    for tree, allowed_extras in TREES.items():
        declared = main.union(*(extras[e] for e in allowed_extras))
        for module, files in sorted(_imported_top_level(REPO / tree).items()):
            if module in stdlib or module in first_party:
                continue
            provided_by = distributions.get(module) or {_normal(NOT_INSTALLED_HERE.get(module, module))}
            if not provided_by & declared:
                undeclared.append(f"{module} (from {', '.join(sorted(provided_by))}) in {sorted(files)}")
    assert not undeclared, "imported but not declared in pyproject.toml:\n" + "\n".join(undeclared)


def test_the_walk_sees_the_imports_it_should():
    """Guard for the test above: it finds real third-party imports in each tree."""
    assert {"pydicom", "numpy"} <= set(_imported_top_level(REPO / "inference"))
    assert {"django", "rest_framework"} <= set(_imported_top_level(REPO / "platform"))
    assert "requests" in _imported_top_level(REPO / "orthanc")
