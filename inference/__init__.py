"""Joliba AI pre-read: a framework-free library (no Django).

Light to import: onnxruntime is imported lazily inside the functions that run a model, so the
web process may import model specifications, the registry, reasons, quality checks and the
display pipeline (windowing) without it. See inference/README.md.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
