"""Any ONNX image model run by ONNX Runtime.

Input spec: one float32 input of shape N x 3 x H x W (RGB, channels first), values scaled to
[-1, 1] as (RGB/255 - 0.5) / 0.5 after a centre crop to H x W (H = W = 224 when the model leaves
it dynamic). The first output is the vector: N x D as is, N x C x H x W average-pooled over H, W,
anything else flattened per image.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tsnegrid.embed.base import to_unit_range
from tsnegrid.errors import ModelError

DEFAULT_SIZE = 224
MAX_LANES = 4
"""Most sessions one embedder runs at once (each holds the weights: about 20 MB for Lite0)."""
LANE_IMAGES = 8
"""Fewest images a lane is given: a batch of 32 splits into at most 4 parts."""


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
        self._lanes: list[Any] = []
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def lanes(self) -> tuple[int, int]:
        """Sessions that run parts of a batch at once, and the threads of each: ``threads``
        (0: all cores) split into at most ``MAX_LANES`` sessions. Sessions of their own
        threads scale better on shared cores than one session's threads, which wait for each
        other at every operator (2 cores, loaded: 64 against 43 images/s, the same vectors)."""
        total = self.threads or (os.cpu_count() or 1)
        n = max(1, min(MAX_LANES, total))
        return n, max(1, total // n)

    def _open(self, threads: int) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between operators: the embed stage's decoding threads share the
        # cores (measured: 9.7 against 8.4 images/s embedding 12-MP JPEGs on 2 cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            return ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{self.path}: cannot load ONNX model ({exc})") from exc

    @property
    def session(self) -> Any:
        """The first lane's ONNX Runtime session, opened on first use: a build whose vectors
        are all cached never imports onnxruntime (0.2 s) nor loads the model."""
        if self._session is None:
            session = self._open(self.lanes[1])
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

    def _sessions(self, n: int) -> list[Any]:
        """The first ``n`` lanes' sessions (opened as first needed) and their threads."""
        with self._lock:
            if not self._lanes:
                self._lanes = [self.session]
            while len(self._lanes) < n:
                self._lanes.append(self._open(self.lanes[1]))
            if self._pool is None and self.lanes[0] > 1:
                self._pool = ThreadPoolExecutor(self.lanes[0] - 1,
                                                thread_name_prefix="tsnegrid-lane")
            return self._lanes[:n]

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
        """B x C x H x W to B x D; a batch is split over the lanes (``lanes``), each part at
        least ``LANE_IMAGES`` images."""
        name = self.input_name
        sessions = self._sessions(max(1, min(self.lanes[0], len(batch) // LANE_IMAGES)))
        parts = np.array_split(batch, len(sessions))
        if len(sessions) == 1:
            outs = [sessions[0].run(None, {name: batch})[0]]
        else:
            assert self._pool is not None
            rest = [self._pool.submit(s.run, None, {name: x})
                    for s, x in zip(sessions[1:], parts[1:], strict=True)]
            outs = [sessions[0].run(None, {name: parts[0]})[0]]
            outs += [f.result()[0] for f in rest]
        out = np.concatenate([np.asarray(o, dtype=np.float32) for o in outs])
        if out.ndim == 4:
            out = out.mean(axis=(2, 3))
        return out.reshape(len(batch), -1)
