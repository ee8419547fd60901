"""Embedding: the real Lite0 model through ONNX Runtime, the cache, and unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import emoji_subset, noise
from tsnegrid.embed import embed_images, make_embedder
from tsnegrid.embed.cache import EmbeddingCache
from tsnegrid.embed.config import EmbedConfig
from tsnegrid.embed.lite0 import onnx_path
from tsnegrid.errors import InputError, ModelError


def test_lite0_onnx_matches_eager_torch(cache_dir: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from efficientnet_lite_pytorch import EfficientNet

    from tsnegrid.embed.export import weights_path
    from tsnegrid.load import open_image

    embedder = make_embedder("lite0", cache_dir)
    img = open_image(emoji_subset(tmp_path / "e", 1)[0])
    x = embedder.preprocess(img)[None]
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(weights_path(), weights_only=True), strict=True)
    with torch.no_grad():
        ref = net.eval().extract_features(torch.from_numpy(x)).mean(dim=(2, 3)).numpy()
    out = embedder.embed_batch(x)
    assert out.shape == (1, 1280)
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3)
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_lite0_runs_the_shipped_file_without_torch(cache_dir: Path) -> None:
    path, model_id = onnx_path(cache_dir)
    assert path.is_file() and path.parent.name == "models"
    assert model_id in path.name and "s224" in path.name
    assert (path.parent / "NOTICE.md").is_file()
    assert (path.parent / "LICENSE-Apache-2.0.txt").is_file()


def test_rerun_embeds_nothing_new_and_skips_bad_files(cache_dir: Path, tmp_path: Path) -> None:
    paths = emoji_subset(tmp_path / "e", 6)
    (tmp_path / "bad.png").write_text("not an image")
    (tmp_path / "zero.png").write_bytes(b"")
    paths = [*paths[:3], tmp_path / "bad.png", *paths[3:], tmp_path / "zero.png"]
    embedder = make_embedder("lite0", cache_dir)
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    first = embed_images(paths, embedder, cache,
                         config=EmbedConfig("lite0", cache_dir, batch_size=4))
    assert first.n_computed == 6 and first.vectors.shape == (6, 1280)
    assert list(first.kept) == [0, 1, 2, 4, 5, 6]
    assert {s.reason for s in first.skipped} == {"not an image file (unrecognised format)",
                                                 "empty file (0 bytes)"}
    second = embed_images(paths, embedder, cache)
    assert second.n_computed == 0
    np.testing.assert_array_equal(first.vectors, second.vectors)
    # Over cached images only, a fresh embedder never opens the model (nor imports
    # onnxruntime); the unreadable files above are tried again on every run.
    fresh = make_embedder("lite0", cache_dir)
    good = [p for i, p in enumerate(paths) if i in set(first.kept.tolist())]
    third = embed_images(good, fresh, cache)
    assert third.n_computed == 0 and fresh._session is None
    np.testing.assert_array_equal(first.vectors, third.vectors)


def test_pixels_model_and_generic_onnx_model(cache_dir: Path, tmp_path: Path) -> None:
    paths = [noise(tmp_path / f"n{i}.png", i) for i in range(3)]
    pix = embed_images(paths, make_embedder("pixels", cache_dir))
    assert pix.vectors.shape == (3, 32 * 32 * 3)
    path, _ = onnx_path(cache_dir)
    generic = make_embedder(str(path), cache_dir)
    assert generic.model_id.startswith("onnx-") and generic.input_size == 224
    assert embed_images(paths, generic).vectors.shape == (3, 1280)


def test_unknown_model_and_missing_onnx_file(cache_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown model 'resnet'"):
        make_embedder("resnet", cache_dir)
    with pytest.raises(ModelError, match="no such model file"):
        make_embedder(str(tmp_path / "missing.onnx"), cache_dir)
