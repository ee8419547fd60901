"""Vectors out (``tsnegrid embed``): the build's embedding written with its paths, and fed back
with ``--vectors`` to the same layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import emoji_subset
from tsnegrid.cli import cli
from tsnegrid.embed import EmbedConfig
from tsnegrid.embed.vectors import concepts_file, export_vectors, paths_file
from tsnegrid.errors import InputError
from tsnegrid.pipeline import build
from tsnegrid.settings import Settings


def _same_layout(a: object, b: object) -> None:
    assert np.array_equal(a.cells, b.cells)  # type: ignore[attr-defined]
    assert np.array_equal(a.coords, b.coords)  # type: ignore[attr-defined]
    assert (a.rows, a.cols) == (b.rows, b.cols)  # type: ignore[attr-defined]
    assert [Path(p).resolve() for p in a.paths] == [  # type: ignore[attr-defined]
        Path(p).resolve() for p in b.paths]  # type: ignore[attr-defined]


def test_round_trip_gives_the_same_layout(tmp_path: Path, cache_dir: Path) -> None:
    """lite0 with the default feature mix: build from the images, then from the exported
    vectors; the embedding comes from the cache the build filled."""
    images = emoji_subset(tmp_path / "img", 24)
    (tmp_path / "img" / "broken.png").write_bytes(b"not a png")
    settings = Settings(cache_dir=cache_dir, tile=8)
    direct = build([tmp_path / "img"], None, settings)
    done = export_vectors([tmp_path / "img"], tmp_path / "v.npy", settings)
    assert done.computed == 0  # same cache, same model and settings as the build
    vectors = np.load(tmp_path / "v.npy")
    assert vectors.dtype == np.float32 and vectors.shape == (24, done.dim)
    assert (done.n, done.model_id) == (24, direct.model_id) and done.dim > 1280
    listed = [ln for ln in paths_file(tmp_path / "v.npy").read_text().splitlines()
              if not ln.startswith("#")]
    assert [Path(p) for p in listed] == [p.resolve() for p in images]  # broken.png is out
    assert [s.path for s in done.skipped] == [str(tmp_path / "img" / "broken.png")]
    assert done.concepts == concepts_file(tmp_path / "v.npy")
    written = json.loads(done.concepts.read_text())
    assert direct.concepts is not None and written["model"] == direct.concepts.model_id
    assert written["images"] == [direct.concepts.records(i) for i in range(24)]
    again = build([paths_file(tmp_path / "v.npy")], None, settings, vectors=tmp_path / "v.npy")
    _same_layout(direct, again)
    assert again.metrics == direct.metrics
    # the concepts written beside the vectors come back, and with them the same regions
    assert again.concepts is not None and again.regions is not None and direct.regions
    np.testing.assert_array_equal(again.concepts.ids, direct.concepts.ids)
    np.testing.assert_allclose(again.concepts.values, direct.concepts.values, atol=1e-4)
    assert [r.name for r in again.regions.regions] == [r.name for r in direct.regions.regions]


def test_cli_embed_then_build_from_the_vectors(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 20)
    opts = ["--model", "pixels", "--features", "semantic", "--cache-dir", str(tmp_path / "c")]
    run = CliRunner().invoke(cli, ["embed", str(tmp_path / "img"), "--out",
                                   str(tmp_path / "out" / "v.npy"), *opts], obj={})
    assert run.exit_code == 0, run.output
    assert "embedded 20 images (3072-d" in run.output
    head = paths_file(tmp_path / "out" / "v.npy").read_text().splitlines()[:2]
    assert head[0].startswith("# tsnegrid embed: 20 images") and head[1] == "# model: pixels-32"
    run = CliRunner().invoke(cli, ["build", str(tmp_path / "out" / "v.paths.txt"), "--vectors",
                                   str(tmp_path / "out" / "v.npy"), "--out",
                                   str(tmp_path / "grid"), "--tile", "8"], obj={})
    assert run.exit_code == 0, run.output
    direct = build([tmp_path / "img"], None, Settings(model="pixels", features="semantic",
                                                      cache_dir=tmp_path / "c", tile=8))
    again = build([tmp_path / "out" / "v.paths.txt"], None, Settings(tile=8),
                  vectors=tmp_path / "out" / "v.npy")
    _same_layout(direct, again)


def test_embed_takes_exactly_the_embed_stage_options() -> None:
    from tsnegrid.cli import embed_cmd

    # --debug and --quiet (debug_here, quiet_here) are every command's own, not settings
    names = {p.name for p in embed_cmd.params} - {"sources", "out", "debug_here", "quiet_here"}
    assert names == set(EmbedConfig.SETTINGS)
    # and those are the settings EmbedConfig reads: changing any other one changes nothing
    base = EmbedConfig.from_settings(Settings())
    assert EmbedConfig.from_settings(Settings(tile=8, grid="3x3", seed=4, reducer="pca",
                                              html=True, dedupe=0.9, refine="off")) == base
    for name, value in [("model", "pixels"), ("features", "colour"), ("colour_weight", 0.5),
                        ("background", "#000000"), ("batch_size", 3), ("threads", 1),
                        ("workers", 2), ("scheduler", "tcp://127.0.0.1:1"),
                        ("max_image_pixels", 99), ("cache_dir", Path("/tmp/elsewhere"))]:
        assert EmbedConfig.from_settings(Settings(**{name: value})) != base, name


def test_out_must_be_npy(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 2)
    run = CliRunner().invoke(cli, ["embed", str(tmp_path / "img"), "--out",
                                   str(tmp_path / "v.txt"), "--model", "pixels"], obj={})
    assert run.exit_code == 2 and "v.txt: the vectors file must end in .npy" in run.output
    assert not (tmp_path / "v.txt").exists()


def test_no_images_exits_3(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    run = CliRunner().invoke(cli, ["embed", str(tmp_path / "empty"), "--out",
                                   str(tmp_path / "v.npy")], obj={})
    assert run.exit_code == 3 and "no image files found" in run.output


def test_a_name_a_list_file_cannot_hold_is_refused_before_embedding(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 2)
    odd = tmp_path / "img" / "two\nlines.png"
    odd.write_bytes((tmp_path / "img" / sorted(p.name for p in (tmp_path / "img").iterdir()
                                               )[0]).read_bytes())
    with pytest.raises(InputError, match="line break"):
        export_vectors([tmp_path / "img"], tmp_path / "v.npy",
                       Settings(model="pixels", cache_dir=tmp_path / "c"))
    assert not (tmp_path / "v.npy").exists() and not (tmp_path / "c").exists()


def test_a_concepts_file_of_other_rows_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    emoji_subset(tmp_path / "img", 4)
    settings = Settings(cache_dir=cache_dir, tile=8)
    done = export_vectors([tmp_path / "img"], tmp_path / "v.npy", settings)
    assert done.concepts is not None
    doc = json.loads(done.concepts.read_text())
    done.concepts.write_text(json.dumps({**doc, "images": doc["images"][:3]}))
    with pytest.raises(InputError, match="expected 4 rows of concepts"):
        build([paths_file(tmp_path / "v.npy")], None, settings, vectors=tmp_path / "v.npy")
