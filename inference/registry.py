"""The models a deployment enables: a directory of model packages, each checked against its hash."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from inference.model_spec import MODEL_FILE, SPEC_FILE, ModelSpec, ModelSpecError, sha256_of
from inference.reasons import Reason
from inference.sessions import DEFAULT_THREADS


@dataclass(frozen=True)
class ModelPackage:
    directory: Path
    spec: ModelSpec
    # The deployment's explicit choice to score images without an age with this age-restricted
    # model (with an age_unknown warning) instead of refusing them.
    allow_unknown_age: bool = False

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL_FILE


@dataclass(frozen=True)
class RefusedPackage:
    directory: Path
    reason: Reason


@dataclass
class ModelRegistry:
    models: list[ModelPackage] = field(default_factory=list)
    refused: list[RefusedPackage] = field(default_factory=list)
    threads: int = DEFAULT_THREADS  # onnxruntime intra-op threads of each model's session

    @classmethod
    def from_directory(
        cls,
        path: str | Path,
        *,
        enabled: Iterable[str] | None = None,
        allow_unknown_age: Iterable[str] = frozenset(),
        threads: int = DEFAULT_THREADS,
    ) -> ModelRegistry:
        """Load every sub-directory holding manifest.json + model.onnx (sorted by name).

        `enabled` restricts the registry to those model names (None: all). A package whose model
        file does not match its specification's sha256, or whose specification is invalid, is not
        loaded and is listed in `.refused` with the reason.

        `allow_unknown_age` names the age-restricted models that may score an image carrying no
        age (with an age_unknown warning); every other age-restricted model refuses such images.
        `threads` is the onnxruntime intra-op thread count of the sessions the pre-read opens.
        """
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        registry = cls(threads=threads)
        root = Path(path)
        wanted = None if enabled is None else set(enabled)
        if isinstance(allow_unknown_age, str):
            raise TypeError("allow_unknown_age is a collection of model names, not one string")
        unknown_age_ok = frozenset(allow_unknown_age)
        if not root.is_dir():
            return registry
        for directory in sorted(p for p in root.iterdir() if p.is_dir()):
            if not (directory / SPEC_FILE).is_file() or not (directory / MODEL_FILE).is_file():
                continue
            package_or_reason = load_package(directory)
            if isinstance(package_or_reason, Reason):
                registry.refused.append(RefusedPackage(directory, package_or_reason))
            elif wanted is None or package_or_reason.spec.name in wanted:
                if package_or_reason.spec.name in unknown_age_ok:
                    package_or_reason = replace(package_or_reason, allow_unknown_age=True)
                registry.models.append(package_or_reason)
        return registry

    def get(self, name: str) -> ModelPackage | None:
        return next((m for m in self.models if m.spec.name == name), None)

    def __iter__(self) -> Iterator[ModelPackage]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)


def load_package(directory: str | Path) -> ModelPackage | Reason:
    directory = Path(directory)
    try:
        spec = ModelSpec.load(directory / SPEC_FILE)
    except ModelSpecError as exc:
        return Reason("invalid_manifest", {"error": str(exc)})
    actual = sha256_of(directory / MODEL_FILE)
    if actual != spec.sha256:
        return Reason("hash_mismatch", {"actual": actual[:12], "expected": spec.sha256[:12]})
    return ModelPackage(directory, spec)
