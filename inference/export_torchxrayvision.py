"""Export a torchxrayvision chest X-ray model to a Joliba model package (model.onnx + manifest).

On a connected machine (the weights are downloaded by torchxrayvision itself):

    pip install torch torchvision torchxrayvision
    python -m inference.export_torchxrayvision --out /srv/joliba/models \
        --weights densenet121-res224-all

`--random-weights` exports the same network untrained (tests, benchmarks, no download).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inference.model_spec import write_model_spec

# Labels whose positive finding should reach a radiologist first (weights 0..1), and the ones
# worth a critical flag. Others still appear in the draft when above threshold.
URGENCY = {
    "Pneumothorax": 1.0,
    "Edema": 0.7,
    "Effusion": 0.6,
    "Consolidation": 0.6,
    "Pneumonia": 0.6,
    "Enlarged Cardiomediastinum": 0.5,
    "Mass": 0.5,
    "Lung Lesion": 0.4,
    "Fracture": 0.4,
    "Cardiomegaly": 0.3,
    "Nodule": 0.3,
    "Atelectasis": 0.3,
    "Lung Opacity": 0.3,
    "Infiltration": 0.3,
}
CRITICAL = {"Pneumothorax": 0.8}
# Display names (fr, en) of the 18 torchxrayvision pathologies, as the draft and overlays show them.
LABELS = {
    "Atelectasis": ("Atélectasie", "Atelectasis"),
    "Consolidation": ("Condensation alvéolaire", "Consolidation"),
    "Infiltration": ("Infiltrat", "Infiltration"),
    "Pneumothorax": ("Pneumothorax", "Pneumothorax"),
    "Edema": ("Œdème pulmonaire", "Pulmonary oedema"),
    "Emphysema": ("Emphysème", "Emphysema"),
    "Fibrosis": ("Fibrose", "Fibrosis"),
    "Effusion": ("Épanchement pleural", "Pleural effusion"),
    "Pneumonia": ("Pneumonie", "Pneumonia"),
    "Pleural_Thickening": ("Épaississement pleural", "Pleural thickening"),
    "Cardiomegaly": ("Cardiomégalie", "Cardiomegaly"),
    "Nodule": ("Nodule", "Nodule"),
    "Mass": ("Masse", "Mass"),
    "Hernia": ("Hernie", "Hernia"),
    "Lung Lesion": ("Lésion pulmonaire", "Lung lesion"),
    "Fracture": ("Fracture", "Fracture"),
    "Lung Opacity": ("Opacité pulmonaire", "Lung opacity"),
    "Enlarged Cardiomediastinum": ("Élargissement du médiastin", "Enlarged cardiomediastinum"),
}


def export(
    out_dir: str | Path, *, weights: str = "densenet121-res224-all", random_weights: bool = False
) -> Path:
    """Write `<out_dir>/xrv-<weights>/` and return it."""
    import torch  # type: ignore[import-not-found, unused-ignore]
    import torchxrayvision as xrv  # type: ignore[import-not-found, unused-ignore]

    model = xrv.models.DenseNet(weights=None if random_weights else weights)
    model.eval()
    calibrated = getattr(model, "op_threshs", None) is not None
    labels = list(getattr(model, "pathologies", None) or xrv.datasets.default_pathologies)
    name = f"xrv-{weights}" + ("-random" if random_weights else "")
    package = Path(out_dir) / name
    package.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 1, 224, 224)
    torch.onnx.export(
        model,
        dummy,
        str(package / "model.onnx"),
        input_names=["image"],
        output_names=["scores"],
        opset_version=17,
        dynamo=False,
    )
    spec = xrv_spec(
        name,
        version=getattr(xrv, "__version__", "unknown"),
        labels=[label for label in labels if label],
        calibrated=calibrated,
        weights=None if random_weights else weights,
    )
    write_model_spec(package, spec)
    return package


def xrv_spec(
    name: str, *, version: str, labels: list[str], calibrated: bool, weights: str | None
) -> dict[str, Any]:
    """The model specification of an exported torchxrayvision DenseNet (no torch needed);
    `weights` None means random weights (a demo package)."""
    unknown = [label for label in labels if label not in LABELS]
    if unknown:
        raise KeyError(f"no display names for {unknown}: add them to LABELS")
    random_weights = weights is None
    evidence = (
        {
            "fr": "Aucune : poids aléatoires (test du chemin d'export).",
            "en": "None: random weights (export path test).",
        }
        if random_weights
        else {
            "fr": f"torchxrayvision {weights} (Cohen et al., MIDL 2022), entraîné sur des jeux "
            "publics (NIH, CheXpert, MIMIC, PadChest...). Non validé localement.",
            "en": f"torchxrayvision {weights} (Cohen et al., MIDL 2022), trained on public sets "
            "(NIH, CheXpert, MIMIC, PadChest...). Not validated locally.",
        }
    )
    return {
        "name": name,
        "version": version,
        "demo": random_weights,
        "intended_use": {
            "fr": "Tri des radiographies thoraciques de face d'adulte (18 signes). Aide à la "
            "priorisation, ne remplace pas la lecture d'un radiologue.",
            "en": "Triage of adult frontal chest radiographs (18 findings). A prioritisation "
            "aid, not a replacement for a radiologist's reading.",
        },
        "evidence": evidence,
        "scope": {
            "modalities": ["CR", "DX"],
            "body_parts": ["CHEST"],
            "views": ["PA", "AP"],
            "population": {
                "min_age_years": 18,
                "outside": "warn",
                "description_fr": "adultes",
                "description_en": "adults",
            },
        },
        # torchxrayvision expects [-1024, 1024]: (x01 - 0.5) / (1/2048).
        "input": {
            "name": "image",
            "size": [224, 224],
            "channels": 1,
            "layout": "NCHW",
            "resize": "letterbox",
            "interpolation": "bilinear",
            "mean": [0.5],
            "std": [1 / 2048],
        },
        "outputs": [
            {
                "name": "scores",
                "kind": "probabilities",
                # calibrated models already output 0..1 (op_norm); untrained ones output logits
                "activation": "none" if calibrated else "sigmoid",
                "labels": [
                    {
                        "name": label,
                        "threshold": 0.5,
                        "critical_threshold": CRITICAL.get(label),
                        "urgency_weight": URGENCY.get(label, 0.2),
                        "display_fr": LABELS[label][0],
                        "display_en": LABELS[label][1],
                    }
                    for label in labels
                ],
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", default="densenet121-res224-all")
    parser.add_argument("--random-weights", action="store_true")
    args = parser.parse_args(argv)
    package = export(args.out, weights=args.weights, random_weights=args.random_weights)
    print(json.dumps({"package": str(package)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
