"""Any ONNX image model run by ONNX Runtime.

Input spec: one float32 input of shape N x 3 x H x W (RGB, channels first), values scaled to
[-1, 1] as (RGB/255 - 0.5) / 0.5 after a centre crop to H x W (H = W = 224 when the model leaves
it dynamic). The first output is the vector: N x D as is, N x C x H x W average-pooled over H, W,
anything else flattened per image.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tsnegrid.embed.base import to_unit_range
from tsnegrid.errors import ModelError

DEFAULT_SIZE = 224


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class OnnxEmbedder:
    """Runs an .onnx image model; ``model_id`` defaults to the file's content hash."""

    def __init__(self, path: str | Path, *, model_id: str | None = None, threads: int = 0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file")
        self.threads = threads
        self.model_id = model_id or f"onnx-{file_digest(self.path)[:16]}"
        self._session: Any = None
        self._input = ("", DEFAULT_SIZE)

    @property
    def session(self) -> Any:
        """The ONNX Runtime session, opened on first use: a build whose vectors are all cached
        never imports onnxruntime (0.2 s) nor loads the model."""
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(self.path), opts,
                                               providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelError(f"{self.path}: cannot load ONNX model ({exc})") from exc
            inputs = session.get_inputs()
            if len(inputs) != 1 or len(inputs[0].shape) != 4:
                raise ModelError(f"{self.path}: expected one N x 3 x H x W input, got "
                                 f"{[(i.name, i.shape) for i in inputs]}")
            h, w = inputs[0].shape[2], inputs[0].shape[3]
            if isinstance(h, int) and isinstance(w, int) and h != w:
                raise ModelError(f"{self.path}: only square inputs are supported, got {h}x{w}")
            self._input = (str(inputs[0].name), h if isinstance(h, int) else DEFAULT_SIZE)
            self._session = session
        return self._session

    def _model_input(self) -> tuple[str, int]:
        """The input's name and side, read once when the session opens."""
        if self._session is None:
            self.session.get_inputs()
        return self._input

    @property
    def input_name(self) -> str:
        return self._model_input()[0]

    @property
    def input_size(self) -> int:
        return self._model_input()[1]

    def preprocess(self, image: Image.Image) -> NDArray[np.float32]:
        return to_unit_range(image, self.input_size)

    def embed_batch(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        out = np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)
        if out.ndim == 4:
            out = out.mean(axis=(2, 3))
        return out.reshape(len(batch), -1)
