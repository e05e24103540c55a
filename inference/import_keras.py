"""Import the Keras Xception pneumonia classifier of PyPI `pneumonia-model-package` 0.3.0 as a
Joliba model package (model.onnx + manifest.json).

Run on the deployment's own machine (the package states no licence: never commit the weights):

    pip install "tensorflow-cpu>=2.16" "tf2onnx>=1.16" "pneumonia-model-package==0.3.0"
    python -m inference.import_keras --out /srv/joliba/models

The model: Xception base + dense head, 150×150 RGB, preprocessing x/127.5 − 1 after a
nearest-neighbour resize (stretched, not letterboxed), two logits NORMAL / PNEUMONIA, trained on
the Kermany et al. paediatric chest X-ray set (Guangzhou, children aged 1–5).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from inference.model_spec import write_model_spec

PACKAGE = "pneumonia_model_package"
WEIGHTS = "trained_models/pneumonia_xception_model_val-acc_0.861.keras"
NAME = "pneumonia-xception-kermany"
SIZE = 150


def import_pneumonia_model(out_dir: str | Path, *, check_samples: int = 4) -> Path:
    """Convert the Keras model to `<out_dir>/<NAME>/` and return that package directory.

    The ONNX graph is checked against Keras on random inputs; the largest difference is written
    into the manifest's evidence.
    """
    import importlib.resources

    import keras  # type: ignore[import-not-found, unused-ignore]
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import tf2onnx  # type: ignore[import-not-found, unused-ignore]

    weights = importlib.resources.files(PACKAGE) / WEIGHTS
    model = keras.saving.load_model(str(weights), compile=False)
    spec = (tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name="image"),)

    # from_function: tf2onnx's from_keras does not handle Keras 3 models
    @tf.function(input_signature=spec)  # type: ignore[untyped-decorator, unused-ignore]
    def logits_of(image: Any) -> dict[str, Any]:
        return {"logits": model(image, training=False)}

    package = Path(out_dir) / NAME
    package.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_function(
        logits_of, input_signature=spec, opset=17, output_path=str(package / "model.onnx")
    )

    session = ort.InferenceSession(str(package / "model.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    sample = rng.uniform(-1, 1, (check_samples, SIZE, SIZE, 3)).astype(np.float32)
    delta = float(
        np.abs(model(sample, training=False).numpy() - session.run(None, {"image": sample})[0]).max()
    )
    if delta > 1e-3:
        raise RuntimeError(f"ONNX output differs from Keras by {delta}")

    write_model_spec(package, pneumonia_manifest(delta))
    return package


def pneumonia_manifest(onnx_keras_delta: float) -> dict[str, Any]:
    return {
        "name": NAME,
        "version": "0.3.0",
        "demo": False,
        "source": {
            "pypi": "pneumonia-model-package==0.3.0",
            "file": WEIGHTS,
            "licence": "none stated: import on the deployment machine, do not redistribute",
        },
        "intended_use": {
            "fr": "Aide au tri : probabilité de pneumonie sur une radiographie thoracique de face "
            "d'enfant. Ne remplace pas la lecture d'un radiologue.",
            "en": "Triage aid: probability of pneumonia on a frontal paediatric chest radiograph. "
            "Does not replace a radiologist's reading.",
        },
        "evidence": {
            "fr": "Entraîné sur le jeu pédiatrique de Kermany et al. (Cell 2018 ; Guangzhou, "
            "1–5 ans) ; exactitude de validation annoncée 0,861 (nom du fichier). "
            f"Conversion ONNX : écart max {onnx_keras_delta:.1e} avec Keras. Aucune "
            "validation sur des patients maliens ni sur des films photographiés.",
            "en": "Trained on the Kermany et al. paediatric set (Cell 2018; Guangzhou, aged 1–5); "
            "stated validation accuracy 0.861 (file name). ONNX conversion: max difference "
            f"{onnx_keras_delta:.1e} from Keras. Not validated on Malian patients nor on "
            "photographed films.",
        },
        "scope": {
            "modalities": ["CR", "DX"],
            "body_parts": ["CHEST"],
            "views": ["PA", "AP"],
            "population": {
                "min_age_years": 0,
                "max_age_years": 17,
                "outside": "refuse",
                "description_fr": "enfants de 0 à 17 ans (entraîné sur des 1–5 ans)",
                "description_en": "children aged 0–17 (trained on ages 1–5)",
            },
        },
        "input": {
            "name": "image",
            "size": [SIZE, SIZE],
            "channels": 3,
            "layout": "NHWC",
            "resize": "stretch",
            "interpolation": "nearest",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        },
        "outputs": [
            {
                "name": "logits",
                "kind": "probabilities",
                "activation": "softmax",
                "labels": [
                    {
                        "name": "NORMAL",
                        "display_fr": "Aspect normal",
                        "display_en": "Normal appearance",
                        "threshold": 0.5,
                        "urgency_weight": 0.0,
                        "sentence_fr": "Pas d'argument pour une pneumonie selon le modèle.",
                        "sentence_en": "No sign of pneumonia according to the model.",
                    },
                    {
                        "name": "PNEUMONIA",
                        "display_fr": "Pneumonie",
                        "display_en": "Pneumonia",
                        "threshold": 0.5,
                        "critical_threshold": None,
                        "urgency_weight": 0.7,
                        "sentence_fr": "Aspect compatible avec une pneumonie.",
                        "sentence_en": "Appearance compatible with pneumonia.",
                    },
                ],
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory of model packages")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    package = import_pneumonia_model(args.out)
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    print(
        json.dumps(
            {
                "package": str(package),
                "sha256": manifest["sha256"],
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
