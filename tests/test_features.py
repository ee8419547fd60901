"""Feature mixes: the colour descriptor, the mixed embedder, its cache key and the settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import emoji_subset, solid
from tsnegrid import Settings, build
from tsnegrid.cli import cli
from tsnegrid.embed import embed_images, make_embedder
from tsnegrid.embed.cache import EmbeddingCache
from tsnegrid.embed.features import COLOUR_DIMS, MixedEmbedder, colour_descriptor, mix_id
from tsnegrid.errors import InputError


def test_colour_descriptor_separates_colours() -> None:
    red = colour_descriptor(Image.new("RGB", (50, 40), (220, 20, 20)))
    red2 = colour_descriptor(Image.new("RGB", (64, 64), (200, 30, 30)))
    blue = colour_descriptor(Image.new("RGB", (64, 64), (20, 20, 220)))
    assert red.shape == (COLOUR_DIMS,) and red.dtype == np.float32
    assert np.linalg.norm(red - red2) < 0.3 * np.linalg.norm(red - blue)


def test_colour_vectors_group_solid_images(tmp_path: Path, cache_dir: Path) -> None:
    paths = [solid(tmp_path / f"r{i}.png", (200 + 10 * i, 10, 10)) for i in range(3)]
    paths += [solid(tmp_path / f"g{i}.png", (10, 200 + 10 * i, 10)) for i in range(3)]
    emb = embed_images(paths, make_embedder("lite0", cache_dir, features="colour"))
    d = np.linalg.norm(emb.vectors[:, None] - emb.vectors[None], axis=-1)
    assert d[:3, :3].max() < d[:3, 3:].min()


def test_both_mixes_unit_parts_and_keys_the_cache(tmp_path: Path, cache_dir: Path) -> None:
    paths = emoji_subset(tmp_path / "e", 6)
    base = make_embedder("lite0", cache_dir)
    mixed = make_embedder("lite0", cache_dir, features="both", colour_weight=0.5)
    assert isinstance(mixed, MixedEmbedder)
    assert mixed.model_id == f"{base.model_id}+colour-v1x0.5" != base.model_id
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    try:
        sem = embed_images(paths, base, cache)
        both = embed_images(paths, mixed, cache)
        assert both.n_computed == len(paths)  # nothing reused from the semantic rows
        again = embed_images(paths, mixed, cache)
        assert again.n_computed == 0
    finally:
        cache.close()
    d = sem.vectors.shape[1]
    assert both.vectors.shape == (6, d + COLOUR_DIMS)
    np.testing.assert_allclose(np.linalg.norm(both.vectors[:, :d], axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(both.vectors[:, d:], axis=1), 0.5, atol=1e-5)
    unit = sem.vectors / np.linalg.norm(sem.vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(both.vectors[:, :d], unit, atol=1e-4)


def test_semantic_keeps_the_model_id() -> None:
    assert mix_id("m", "semantic", 0.5) == "m"
    assert mix_id("m", "colour", 2) == "colour-v1"


def test_build_with_colour_features(tmp_path: Path, cache_dir: Path) -> None:
    paths = emoji_subset(tmp_path / "e", 12)
    layout = build(paths, settings=Settings(cache_dir=cache_dir, features="colour"))
    assert layout.model_id == "colour-v1" and len(layout.paths) == 12


def test_unknown_features_rejected() -> None:
    with pytest.raises(InputError, match="features must be one of"):
        Settings(features="texture")


def test_bad_colour_weight_rejected() -> None:
    with pytest.raises(InputError, match="colour_weight"):
        Settings(colour_weight=0)


def test_cli_takes_a_float_weight(tmp_path: Path, cache_dir: Path) -> None:
    emoji_subset(tmp_path / "e", 6)
    res = CliRunner().invoke(cli, ["-q", "build", str(tmp_path / "e"), "--out", str(tmp_path / "o"),
                                    "--features", "both", "--colour-weight", "0.25",
                                    "--cache-dir", str(cache_dir)])
    assert res.exit_code == 0, res.output
    assert "colour-v1x0.25" in (tmp_path / "o" / "layout.json").read_text()
