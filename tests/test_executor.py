"""Dask scale-out: a 2-worker LocalCluster gives the same results as the in-process run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tsnegrid import Settings, build
from tsnegrid.embed import embed_images, make_embedder
from tsnegrid.embed.config import EmbedConfig
from tsnegrid.embed.executor import LocalExecutor, make_executor
from tsnegrid.errors import InputError

pytest.importorskip("distributed")


def test_make_executor_choices() -> None:
    assert isinstance(make_executor("", 0), LocalExecutor)
    with pytest.raises(InputError, match="workers"):
        make_executor("", -1)


def test_two_worker_cluster_matches_single_process(emoji_dir: Path, cache_dir: Path,
                                                  tmp_path: Path) -> None:
    (emoji_dir / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    local = build([emoji_dir], None, Settings(cache_dir=tmp_path / "a", model="pixels"))
    dask = build([emoji_dir], None, Settings(cache_dir=tmp_path / "b", model="pixels",
                                             workers=2))
    assert local.paths == dask.paths and len(local.paths) == 24
    np.testing.assert_array_equal(local.cells, dask.cells)
    assert [s.path for s in dask.skipped] == [str(emoji_dir / "corrupt.png")]


def test_cluster_lite0_vectors_match(emoji_dir: Path, cache_dir: Path) -> None:
    paths = sorted(emoji_dir.iterdir())[:12]
    embedder = make_embedder("lite0", cache_dir)
    config = EmbedConfig("lite0", cache_dir, batch_size=8)
    local = embed_images(paths, embedder, config=config)
    executor = make_executor("", 2)
    try:
        remote = embed_images(paths, embedder, config=config, executor=executor)
    finally:
        executor.close()
    np.testing.assert_allclose(local.vectors, remote.vectors, rtol=1e-4, atol=1e-4)
