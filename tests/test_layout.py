"""The Layout in a notebook: ``_repr_html_`` shows a small thumbnail of the mosaic and the
metrics."""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import emoji_subset
from tsnegrid.layout import THUMBNAIL, Layout
from tsnegrid.pipeline import build
from tsnegrid.settings import Settings


def _coords_build(tmp_path: Path, n: int, out: Path | None, **kw: object) -> Layout:
    emoji_subset(tmp_path / "img", n)
    np.save(tmp_path / "c.npy", np.random.default_rng(0).normal(size=(n, 2)))
    return build([tmp_path / "img"], out, Settings(**kw), coords=tmp_path / "c.npy")  # type: ignore[arg-type]


def _thumbnail(page: str) -> Image.Image | None:
    m = re.search(r"src='data:image/jpeg;base64,([A-Za-z0-9+/=]+)'", page)
    return Image.open(io.BytesIO(base64.b64decode(m.group(1)))) if m else None


def test_a_rendered_layout_shows_its_mosaic_and_metrics(tmp_path: Path) -> None:
    layout = _coords_build(tmp_path, 40, tmp_path / "out", tile=64)
    assert layout.mosaic == str(tmp_path / "out" / "grid.jpg")
    page = layout._repr_html_()
    thumb = _thumbnail(page)
    assert thumb is not None and max(thumb.size) == THUMBNAIL
    mosaic = Image.open(layout.mosaic).convert("RGB").resize(thumb.size)
    diff = np.abs(np.asarray(thumb, float) - np.asarray(mosaic, float)).mean()
    assert diff < 8  # the grid itself, shrunk, not some other picture
    assert f"<td style='text-align:left'>{layout.rows} x {layout.cols}</td>" in page
    for name, value in layout.metrics.items():
        assert f">{name}</th><td style='text-align:left'>{value:.4g}<" in page


def test_without_a_mosaic_only_the_table(tmp_path: Path) -> None:
    layout = _coords_build(tmp_path, 12, None)
    assert layout.mosaic == ""
    page = layout._repr_html_()
    assert "<img" not in page and "images placed" in page and "dpq16" in page
    gone = replace(layout, mosaic=str(tmp_path / "moved-away.jpg"))
    assert "<img" not in gone._repr_html_()  # an unreadable file is no error in a notebook


def test_a_pyramid_only_build_shows_its_overview_tile(tmp_path: Path) -> None:
    layout = _coords_build(tmp_path, 40, tmp_path / "out", tile=64, tiles=True,
                           max_pixels=1000)
    assert not (tmp_path / "out" / "grid.jpg").exists()
    assert Path(layout.mosaic).is_file() and "grid_files" in layout.mosaic
    thumb = _thumbnail(layout._repr_html_())
    assert thumb is not None and np.asarray(thumb).std() > 20


def test_text_is_escaped(tmp_path: Path) -> None:
    layout = replace(_coords_build(tmp_path, 6, None), model_id="<b>x</b>")
    assert "<b>x</b>" not in layout._repr_html_() and "&lt;b&gt;x&lt;/b&gt;" in layout._repr_html_()


def test_layout_json_keeps_the_document_and_puts_a_record_per_line() -> None:
    from tsnegrid.output import layout_json

    doc = {"version": 1, "settings": {"seed": 3, "grid": "auto", "note": "a\nb"},
           "images": [{"path": "x/1.png", "row": 0}, {"path": "y \"2\".png", "row": 1}],
           "skipped": [], "regions": [{"name": "dog", "bbox": [0, 1, 2, 3]}]}
    text = layout_json(doc)
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert '  {"path": "x/1.png", "row": 0},' in lines
    assert '  {"name": "dog", "bbox": [0, 1, 2, 3]}' in lines
