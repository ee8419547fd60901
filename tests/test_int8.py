"""The int8 Lite0: shipped, close to the float model, calibrated on images anyone can remake."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import DEMO
from tsnegrid.concepts import classify
from tsnegrid.embed import make_embedder
from tsnegrid.embed.lite0 import INT8_MODEL_ID, MODEL_ID
from tsnegrid.load import open_image


def test_int8_vectors_are_close_to_the_float_ones(tmp_path: Path) -> None:
    paths = sorted((DEMO / "images").glob("*.png"))[::128]
    fp, q = make_embedder("lite0", tmp_path), make_embedder("lite0-int8", tmp_path)
    assert q.model_id == INT8_MODEL_ID != MODEL_ID == fp.model_id
    x = np.stack([fp.preprocess(open_image(p, min_side=224)) for p in paths])
    a, b = fp.embed_batch(x), q.embed_batch(x)
    assert a.shape == b.shape == (len(paths), 1280)
    cos = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    # measured 0.96 mean, 0.89 least on the demo (benchmarks/int8.py); far below, the model or
    # its calibration broke (8-bit weights on x86 without VNNI gave 0.84)
    assert cos.mean() > 0.92 and cos.min() > 0.8, cos
    assert classify(b, q.model_id) is None  # its own classifier head: none


def test_calibration_inputs_are_the_same_each_time() -> None:
    from tsnegrid.embed.quantize import CROPS, calibration_inputs

    one, two = list(calibration_inputs()), list(calibration_inputs())
    assert len(one) == CROPS + 16
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert all(a.shape == (3, 224, 224) for a in one)
