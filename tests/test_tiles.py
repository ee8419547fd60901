"""Tiles made in the embed pass: kept in the cache, pasted by the render instead of decoding the
originals, with the mosaic and the vectors as before."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tsnegrid.embed as embed_mod
from tsnegrid.embed import EmbedConfig, EmbeddingCache, embed_images, make_embedder
from tsnegrid.embed import batches as batches_mod
from tsnegrid.embed.cache import SCHEMA
from tsnegrid.embed.thumbs import CachedTiles
from tsnegrid.load import AlphaTally, open_image, open_images
from tsnegrid.render import mosaic as mosaic_mod
from tsnegrid.render.mosaic import render_mosaic, tile_loader
from tsnegrid.tiles import TileSpec

TILE = 24


def photo(path: Path, seed: int, size: tuple[int, int], **save: object) -> Path:
    """A smooth random 'photo' (a low-resolution noise field enlarged), saved by suffix."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    small.resize(size, Image.Resampling.BICUBIC).save(path, **save)
    return path


def clear_png(path: Path, colour: tuple[int, int, int]) -> Path:
    """A mostly transparent PNG: a small opaque square in the middle."""
    arr = np.zeros((40, 40, 4), dtype=np.uint8)
    arr[15:25, 15:25] = (*colour, 255)
    Image.fromarray(arr, "RGBA").save(path)
    return path


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    d = tmp_path / "img"
    d.mkdir()
    turned = Image.Exif()
    turned[0x0112] = 6  # shown turned a quarter
    return [photo(d / "big.jpg", 1, (1600, 1200), quality=90),
            photo(d / "mid.jpg", 2, (700, 500), quality=90),
            photo(d / "turned.jpg", 3, (900, 600), quality=90, exif=turned),
            photo(d / "flat.png", 4, (300, 200)),
            clear_png(d / "clear.png", (250, 250, 250)),
            photo(d / "small.png", 5, (20, 16))]


def _embed(paths: list[Path], cache_dir: Path, tile: int = TILE, fit: bool = False,
           model: str = "pixels") -> embed_mod.Embedded:
    config = EmbedConfig(model=model, cache_dir=cache_dir, tile=tile, fit=fit, batch_size=4)
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
    try:
        return embed_images(paths, make_embedder(model, cache_dir), cache, config=config)
    finally:
        cache.close()


def _mosaics(paths: list[Path], cache_dir: Path, fit: bool,
             ) -> tuple[NDArrayU8, NDArrayU8, AlphaTally, AlphaTally]:
    spec = TileSpec(TILE, fit, (255, 255, 255))
    cells = np.arange(len(paths))
    tally_a, tally_b = AlphaTally(spec.background), AlphaTally(spec.background)
    plain, failed = render_mosaic(paths, cells, 2, 3, tile=TILE, fit=fit, alpha=tally_a)
    source = CachedTiles(cache_dir, spec)
    try:
        cached, failed2 = render_mosaic(
            paths, cells, 2, 3, tile=TILE, fit=fit, alpha=tally_b,
            load_tile=tile_loader(spec, alpha=tally_b, source=source))
    finally:
        source.close()
    assert failed == failed2 == []
    return (np.asarray(plain, dtype=np.int16), np.asarray(cached, dtype=np.int16), tally_a,
            tally_b)


NDArrayU8 = np.ndarray


@pytest.mark.parametrize("fit", [False, True])
def test_mosaic_from_cached_tiles_matches_the_originals(images: list[Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        fit: bool) -> None:
    _embed(images, tmp_path / "c", fit=fit)
    opened: list[str] = []
    real = mosaic_mod.open_image

    def counting(path: str | Path, **kw: object) -> Image.Image:
        opened.append(str(path))
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mosaic_mod, "open_image", counting)
    plain, cached, tally_a, tally_b = _mosaics(images, tmp_path / "c", fit)
    assert len(opened) == len(images)  # the plain render decoded each; the cached one none
    diff = np.abs(plain - cached)
    # stored as JPEG at quality 95, 4:4:4; where the embed pass decoded a JPEG at another DCT
    # scale than the render would, the tile differs a little more
    assert diff.mean() < 2.0, diff.mean()
    assert np.percentile(diff, 99) < 16
    # the alpha verdicts travel with the tiles
    assert (tally_b.count, tally_b.faint) == (tally_a.count, tally_a.faint) == (1, 1)
    assert tally_b.luma == pytest.approx(tally_a.luma)


def test_vectors_are_the_same_with_tiles(images: list[Path], tmp_path: Path) -> None:
    plain = _embed(images, tmp_path / "a", tile=0)
    tiled = _embed(images, tmp_path / "b", tile=TILE)
    big = _embed(images, tmp_path / "c", tile=300)  # tiles larger than the model's 32 px
    np.testing.assert_array_equal(plain.kept, tiled.kept)
    np.testing.assert_allclose(tiled.vectors, plain.vectors, atol=1e-6)
    np.testing.assert_allclose(big.vectors, plain.vectors, atol=1e-6)
    source = CachedTiles(tmp_path / "c", TileSpec(300))
    try:
        assert all(source.get(p) is not None for p in images)
    finally:
        source.close()


