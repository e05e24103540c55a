"""onnxruntime sessions: created once per worker process, reused, keyed by the model's sha256.

onnxruntime is imported here lazily so that importing `inference` never loads it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from inference.reasons import refuse

_sessions: dict[str, Any] = {}
_lock = threading.Lock()


def thread_count() -> int:
    """intra-op threads: JOLIBA_ORT_THREADS, default 2 (one inference host of two cores)."""
    try:
        return max(1, int(os.environ.get("JOLIBA_ORT_THREADS", "2")))
    except ValueError:
        return 2


def providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


def get_session(model_path: str | Path, sha256: str) -> Any:
    """The process-wide session for this model, created on first use.

    The bytes are hashed again as they are loaded, so a file swapped after the registry checked
    it is refused rather than run.
    """
    with _lock:
        session = _sessions.get(sha256)
        if session is not None:
            return session
        import onnxruntime as ort

        data = Path(model_path).read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:  # swapped since the registry checked it
            raise refuse("hash_mismatch", actual=actual[:12], expected=sha256[:12])
        options = ort.SessionOptions()
        options.intra_op_num_threads = thread_count()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(data, sess_options=options, providers=providers())
        _sessions[sha256] = session
        return session


def clear_sessions() -> None:
    with _lock:
        _sessions.clear()
