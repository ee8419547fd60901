"""A model's ImageNet classifier head as package data: ``logits = W v + b``, then softmax.

EfficientNet-Lite0's vector (the globally average-pooled output of ``extract_features``) is the
input of its own classifier: in eval mode the model's forward is pool -> dropout (identity) ->
``_fc``. So the head applied to a cached vector gives the full model's probabilities with no
second forward pass. The head of each model lives beside its ONNX file, in
``tsnegrid/embed/models/<model id>-fc-v<N>.npz`` (``weight`` float16, ``bias`` float32,
``model_id``; under the same notice), written by ``tsnegrid.embed.export``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import ModelError

HEAD_VERSION = 1
MODELS_DIR = Path(__file__).resolve().parents[1] / "embed" / "models"
"""Package data of the embed stage (a path, not an import: this package imports no stage)."""


def head_path(model_id: str) -> Path:
    """Where the package keeps the head of ``model_id``."""
    return MODELS_DIR / f"{model_id}-fc-v{HEAD_VERSION}.npz"


@dataclass(frozen=True, eq=False)
class Head:
    """A linear classifier over a model's vector: C x D weights and C biases."""

    model_id: str
    weight: NDArray[np.float32]
    bias: NDArray[np.float32]

    @property
    def dims(self) -> int:
        return int(self.weight.shape[1])

    def probabilities(self, vectors: NDArray[np.floating]) -> NDArray[np.float32]:
        """N x D vectors (the model's own, unnormalised) to N x C softmax probabilities."""
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.dims:
            raise ModelError(f"the {self.model_id} head takes N x {self.dims} vectors, got "
                             f"{v.shape}")
        logits = v @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits


def save_head(path: Path, model_id: str, weight: NDArray[np.floating],
              bias: NDArray[np.floating]) -> None:
    """Write a head file (weights stored as float16: half the size, probabilities within 1e-4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, weight=np.asarray(weight, dtype=np.float16),
                        bias=np.asarray(bias, dtype=np.float32), model_id=np.array(model_id))


@lru_cache(maxsize=4)
def load_head(model_id: str) -> Head | None:
    """The shipped head of ``model_id``; None when that model has none (pixels, colour, a mix
    without an ImageNet model, any other ONNX file)."""
    path = head_path(model_id)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = str(f["model_id"])
            weight = f["weight"].astype(np.float32)
            bias = f["bias"].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: cannot read the classifier head ({exc}); reinstall "
                         "tsnegrid") from exc
    if stored != model_id or weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ModelError(f"{path}: not the classifier head of {model_id}; reinstall tsnegrid")
    return Head(model_id, weight, bias)