def test_cached_vectors_get_their_tiles_without_inference(images: list[Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    first = _embed(images, tmp_path / "c", tile=0)
    assert first.n_computed == len(images)
    seen: list[bool] = []
    real = batches_mod._decode

    def spy(path: Path, embedder: object, config: EmbedConfig, vector: bool = True) -> object:
        seen.append(vector)
        return real(path, embedder, config, vector)  # type: ignore[arg-type]

    monkeypatch.setattr(batches_mod, "_decode", spy)
    again = _embed(images, tmp_path / "c", tile=TILE)
    assert again.n_computed == 0 and seen == [False] * len(images)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    seen.clear()
    _embed(images, tmp_path / "c", tile=TILE)  # everything kept: nothing decoded
    assert seen == []


def test_unchanged_files_are_not_hashed_again(images: list[Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _embed(images, tmp_path / "c")
    hashed: list[str] = []
    real = embed_mod.content_digest

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(embed_mod, "content_digest", counting)
    _embed(images, tmp_path / "c")
    assert hashed == []
    source = CachedTiles(tmp_path / "c", TileSpec(TILE))
    try:
        before = source.get(images[3])
        photo(images[3], 99, (300, 200))  # rewritten: another picture
        assert source.get(images[3]) is None  # never the old picture's tile
        again = _embed(images, tmp_path / "c")
        assert hashed == ["flat.png"] and again.n_computed == 1
        after = source.get(images[3])
        assert before is not None and after is not None and after.data != before.data
    finally:
        source.close()


def test_open_images_decodes_once_for_every_side(tmp_path: Path) -> None:
    big = photo(tmp_path / "b.jpg", 1, (2400, 1800), quality=90)
    flat = photo(tmp_path / "f.png", 2, (900, 700))
    for path in (big, flat):
        model, tile = open_images(path, (224, 64))
        assert model is not None and tile is not None
        assert np.array_equal(np.asarray(model), np.asarray(open_image(path, min_side=224)))
        # the same DCT scale (1/8 for both here), or no draft at all: the same pixels
        assert np.array_equal(np.asarray(tile), np.asarray(open_image(path, min_side=64)))
    # decoded at 1/8 for a 32 px side, the 300 x 225 frame has too few pixels for 256
    small, large = open_images(big, (32, 256))
    assert small is not None and large is None


def test_decodes_stay_within_the_queue_bound(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [photo(tmp_path / f"{i}.png", i, (40, 30)) for i in range(40)]
    started: list[int] = []
    real = batches_mod._decode
    index = {p: i for i, p in enumerate(paths)}

    def spy(path: Path, *args: object) -> object:
        started.append(index[path])
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(batches_mod, "_decode", spy)
    config = EmbedConfig(model="pixels", cache_dir=tmp_path, batch_size=4)
    embedder = make_embedder("pixels", tmp_path)
    n = 0
    for k, batch in enumerate(batches_mod.iter_outcomes(paths, embedder, config)):
        n += len(batch)
        # batch k is out; the decodes started reach at most AHEAD batches past the next one
        assert max(started) < (k + 2 + batches_mod.AHEAD) * 4
    assert n == len(paths) and sorted(started) == list(range(len(paths)))


def test_a_damaged_tile_is_decoded_again(images: list[Path], tmp_path: Path) -> None:
    _embed(images[:1], tmp_path / "c")
    with sqlite3.connect(tmp_path / "c" / "embeddings.sqlite") as conn:
        conn.execute("UPDATE tiles SET tile = ?", (b"not a jpeg",))
    spec = TileSpec(TILE)
    source = CachedTiles(tmp_path / "c", spec)
    try:
        tile = tile_loader(spec, source=source)(images[0])
    finally:
        source.close()
    assert tile.size == (TILE, TILE)


def test_cache_format_is_versioned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = tmp_path / "v1.sqlite"  # a cache of vectors only, as written before tiles
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE vectors (model TEXT NOT NULL, digest TEXT NOT NULL, "
                     "vec BLOB NOT NULL, PRIMARY KEY (model, digest))")
        conn.execute("INSERT INTO vectors VALUES ('m', 'd', ?)",
                     (np.ones(3, np.float32).tobytes(),))
    cache = EmbeddingCache(old)
    assert list(cache.get_many("m", ["d"])["d"]) == [1, 1, 1]  # its vectors stay valid
    cache.close()
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA
        conn.execute(f"PRAGMA user_version = {SCHEMA + 1}")
    with caplog.at_level(logging.WARNING):
        newer = EmbeddingCache(old)
    assert newer.conn is None and "newer tsnegrid" in caplog.text
    assert newer.get_many("m", ["d"]) == {}


def test_a_build_renders_from_the_tiles(images: list[Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from tsnegrid.pipeline import build
    from tsnegrid.settings import Settings

    s = Settings(model="pixels", cache_dir=tmp_path / "c", tile=TILE, tiles=True, refine="off")
    build(images, tmp_path / "one", s)
    opened: list[str] = []
    real = mosaic_mod.open_image
    monkeypatch.setattr(mosaic_mod, "open_image",
                        lambda p, **kw: opened.append(str(p)) or real(p, **kw))
    layout = build(images, tmp_path / "two", s)
    assert opened == [] and layout.undrawn == ()
    a = np.asarray(Image.open(tmp_path / "one" / "grid.jpg"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "two" / "grid.jpg"), dtype=np.int16)
    assert np.array_equal(a, b)
    assert os.path.isfile(tmp_path / "two" / "grid.dzi")


def test_file_records_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tsnegrid.embed.cache as cache_mod

    monkeypatch.setattr(cache_mod, "MAX_FILES", 8)
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    try:
        for i in range(20):
            cache.put_digests({f"/f{i}": ("s", f"d{i}")})
        kept = cache.known_digests({f"/f{i}": "s" for i in range(20)})
    finally:
        cache.close()
    assert 0 < len(kept) <= 8 and "/f19" in kept and "/f0" not in kept


def test_uploads_embedded_without_tiles_leave_no_file_records(images: list[Path],
                                                              tmp_path: Path) -> None:
    _embed(images, tmp_path / "c", tile=0)  # as the service embeds its temporary files
    with sqlite3.connect(tmp_path / "c" / "embeddings.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == 0
