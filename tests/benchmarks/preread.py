"""Pre-read benchmark: Joliba's pipeline (onnxruntime fp32) against the same network in plain
PyTorch eager, same inputs, same run, 2 CPU threads.

(There is no int8 path: onnxruntime's dynamic int8 quantisation was 3-4x slower than fp32 on this
DenseNet and moved outputs by up to 9.2, so it was removed rather than shipped.)

    python tests/benchmarks/preread.py [--quick]

Network: DenseNet-121, 224×224, one grey channel, 18 outputs (the torchxrayvision labels), random
weights (needs torch + torchvision; without them the model timings are null). The radiograph is a
real 2140×1760 10-bit CR compressed with JPEG-LS. Prints a one-line summary, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from inference.export_torchxrayvision import LABELS  # noqa: E402 (torch-free at import)
from inference.model_spec import ModelSpec, write_model_spec  # noqa: E402
from inference.preprocess import prepare  # noqa: E402
from inference.preread import run_preread  # noqa: E402
from inference.registry import ModelRegistry  # noqa: E402
from inference.sessions import get_session  # noqa: E402
from tests.helpers import HIP_JPEGLS  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def build_package(directory: Path):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.densenet121(weights=None, num_classes=len(LABELS))
    model.features.conv0 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.eval()
    package = directory / "densenet121-bench"
    package.mkdir(parents=True)
    torch.onnx.export(
        model,
        torch.zeros(1, 1, 224, 224),
        str(package / "model.onnx"),
        input_names=["image"],
        output_names=["scores"],
        opset_version=17,
        dynamo=False,
    )
    write_model_spec(
        package,
        {
            "name": "densenet121-bench",
            "version": "0",
            "demo": True,
            "intended_use": {"fr": "Banc d'essai.", "en": "Benchmark."},
            "evidence": {"fr": "Poids aléatoires.", "en": "Random weights."},
            "scope": {"modalities": ["CR", "DX"]},
            "input": {"name": "image", "size": [224, 224], "channels": 1, "mean": [0.5], "std": [1 / 2048]},
            "outputs": [
                {
                    "name": "scores",
                    "kind": "probabilities",
                    "activation": "sigmoid",
                    "labels": [
                        {"name": n, "urgency_weight": 0.5, "display_fr": fr, "display_en": en}
                        for n, (fr, en) in LABELS.items()
                    ],
                }
            ],
        },
    )
    return model, package


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 15 if args.quick else 60
    result: dict[str, object] = {
        "image": HIP_JPEGLS.name,
        "threads": 2,
        "runs": runs,
        "preprocess_ms_median": None,
        "ort_fp32_ms_median": None,
        "ort_fp32_ms_p95": None,
        "torch_eager_ms_median": None,
        "torch_eager_ms_p95": None,
        "ort_vs_torch_speedup": None,
        "e2e_ms_median": None,
        "e2e_p95_s": None,
        "throughput_images_per_min": None,
        "peak_rss_mb": None,
    }
    if not HIP_JPEGLS.is_file():
        print(f"test data missing: {HIP_JPEGLS}")
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        spec = None
        try:
            import torch

            torch.set_num_threads(2)
            model, package = build_package(tmp_path / "fp32")
            spec = ModelSpec.load(package / "manifest.json").input
        except ImportError:
            torch = None
            print(
                "torch/torchvision not installed: model timings are null "
                "(pip install torch torchvision in a separate venv to measure them)"
            )

        from inference.model_spec import InputSpec

        spec = spec or InputSpec("image", 224, 224, mean=(0.5,), std=(1 / 2048,))
        # decode + preprocess of a full-size radiograph, from the parsed file each time
        prep_times = timed(lambda: prepare(pydicom.dcmread(HIP_JPEGLS), spec), runs)
        result["preprocess_ms_median"] = round(statistics.median(prep_times), 1)

        if torch is not None:
            tensor = prepare(pydicom.dcmread(HIP_JPEGLS), spec).tensor
            fp32_reg = ModelRegistry.from_directory(tmp_path / "fp32", threads=2)
            pkg = fp32_reg.models[0]
            session = get_session(pkg.model_path, pkg.spec.sha256, threads=2)
            session.run(None, {"image": tensor})
            fp32 = timed(lambda: session.run(None, {"image": tensor}), runs)

            x = torch.from_numpy(tensor)
            with torch.inference_mode():
                model(x)
                eager = timed(lambda: model(x), runs)

            run_preread(HIP_JPEGLS, fp32_reg)
            e2e = timed(lambda: run_preread(HIP_JPEGLS, fp32_reg), runs)
            result.update(
                ort_fp32_ms_median=round(statistics.median(fp32), 1),
                ort_fp32_ms_p95=round(percentile(fp32, 95), 1),
                torch_eager_ms_median=round(statistics.median(eager), 1),
                torch_eager_ms_p95=round(percentile(eager, 95), 1),
                ort_vs_torch_speedup=round(statistics.median(eager) / statistics.median(fp32), 2),
                e2e_ms_median=round(statistics.median(e2e), 1),
                e2e_p95_s=round(percentile(e2e, 95) / 1000, 3),
                throughput_images_per_min=round(60_000 / statistics.median(e2e), 1),
            )
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    print(
        f"preread on 2 threads: decode+preprocess {result['preprocess_ms_median']} ms "
        f"(target ≤150); onnxruntime fp32 {result['ort_fp32_ms_median']} ms vs PyTorch eager "
        f"{result['torch_eager_ms_median']} ms (×{result['ort_vs_torch_speedup']}, target ≥3); "
        f"whole pre-read p95 {result['e2e_p95_s']} s (target ≤0.3); "
        f"{result['throughput_images_per_min']} img/min"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
