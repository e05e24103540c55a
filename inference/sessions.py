"""onnxruntime sessions: created once per worker process, reused, keyed by the model's sha256
and the thread count.

onnxruntime is imported here lazily so that importing `inference` never loads it. The thread
count is an argument (the platform passes its setting); nothing here reads the environment.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from inference.reasons import refuse

DEFAULT_THREADS = 2  # intra-op threads: one inference host of two cores

_sessions: dict[tuple[str, int], Any] = {}
_lock = threading.Lock()


def providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


def get_session(model_path: str | Path, sha256: str, *, threads: int = DEFAULT_THREADS) -> Any:
    """The process-wide session for this model, created on first use.

    The bytes are hashed again as they are loaded, so a file swapped after the registry checked
    it is refused rather than run.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    key = (sha256, threads)
    with _lock:
        session = _sessions.get(key)
        if session is not None:
            return session
        import onnxruntime as ort

        data = Path(model_path).read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:  # swapped since the registry checked it
            raise refuse("hash_mismatch", actual=actual[:12], expected=sha256[:12])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(data, sess_options=options, providers=providers())
        _sessions[key] = session
        return session
