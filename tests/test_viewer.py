"""The zoomable viewer: page data, wiring into the pipeline, and the page in a real Chromium."""

from __future__ import annotations

import csv
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import DEMO, emoji_subset
from tsnegrid.errors import InputError, OutputTooLargeError
from tsnegrid.layout import Layout
from tsnegrid.pipeline import build
from tsnegrid.render import viewer as viewer_mod
from tsnegrid.render.viewer import data as viewer_data_mod
from tsnegrid.render.viewer import viewer_data, write_viewer
from tsnegrid.render.viewer.data import chunk_key, unpack_ints
from tsnegrid.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 15_000
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="needs Debian's chromium at /usr/bin/chromium "
                                           "(.ci/run installs it)")


def _build(source: Path, out: Path, n: int, **kw: Any) -> Layout:
    """Build with --html from fixed 2-D points (no embedding needed to test the viewer)."""
    metadata = kw.pop("metadata", None)
    coords = out.parent / f"{out.name}-coords.npy"
    np.save(coords, np.random.default_rng(0).normal(size=(n, 2)))
    return build([source], out, Settings(html=True, **kw), coords=coords, metadata=metadata)


def _read_page_data(out: Path) -> dict[str, Any]:
    """The page's index (layout.js) with what its data files hold put back image by image
    (``paths``, ``hrefs``, ``cells``, each field's ``codes``, the concepts' ``codes`` and
    ``values``): what ``viewer_data`` gave, read back from the files the page loads."""
    text = (out / "layout.js").read_text(encoding="utf-8")
    assert text.startswith("window.TSNEGRID = ")
    data: dict[str, Any] = json.loads(text[len("window.TSNEGRID = "):].rstrip().rstrip(";"))
    n = data["n"]
    data["cells"] = unpack_ints(data["cells"]).tolist()
    data["paths"], data["hrefs"] = [""] * n, [""] * n
    for f in data["fields"]:
        f["codes"] = [-1] * n
    concepts = data["concepts"]
    if concepts:
        concepts["codes"], concepts["values"] = [-1] * n * concepts["k"], [0] * n * concepts["k"]
    seen = 0
    for path in sorted((out / "data").glob("c*.js")):
        key, chunk = _call_args(path, "tsnegridChunk")
        assert path.name == f"c{key}.js"
        for j, i in enumerate(chunk["images"]):
            assert f"c{chunk_key(data['cells'][i], data['cols'])}.js" == path.name
            data["paths"][i], data["hrefs"][i] = chunk["paths"][j], chunk["hrefs"][j]
            for f, codes in zip(data["fields"], chunk["fields"], strict=True):
                f["codes"][i] = codes[j] if f["values"] is not None else (
                    -1 if codes[j] is None else f.setdefault("wide", {}).setdefault(
                        codes[j], len(f["wide"])))
            if concepts:
                k = concepts["k"]
                concepts["codes"][i * k:(i + 1) * k] = chunk["concepts"]["codes"][j * k:(j + 1) * k]
                concepts["values"][i * k:(i + 1) * k] = chunk["concepts"]["values"][
                    j * k:(j + 1) * k]
            seen += 1
    assert seen == n
    return data


def _call_args(path: Path, call: str) -> list[Any]:
    """The arguments of a data file's one call (``call(a, b);``)."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith(call + "(") and text.rstrip().endswith(");")
    args: list[Any] = json.loads("[" + text[len(call) + 1:].rstrip().rstrip(";")[:-1] + "]")
    return args


# ---- page data and wiring (no browser) --------------------------------------------------------

def test_single_mosaic_site(tmp_path: Path) -> None:
    images = emoji_subset(tmp_path / "img", 12)
    layout = _build(tmp_path / "img", tmp_path / "out", 12, metadata=DEMO / "labels.csv")
    out = tmp_path / "out"
    for name in ("index.html", "layout.js", "layout.json", "grid.jpg", "viewer/viewer.js",
                 "viewer/openseadragon.min.js", "viewer/openseadragon.LICENSE.txt"):
        assert (out / name).is_file(), name
    assert not (out / "grid.dzi").exists()
    data = _read_page_data(out)
    assert data["source"] == {"type": "image", "url": "grid.jpg", "buildPyramid": True}
    r, c = layout.row_col
    assert data["cells"] == [int(x) for x in r * layout.cols + c]
    # links resolve from the page's folder to the originals
    assert [(out / h).resolve() for h in data["hrefs"]] == [p.resolve() for p in images]
    category = next(f for f in data["fields"] if f["name"] == "category")
    labels = {row["file"]: row for row in csv.DictReader(open(DEMO / "labels.csv"))}
    assert [category["values"][k] for k in category["codes"]] == [
        labels[Path(p).name]["category"] for p in layout.paths]
    assert category["colourable"]
    assert "file" not in [f["name"] for f in data["fields"]]


def test_tiles_site_uses_the_pyramid_inline(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 6)
    _build(tmp_path / "img", tmp_path / "out", 6, tiles=True)
    data = _read_page_data(tmp_path / "out")
    image = data["source"]["Image"]
    assert (image["Url"], image["TileSize"], image["Overlap"]) == ("grid_files/", "256", "0")
    assert (tmp_path / "out" / "grid.jpg").exists()
    assert data["fields"] == []


def test_large_html_grid_gets_a_pyramid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(viewer_data_mod, "SINGLE_IMAGE_MAX_SIDE", 100)
    emoji_subset(tmp_path / "img", 6)
    layout = _build(tmp_path / "img", tmp_path / "out", 6)
    assert (tmp_path / "out" / "grid.dzi").exists() and "pyramid" in layout.timings
    assert "Image" in _read_page_data(tmp_path / "out")["source"]


def test_tiles_skip_an_oversized_mosaic_and_plain_builds_still_refuse(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 6)
    layout = _build(tmp_path / "img", tmp_path / "out", 6, tiles=True, max_pixels=1000)
    assert "render" not in layout.timings and not (tmp_path / "out" / "grid.jpg").exists()
    assert (tmp_path / "out" / "grid.dzi").exists() and (tmp_path / "out" / "index.html").exists()
    with pytest.raises(OutputTooLargeError):
        _build(tmp_path / "img", tmp_path / "out2", 6, max_pixels=1000)


def test_cli_passes_metadata_through(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tsnegrid.cli import cli

    emoji_subset(tmp_path / "img", 5)
    np.save(tmp_path / "c.npy", np.random.default_rng(0).normal(size=(5, 2)))
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "img"), "--out", str(tmp_path / "o"),
                                      "--coords", str(tmp_path / "c.npy"), "--html", "--tiles",
                                      "--metadata", str(DEMO / "labels.csv")], obj={})
    assert result.exit_code == 0, result.output
    assert "grid.dzi" in result.output and "index.html" in result.output
    names = [f["name"] for f in _read_page_data(tmp_path / "o")["fields"]]
    assert names == ["name", "category", "subcategory"]


def test_service_style_inputs(tmp_path: Path) -> None:
    """A layout mapping, metadata as a mapping and links from a callback."""
    Image.new("RGB", (8, 8)).save(tmp_path / "grid.png")
    doc = {"grid": {"rows": 2, "cols": 3}, "settings": {"tile": 4, "format": "png"},
           "images": [{"path": "in/a", "row": 1, "col": 2}, {"path": "in/b", "row": 0, "col": 0}]}
    write_viewer(doc, tmp_path, metadata={"a": {"label": "cat"}, "in/b": {"label": "dog"}},
                 image_url=lambda p: f"/v2/inputs/{p}/image")
    data = _read_page_data(tmp_path)
    assert data["cells"] == [5, 0]
    assert data["hrefs"] == ["/v2/inputs/in/a/image", "/v2/inputs/in/b/image"]
    assert data["fields"][0]["codes"] == [0, 1]
    assert data["source"]["url"] == "grid.png"
    assert "<title>tsnegrid</title>" in (tmp_path / "index.html").read_text()


def test_title_is_escaped(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "grid.jpg")
    doc = {"grid": {"rows": 1, "cols": 1}, "settings": {"tile": 4}, "images": []}
    write_viewer(doc, tmp_path, title="<script>x</script>")
    assert "<script>x</script>" not in (tmp_path / "index.html").read_text()


def test_refused_without_a_grid_image(tmp_path: Path) -> None:
    doc = {"grid": {"rows": 1, "cols": 1}, "settings": {"tile": 4}, "images": []}
    with pytest.raises(InputError, match="no grid.dzi or grid image"):
        viewer_data(doc, tmp_path)


def test_refused_bad_metadata_before_any_work(tmp_path: Path) -> None:
    bad = tmp_path / "meta.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="list of objects"):
        build([tmp_path / "nothing"], tmp_path / "out", Settings(html=True), metadata=bad)


# ---- the page in Chromium ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The canonical demo (1,024 emoji with labels.csv) with the DZI pyramid."""
    out = tmp_path_factory.mktemp("demo-site")
    _build(DEMO / "images", out, 1024, tiles=True, metadata=DEMO / "labels.csv")
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def demo_page(browser: Any, demo_site: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto((demo_site / "index.html").as_uri())
    _wait_loaded(page)
    page.requests = requests  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors


def _wait_loaded(page: Any) -> None:
    page.wait_for_function("window.tsnegrid && tsnegrid.viewer.world.getItemCount() > 0 && "
                           "tsnegrid.viewer.world.getItemAt(0).getFullyLoaded()", timeout=WAIT_MS)


def _cell_centre(page: Any, row: float, col: float) -> tuple[float, float]:
    """Page coordinates of a grid cell's centre."""
    xy: list[float] = page.evaluate("""([row, col]) => {
        const t = TSNEGRID.tile, vp = tsnegrid.viewer.viewport;
        const p = vp.imageToViewerElementCoordinates(
            new OpenSeadragon.Point((col + 0.5) * t, (row + 0.5) * t));
        const box = tsnegrid.viewer.element.getBoundingClientRect();
        return [box.left + p.x, box.top + p.y];
    }""", [row, col])
    return xy[0], xy[1]


def _grid_pixels(page: Any) -> np.ndarray:
    import io

    box = page.locator("#osd").bounding_box()
    shot = Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB")
    return np.asarray(shot)


@needs_chromium
def test_tiles_render_offline(demo_page: Any) -> None:
    pixels = _grid_pixels(demo_page)
    assert pixels.std() > 30  # emoji, not a blank or single-colour canvas
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 500
    urls = demo_page.requests
    assert any("/grid_files/" in u for u in urls)
    assert all(u.startswith("file://") for u in urls), [u for u in urls
                                                        if not u.startswith("file://")]


@needs_chromium
def test_hover_shows_file_name_and_metadata(demo_page: Any, demo_site: Path) -> None:
    doc = json.loads((demo_site / "layout.json").read_text())
    image = doc["images"][100]
    name = Path(image["path"]).name
    label = {r["file"]: r for r in csv.DictReader(open(DEMO / "labels.csv"))}[name]
    demo_page.mouse.move(*_cell_centre(demo_page, image["row"], image["col"]))
    tip = demo_page.locator("#tip")
    tip.wait_for(state="visible", timeout=WAIT_MS)
    assert tip.locator(".name").inner_text() == name
    assert label["category"] in tip.inner_text() and label["name"] in tip.inner_text()


@needs_chromium
def test_ctrl_click_and_the_panel_link_open_the_original(demo_page: Any, demo_site: Path) -> None:
    image = json.loads((demo_site / "layout.json").read_text())["images"][7]
    with demo_page.context.expect_page(timeout=WAIT_MS) as popup:
        demo_page.keyboard.down("Control")
        demo_page.mouse.click(*_cell_centre(demo_page, image["row"], image["col"]))
        demo_page.keyboard.up("Control")
    url = popup.value.url
    assert url.startswith("file://") and url.endswith("/" + Path(image["path"]).name)
    assert Path(url[len("file://"):]).resolve() == Path(image["path"]).resolve()
    popup.value.close()
    demo_page.mouse.click(*_cell_centre(demo_page, image["row"], image["col"]))
    link = demo_page.locator("#similar-open")
    link.wait_for(state="visible", timeout=WAIT_MS)
    with demo_page.context.expect_page(timeout=WAIT_MS) as popup:
        link.click()
    assert Path(popup.value.url[len("file://"):]).resolve() == Path(image["path"]).resolve()


def _similar_figures(site: Path, i: int) -> tuple[list[int], int]:
    """Image i's look-alikes (from neighbors.npy) and how many sit within 3 cells of it."""
    doc = json.loads((site / "layout.json").read_text())
    near = np.load(site / "neighbors.npy")[i]
    cell = np.array([[im["row"], im["col"]] for im in doc["images"]])
    within = int((np.abs(cell[near] - cell[i]).max(axis=1) <= 3).sum())
    return [int(j) for j in near], within


@needs_chromium
def test_click_lights_up_the_look_alikes(demo_page: Any, demo_site: Path) -> None:
    doc = json.loads((demo_site / "layout.json").read_text())
    i = 300
    want, within = _similar_figures(demo_site, i)
    before = _grid_pixels(demo_page).mean()
    demo_page.mouse.click(*_cell_centre(demo_page, doc["images"][i]["row"],
                                        doc["images"][i]["col"]))
    demo_page.wait_for_function(f"tsnegrid.similar.image === {i}", timeout=WAIT_MS)
    assert demo_page.evaluate("tsnegrid.similar.list") == want
    assert demo_page.inner_text("#similar-count") == (
        f"20 nearest in the 2-D points: {within} within 3 cells, {20 - within} farther away")
    assert demo_page.inner_text("#similar-name") == Path(doc["images"][i]["path"]).name
    assert _grid_pixels(demo_page).mean() < before - 30  # the rest is dimmed
    assert not demo_page.context.pages[1:]  # a plain click opens nothing
    demo_page.keyboard.press("Escape")
    demo_page.wait_for_function("tsnegrid.similar.image === -1", timeout=WAIT_MS)
    assert demo_page.locator("#similar").is_hidden()
    # the n key picks the image under the pointer
    j = 5
    demo_page.mouse.move(*_cell_centre(demo_page, doc["images"][j]["row"],
                                       doc["images"][j]["col"]))
    demo_page.wait_for_function(f"tsnegrid.hovered === {j}", timeout=WAIT_MS)
    demo_page.keyboard.press("n")
    demo_page.wait_for_function(f"tsnegrid.similar.image === {j}", timeout=WAIT_MS)
    assert demo_page.evaluate("tsnegrid.similar.list") == _similar_figures(demo_site, j)[0]


@needs_chromium
def test_search_filters(demo_page: Any) -> None:
    rows = list(csv.DictReader(open(DEMO / "labels.csv")))
    want = sum("flag" in "\n".join(r.values()).lower() for r in rows)
    assert 0 < want < len(rows)
    before = _grid_pixels(demo_page).mean()
    demo_page.fill("#search", "flag")
    demo_page.wait_for_function(f"tsnegrid.matchCount === {want}", timeout=WAIT_MS)
    assert re.match(rf"{want} of 1,024 match", demo_page.inner_text("#matches"))
    assert _grid_pixels(demo_page).mean() < before - 40  # non-matches are dimmed
    demo_page.fill("#search", "")
    demo_page.wait_for_function("tsnegrid.match === null", timeout=WAIT_MS)


@needs_chromium
def test_colour_by_category_legend(demo_page: Any) -> None:
    demo_page.select_option("#colour-by", "category")
    categories = {r["category"] for r in csv.DictReader(open(DEMO / "labels.csv"))}
    # the field's codes load from data/f*.js: the legend follows
    demo_page.wait_for_function(
        f"document.querySelectorAll('#legend .count').length === {len(categories)}",
        timeout=WAIT_MS)
    counts = demo_page.locator("#legend .count").all_inner_texts()
    assert len(counts) == len(categories) and sum(int(c.replace(",", "")) for c in counts) == 1024


@needs_chromium
def test_zoom_loads_a_deeper_level(demo_page: Any) -> None:
    zoom0, level0 = demo_page.evaluate("[tsnegrid.viewer.viewport.getZoom(), "
                                       "tsnegrid.maxLevelLoaded]")
    top = demo_page.evaluate("tsnegrid.viewer.world.getItemAt(0).source.maxLevel")
    assert level0 < top
    demo_page.evaluate("tsnegrid.viewer.canvas.focus()")
    demo_page.keyboard.down("+")  # OpenSeadragon zooms while the key is held
    demo_page.wait_for_function(f"tsnegrid.viewer.viewport.getZoom() > {zoom0 * 1.2}",
                                timeout=WAIT_MS)
    demo_page.keyboard.up("+")
    demo_page.mouse.move(*_cell_centre(demo_page, 16, 16))
    for _ in range(3):  # and the wheel, one step per event
        demo_page.mouse.wheel(0, -120)
        demo_page.wait_for_timeout(50)
    demo_page.wait_for_function(f"tsnegrid.maxLevelLoaded === {top}", timeout=WAIT_MS)
    assert demo_page.evaluate("tsnegrid.viewer.viewport.getZoom()") > zoom0 * 1.5
    assert any(f"/grid_files/{top}/" in u for u in demo_page.requests)


@needs_chromium
def test_single_mosaic_page(browser: Any, tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 20)
    layout = _build(tmp_path / "img", tmp_path / "out", 20)
    page = browser.new_page(viewport={"width": 900, "height": 600})
    page.goto((tmp_path / "out" / "index.html").as_uri())
    _wait_loaded(page)
    assert _grid_pixels(page).std() > 30
    r, c = layout.row_col
    page.mouse.move(*_cell_centre(page, int(r[3]), int(c[3])))
    page.locator("#tip").wait_for(state="visible", timeout=WAIT_MS)
    assert page.locator("#tip .name").inner_text() == Path(layout.paths[3]).name
    page.close()


# ---- more like this: neighbours at build time --------------------------------------------------

def _decode_neighbors(out: Path) -> tuple[dict[str, Any], np.ndarray]:
    """The page's look-alikes: the index's entry and the N x k indices from the blocks'
    data/n*.js files (each in its block's image order)."""
    data = _read_page_data(out)
    meta, k = data["neighbors"], data["neighbors"]["k"]
    got = np.full((data["n"], k), -1, dtype=np.int64)
    for path in sorted((out / "data").glob("n*.js")):
        key, packed = _call_args(path, "tsnegridNear")
        images = _call_args(out / "data" / f"c{key}.js", "tsnegridChunk")[1]["images"]
        got[images] = unpack_ints(packed).reshape(-1, k)
    assert (got >= 0).all()
    return meta, got


@pytest.mark.parametrize(("n", "width"), [(2, 1), (256, 1), (257, 2), (65_537, 3)])
def test_neighbours_pack_into_the_fewest_bytes(n: int, width: int) -> None:
    idx = np.random.default_rng(0).integers(0, n, size=(n, 3))
    idx[-1] = n - 1
    packed = viewer_mod.encode_neighbors(idx, "vectors")
    assert (packed["bytes"], packed["k"], packed["from"]) == (width, 3, "vectors")
    import base64

    raw = np.frombuffer(base64.b64decode(packed["data"]), np.uint8).reshape(-1, width)
    values = (raw.astype(np.int64) * (256 ** np.arange(width))).sum(axis=1)
    assert np.array_equal(values.reshape(n, 3), idx)


def test_neighbours_out_of_range_refused() -> None:
    with pytest.raises(InputError, match=r"neighbour indices must lie in \[0, 3\)"):
        viewer_mod.encode_neighbors(np.array([[1], [2], [3]]))


def _assert_nearest(neighbors: np.ndarray | None, points: np.ndarray, k: int) -> None:
    """Each row's neighbours are k other rows, nearest first, at the k smallest distances. Up
    to the rounding of the library's (float32) distances: of two rows about equally near,
    either may come first on another machine, so distances are compared, not indices."""
    assert neighbors is not None and neighbors.shape == (len(points), k)
    d = ((points[:, None] - points[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert all(len(set(row)) == k for row in neighbors.tolist())
    got = np.take_along_axis(d, neighbors.astype(np.int64), axis=1)
    assert np.isfinite(got).all()  # never the row itself
    assert np.allclose(got, np.sort(d, axis=1)[:, :k], rtol=1e-4, atol=1e-6)


def test_build_stores_neighbours_for_the_page_and_for_programs(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 30)
    vectors = np.random.default_rng(1).normal(size=(30, 8))
    np.save(tmp_path / "v.npy", vectors)
    out = tmp_path / "out"
    layout = build([tmp_path / "img"], out, Settings(html=True), vectors=tmp_path / "v.npy")
    _assert_nearest(layout.neighbors, vectors, 20)
    assert layout.neighbors is not None
    assert layout.neighbors_from == "vectors" and "neighbors" in layout.timings
    packed, decoded = _decode_neighbors(out)
    assert np.array_equal(decoded, layout.neighbors) and packed["from"] == "vectors"
    assert _read_page_data(out)["neighbors"] == {"k": 20, "from": "vectors"}
    assert np.array_equal(np.load(out / "neighbors.npy"), layout.neighbors)
    doc = json.loads((out / "layout.json").read_text())
    assert doc["neighbors"] == {"file": "neighbors.npy", "k": 20, "from": "vectors"}


def test_coords_builds_take_neighbours_from_the_points(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 12)
    layout = _build(tmp_path / "img", tmp_path / "out", 12)
    assert layout.neighbors_from == "coords"
    _assert_nearest(layout.neighbors, np.load(tmp_path / "out-coords.npy"), 11)
    assert _decode_neighbors(tmp_path / "out")[0]["from"] == "coords"


def test_a_page_without_neighbours_drops_a_stale_script(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "grid.png")
    (tmp_path / "neighbors.js").write_text("old")  # the page format before data/
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "n9_9.js").write_text("old")
    doc = {"grid": {"rows": 1, "cols": 2}, "settings": {"tile": 4, "format": "png"},
           "images": [{"path": "a", "row": 0, "col": 0}, {"path": "b", "row": 0, "col": 1}]}
    write_viewer(doc, tmp_path)
    assert _read_page_data(tmp_path)["neighbors"] is None
    assert not (tmp_path / "neighbors.js").exists()
    assert not list((tmp_path / "data").glob("n*.js"))
    with pytest.raises(InputError, match="neighbors: 1 rows for 2 images"):
        write_viewer(doc, tmp_path, neighbors=np.zeros((1, 1), np.int64))


# ---- selections -------------------------------------------------------------------------------

def _grid_point(page: Any, y: float, x: float) -> tuple[float, float]:
    """Page coordinates of a point given in cells (x along columns, y along rows)."""
    return _cell_centre(page, y - 0.5, x - 0.5)


def _labels_by_file() -> dict[str, dict[str, str]]:
    return {r["file"]: r for r in csv.DictReader(open(DEMO / "labels.csv"))}


def _download_csv(page: Any) -> list[dict[str, str]]:
    with page.expect_download(timeout=WAIT_MS) as dl:
        page.click("#selection-csv")
    assert dl.value.suggested_filename == "selection.csv"
    with open(dl.value.path(), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@needs_chromium
def test_shift_drag_selects_a_rectangle_and_downloads_it(demo_page: Any,
                                                         demo_site: Path) -> None:
    doc = json.loads((demo_site / "layout.json").read_text())
    centre = demo_page.evaluate("tsnegrid.viewer.viewport.getCenter(true).x")
    demo_page.keyboard.down("Shift")
    demo_page.mouse.move(*_grid_point(demo_page, 3.2, 4.2))
    demo_page.mouse.down()
    demo_page.mouse.move(*_grid_point(demo_page, 9.8, 12.8), steps=8)
    demo_page.mouse.up()
    demo_page.keyboard.up("Shift")
    want = sorted((im for im in doc["images"] if 3 <= im["row"] <= 9 and 4 <= im["col"] <= 12),
                  key=lambda im: (im["row"], im["col"]))  # the CSV is in grid order
    assert len(want) > 30
    demo_page.wait_for_function(f"tsnegrid.selection.count === {len(want)}", timeout=WAIT_MS)
    assert demo_page.evaluate("tsnegrid.viewer.viewport.getCenter(true).x") == centre  # no pan
    assert demo_page.inner_text("#selection-count") == f"{len(want)} selected"
    rows = _download_csv(demo_page)
    assert list(rows[0]) == ["path", "row", "col", "name", "category", "subcategory"]
    labels = _labels_by_file()
    assert [(r["path"], int(r["row"]), int(r["col"])) for r in rows] == [
        (im["path"], im["row"], im["col"]) for im in want]
    for r in rows:
        label = labels[Path(r["path"]).name]
        assert (r["name"], r["category"], r["subcategory"]) == (
            label["name"], label["category"], label["subcategory"])
    demo_page.keyboard.press("Escape")
    demo_page.wait_for_function("tsnegrid.selection.count === 0", timeout=WAIT_MS)
    assert demo_page.locator("#selection-csv").is_disabled()


@needs_chromium
def test_lasso_selects_the_cells_inside_the_drawn_shape(demo_page: Any,
                                                        demo_site: Path) -> None:
    doc = json.loads((demo_site / "layout.json").read_text())
    demo_page.click("#tool-lasso")
    assert demo_page.get_attribute("#tool-lasso", "aria-pressed") == "true"
    # a triangle; a cell is inside when its centre is: col >= 2, row >= 2, row + col <= 21
    corners = [(2.25, 2.25), (2.25, 20.25), (20.25, 2.25)]
    demo_page.mouse.move(*_grid_point(demo_page, *corners[0]))
    demo_page.mouse.down()
    for y, x in corners[1:] + corners[:1]:
        demo_page.mouse.move(*_grid_point(demo_page, y, x), steps=15)
    demo_page.mouse.up()
    want = sorted(k for k, im in enumerate(doc["images"])
                  if im["row"] >= 2 and im["col"] >= 2 and im["row"] + im["col"] <= 21)
    assert len(want) > 100
    demo_page.wait_for_function(f"tsnegrid.selection.count === {len(want)}", timeout=WAIT_MS)
    picked = demo_page.evaluate("Array.from(tsnegrid.selection.picked.keys())"
                                ".filter((i) => tsnegrid.selection.picked[i])")
    assert picked == want
    assert len(_download_csv(demo_page)) == len(want)
    # the look-alikes of a clicked image can be selected in one go, too
    demo_page.click("#tool-lasso")
    im = doc["images"][40]
    demo_page.mouse.click(*_cell_centre(demo_page, im["row"], im["col"]))
    demo_page.wait_for_function("tsnegrid.similar.image === 40", timeout=WAIT_MS)
    demo_page.click("#similar-select")
    demo_page.wait_for_function("tsnegrid.selection.count === 21", timeout=WAIT_MS)


# ---- the url's hash ---------------------------------------------------------------------------

def _view(page: Any) -> dict[str, Any]:
    view: dict[str, Any] = page.evaluate("""() => {
        const vp = tsnegrid.viewer.viewport, t = TSNEGRID.tile;
        const c = vp.viewportToImageCoordinates(vp.getCenter(true));
        return {zoom: vp.getZoom(true), x: c.x / t, y: c.y / t, q: tsnegrid.query,
                colour: tsnegrid.colourField && tsnegrid.colourField.name,
                image: tsnegrid.similar.image, hash: location.hash, entries: history.length,
                input: document.getElementById("search").value,
                select: document.getElementById("colour-by").value};
    }""")
    return view


@needs_chromium
def test_a_shared_hash_reopens_the_view(browser: Any, demo_site: Path) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto((demo_site / "index.html").as_uri()
              + "#zoom=4.000&x=10.50&y=20.25&q=flag&colour=category&image=300")
    _wait_loaded(page)
    page.wait_for_function("tsnegrid.similar.image === 300", timeout=WAIT_MS)
    view = _view(page)
    assert abs(view["zoom"] - 4) < 1e-3 and abs(view["x"] - 10.5) < 0.01
    assert abs(view["y"] - 20.25) < 0.01
    assert (view["q"], view["input"], view["colour"], view["select"]) == (
        "flag", "flag", "category", "category")
    rows = list(csv.DictReader(open(DEMO / "labels.csv")))
    want = sum("flag" in "\n".join(r.values()).lower() for r in rows)
    assert page.evaluate("tsnegrid.matchCount") == want
    page.close()


@needs_chromium
def test_the_hash_follows_the_view_and_back_undoes_changes(demo_page: Any) -> None:
    page = demo_page
    page.wait_for_function("location.hash.includes('zoom=')", timeout=WAIT_MS)
    start = _view(page)
    page.type("#search", "cat", delay=60)  # three edits, one history entry
    page.wait_for_function("location.hash.includes('q=cat')", timeout=WAIT_MS)
    page.select_option("#colour-by", "category")
    page.wait_for_function("location.hash.includes('colour=category')", timeout=WAIT_MS)
    searched = _view(page)
    assert searched["entries"] == start["entries"] + 2  # one per change, not per keystroke
    # zooming and panning rewrite the entry instead of adding one
    page.click("#zoom-in")
    page.wait_for_function(f"tsnegrid.viewer.viewport.getZoom(true) > {start['zoom'] * 1.5}",
                           timeout=WAIT_MS)
    page.wait_for_function(f"!location.hash.includes('zoom={start['zoom']:.3f}')",
                           timeout=WAIT_MS)
    assert _view(page)["entries"] == searched["entries"]
    page.go_back()
    page.wait_for_function("tsnegrid.colourField === null", timeout=WAIT_MS)
    assert _view(page)["q"] == "cat" and _view(page)["select"] == ""
    page.go_back()
    page.wait_for_function("tsnegrid.query === ''", timeout=WAIT_MS)
    assert _view(page)["input"] == "" and page.evaluate("tsnegrid.match") is None
    page.go_forward()
    page.wait_for_function("tsnegrid.query === 'cat'", timeout=WAIT_MS)


# ---- concepts: hover and search ---------------------------------------------------------------

@pytest.fixture(scope="module")
def photo_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-image's photographs (and flipped and cropped cats) built with lite0's concepts."""
    data = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("photos")
    (root / "img").mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket", "camera", "hubble_deep_field"):
        Image.fromarray(getattr(data, name)()).convert("RGB").save(root / "img" / f"{name}.png")
    cat = Image.fromarray(data.chelsea())
    cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "img" / "chelsea-flip.png")
    cat.crop((40, 0, 300, 260)).save(root / "img" / "chelsea-crop.png")
    build([root / "img"], root / "out", Settings(html=True, cache_dir=root / "cache", tile=32))
    return root / "out"


def test_page_data_carries_the_concepts(photo_site: Path) -> None:
    from tsnegrid.concepts.broader import broader_names
    from tsnegrid.concepts.names import class_ids

    data = _read_page_data(photo_site)["concepts"]
    doc = json.loads((photo_site / "layout.json").read_text())
    k = data["k"]
    assert k == 5 and len(data["codes"]) == len(doc["images"]) * k
    first = doc["images"][0]["concepts"][0]
    cls = data["classes"][data["codes"][0]]
    assert cls["name"] == first["name"] and data["values"][0] == round(1000 * first["value"])
    assert cls["groups"] == list(broader_names()[class_ids().index(first["id"])])


def _concept_scores(doc: dict[str, Any], query: str) -> list[int]:
    """The page's rule, in Python: a class matches by a broader name or a whole word; an
    image's score is the sum of its matching probabilities, in the page's thousandths (whole
    numbers, so equal scores are equal whatever order the floats were added in)."""
    from tsnegrid.concepts.broader import broader_names
    from tsnegrid.concepts.names import class_ids, class_synonyms

    index = {w: k for k, w in enumerate(class_ids())}
    word = re.compile(r"(^|[^a-z0-9])" + re.escape(query) + r"($|[^a-z0-9])")

    def hit(c: dict[str, Any]) -> bool:
        at = index[c["id"]]
        return query in broader_names()[at] or bool(
            word.search(f"{c['name']} | {class_synonyms()[at]}".lower()))

    return [sum(round(1000 * c["value"]) for c in im["concepts"] if hit(c))
            for im in doc["images"]]


@needs_chromium
def test_search_finds_a_broader_concept_ranked_by_probability(browser: Any,
                                                              photo_site: Path) -> None:
    doc = json.loads((photo_site / "layout.json").read_text())
    scores = _concept_scores(doc, "cat")
    want = [i for i, s in enumerate(scores) if s > 0]
    assert len(want) >= 3  # the three cat photographs at least
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto((photo_site / "index.html").as_uri())
    _wait_loaded(page)
    page.fill("#search", "cat")
    page.wait_for_function("tsnegrid.rank !== null && tsnegrid.query === 'cat'", timeout=WAIT_MS)
    assert page.evaluate("tsnegrid.matchCount") == len(want)
    rank = page.evaluate("tsnegrid.rank")
    assert sorted(rank) == want
    ranked = [scores[i] for i in rank]
    assert ranked == sorted(ranked, reverse=True)
    # hover: the best match's concepts, most probable first
    best = doc["images"][rank[0]]
    page.mouse.move(*_cell_centre(page, best["row"], best["col"]))
    tip = page.locator("#tip")
    tip.wait_for(state="visible", timeout=WAIT_MS)
    items = tip.locator("ol.concepts li").all_inner_texts()
    assert len(items) == 5 and items[0].startswith(best["concepts"][0]["name"])
    page.close()


# ---- region names over the grid ---------------------------------------------------------------

# A hand-made map (no model, so the same on every machine): every cell holds an image, image i
# sits at cell i (row-major), and each region takes its rectangle's cells from those it lies on.
MAP_ROWS, MAP_COLS, MAP_TILE, MAP_K = 40, 40, 16, 6
MAP_REGIONS = [  # name, (r0, c0, r1, c1), anchor
    ("forest", (0, 0, 19, 39), (6, 20)),
    ("harbour", (20, 0, 39, 23), (30, 8)),
    ("market", (20, 24, 39, 39), (35, 33)),
    ("orchard", (3, 3, 6, 6), (4, 4)),
    ("harbour", (23, 10, 25, 12), (24, 11)),  # the same name again, near the large one
    ("ox", (26, 28, 27, 29), (26, 28)),
    ("yak", (12, 10, 13, 11), (12, 10)),
    ("elk", (37, 2, 38, 3), (37, 2)),
]


def _map_neighbors() -> np.ndarray:
    """Each image's look-alikes: the next three cells (right, below, diagonal), then three far."""
    n, c = MAP_ROWS * MAP_COLS, MAP_COLS
    i = np.arange(n)[:, None]
    return (i + np.array([1, c, c + 1, 5, 10 * c, n // 2])) % n


@pytest.fixture(scope="module")
def map_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A viewer of the hand-made map: regions of known sizes, a large and a small one sharing a
    name, look-alikes from ``_map_neighbors``."""
    out = tmp_path_factory.mktemp("map-site")
    owner = np.full((MAP_ROWS, MAP_COLS), -1)
    for k, (_name, (r0, c0, r1, c1), _anchor) in enumerate(MAP_REGIONS):
        owner[r0:r1 + 1, c0:c1 + 1] = k
    sizes = np.bincount(owner.ravel(), minlength=len(MAP_REGIONS))
    order = sorted(range(len(MAP_REGIONS)), key=lambda k: -sizes[k])  # largest first
    index = {k: at for at, k in enumerate(order)}
    regions = [{"name": MAP_REGIONS[k][0], "size": int(sizes[k]), "anchor": list(MAP_REGIONS[k][2]),
                "radius": 1.0, "bbox": list(MAP_REGIONS[k][1])} for k in order]
    (out / "img").mkdir()
    palette = np.random.default_rng(0).integers(40, 255, size=(len(MAP_REGIONS), 3))
    for j in range(4):
        Image.new("RGB", (8, 8), tuple(int(v) for v in palette[j])).save(out / "img" / f"{j}.png")
    images = [{"path": str(out / "img" / f"{i % 4}.png"), "row": i // MAP_COLS,
               "col": i % MAP_COLS, "region": index[int(owner.flat[i])]}
              for i in range(MAP_ROWS * MAP_COLS)]
    pixels = palette[owner].repeat(MAP_TILE, axis=0).repeat(MAP_TILE, axis=1)
    Image.fromarray(pixels.astype(np.uint8)).save(out / "grid.png")
    doc = {"grid": {"rows": MAP_ROWS, "cols": MAP_COLS},
           "settings": {"tile": MAP_TILE, "format": "png"}, "images": images,
           "regions": regions}
    (out / "layout.json").write_text(json.dumps(doc), encoding="utf-8")
    write_viewer(doc, out, neighbors=_map_neighbors(), neighbors_from="vectors")
    return out


def _labels_constant(name: str) -> float:
    """A constant of labels.js (MIN_PX, MAX_PX, SCALE), read from the page's own code."""
    text = (Path(viewer_mod.__file__).parent / "assets" / "labels.js").read_text()
    m = re.search(rf"const {name} = ([0-9.]+);", text)
    assert m, name
    return float(m.group(1))


def _labels(page: Any) -> list[dict[str, Any]]:
    page.evaluate("tsnegrid.drawOverlay()")
    rects: list[dict[str, Any]] = page.evaluate("tsnegrid.labelRects()")
    return rects


def _geometry(page: Any) -> dict[str, float]:
    """The grid's origin (ox, oy) and cell side s in viewer-element pixels, as the overlay
    draws with, and the viewer's size."""
    g: dict[str, float] = page.evaluate("""() => {
        const vp = tsnegrid.viewer.viewport, t = TSNEGRID.tile;
        const o = vp.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
        const e = vp.imageToViewerElementCoordinates(new OpenSeadragon.Point(t, 0));
        const box = document.getElementById("osd").getBoundingClientRect();
        return {ox: o.x, oy: o.y, s: e.x - o.x, width: box.width, height: box.height}; }""")
    return g


def _size_px(region: dict[str, Any], s: float) -> float:
    """labels.js's font size from the region's size alone (before its width and MAX_PX)."""
    return _labels_constant("SCALE") * float(np.sqrt(region["size"])) * s


def _assert_names_keep_the_rules(rects: list[dict[str, Any]], regions: list[dict[str, Any]],
                                 g: dict[str, float]) -> None:
    """What labels.js promises of the names it drew, whatever the fonts: largest first, each at
    least MIN_PX (at most MAX_PX) tall, growing with its region and the zoom, fitting its
    region's width and the grid, none overlapping, none repeated close by."""
    eps = 0.5
    s = g["s"]
    x_end, y_end = g["ox"] + MAP_COLS * s, g["oy"] + MAP_ROWS * s
    ks = [r["k"] for r in rects]
    assert ks == sorted(set(ks))  # in the data's order, each once
    assert [regions[k]["size"] for k in ks] == sorted((regions[k]["size"] for k in ks),
                                                      reverse=True)
    for a in rects:
        region = regions[a["k"]]
        assert a["name"] == region["name"]
        px = (a["y1"] - a["y0"]) / 1.25  # a name's box is 1.25 font sizes tall
        assert _labels_constant("MIN_PX") - 1e-6 <= px <= _labels_constant("MAX_PX") + 1e-6
        assert px <= _size_px(region, s) + 1e-6
        r0, c0, r1, c1 = region["bbox"]
        assert a["x1"] - a["x0"] - 6 <= 0.9 * (c1 - c0 + 1) * s + eps  # 3 px margin a side
        assert g["ox"] - eps <= a["x0"] and a["x1"] <= x_end + eps
        assert g["oy"] - eps <= a["y0"] and a["y1"] <= y_end + eps
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not (a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"]
                        and b["y0"] < a["y1"]), (a, b)
            if a["name"] == b["name"]:
                apart = np.hypot((a["x0"] + a["x1"] - b["x0"] - b["x1"]) / 2,
                                 (a["y0"] + a["y1"] - b["y0"] - b["y1"]) / 2)
                assert apart >= 3 * (b["x1"] - b["x0"]) - eps, (a, b)


def _in_view(region: dict[str, Any], g: dict[str, float]) -> bool:
    row, col = region["anchor"]
    x, y = g["ox"] + (col + 0.5) * g["s"], g["oy"] + (row + 0.5) * g["s"]
    return 0 <= x <= g["width"] and 0 <= y <= g["height"]


@needs_chromium
def test_region_names_show_by_size_never_overlap_and_zoom_on_click(browser: Any,
                                                                   map_site: Path) -> None:
    regions = json.loads((map_site / "layout.json").read_text())["regions"]
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((map_site / "index.html").as_uri())
    _wait_loaded(page)
    # the whole map: the large regions are named, the small ones too small to be yet
    home, g = _labels(page), _geometry(page)
    _assert_names_keep_the_rules(home, regions, g)
    shown = {r["k"] for r in home}
    assert 0 in shown and 2 <= len(shown) < len(regions)
    too_small = {k for k, r in enumerate(regions)
                 if _in_view(r, g) and _size_px(r, g["s"]) < _labels_constant("MIN_PX")}
    assert too_small and not too_small & shown
    # zoomed in on the ox: its name shows, beside no larger one's
    ox = next(k for k, r in enumerate(regions) if r["name"] == "ox")
    assert ox in too_small
    page.evaluate(f"""() => {{
        const t = {MAP_TILE}, vp = tsnegrid.viewer.viewport;
        vp.fitBounds(vp.imageToViewportRectangle(
            new OpenSeadragon.Rect(20.5 * t, 20.5 * t, 13 * t, 13 * t)), true); }}""")
    near, g = _labels(page), _geometry(page)
    _assert_names_keep_the_rules(near, regions, g)
    new = {r["k"] for r in near} - shown
    assert ox in new and _size_px(regions[ox], g["s"]) >= _labels_constant("MIN_PX")
    assert np.mean([regions[k]["size"] for k in new]) < np.mean([regions[k]["size"]
                                                                  for k in shown])
    # zoomed in on the harbour: the small region of the same name close by is large enough to
    # be named, but the name is not repeated there
    page.evaluate(f"""() => {{
        const t = {MAP_TILE}, vp = tsnegrid.viewer.viewport;
        vp.fitBounds(vp.imageToViewportRectangle(
            new OpenSeadragon.Rect(0, 18 * t, 20 * t, 20 * t)), true); }}""")
    port, g = _labels(page), _geometry(page)
    _assert_names_keep_the_rules(port, regions, g)
    small = next(k for k, r in enumerate(regions) if r["name"] == "harbour" and k != 1)
    assert regions[1]["name"] == "harbour" and 1 in {r["k"] for r in port}
    assert _in_view(regions[small], g)
    assert _size_px(regions[small], g["s"]) >= _labels_constant("MIN_PX")
    # a click on a name zooms to its region (and picks no image)
    page.evaluate("tsnegrid.viewer.viewport.goHome(true)")
    home = _labels(page)
    market = next(r for r in home if r["name"] == "market")
    before = page.evaluate("tsnegrid.viewer.viewport.getZoom(true)")
    osd = page.locator("#osd").bounding_box()
    page.mouse.click(osd["x"] + (market["x0"] + market["x1"]) / 2,
                     osd["y"] + (market["y0"] + market["y1"]) / 2)
    r0, c0, r1, c1 = regions[market["k"]]["bbox"]
    page.wait_for_function("""([r0, c0, r1, c1, t, z]) => {
        const vp = tsnegrid.viewer.viewport, b = vp.viewportToImageRectangle(vp.getBounds(true));
        return vp.getZoom(true) > z && b.x <= c0 * t + 1 && b.y <= r0 * t + 1 &&
               b.x + b.width >= (c1 + 1) * t - 1 && b.y + b.height >= (r1 + 1) * t - 1; }""",
                           arg=[r0, c0, r1, c1, MAP_TILE, 1.5 * before], timeout=WAIT_MS)
    assert page.evaluate("tsnegrid.similar.image") == -1
    # hover names the region; the panel's switch hides the names and shows them again
    page.evaluate("tsnegrid.viewer.viewport.goHome(true)")
    page.mouse.move(*_cell_centre(page, 33, 12))
    page.locator("#tip").wait_for(state="visible", timeout=WAIT_MS)
    assert page.locator("#tip .region").inner_text() == "region: harbour"
    page.uncheck("#labels-shown")
    assert _labels(page) == []
    page.check("#labels-shown")
    assert _labels(page)
    page.close()
    assert not errors


@needs_chromium
def test_the_near_square_stays_on_the_grid_at_its_corners(browser: Any, map_site: Path) -> None:
    """The dashed square of "within 3 cells" is cut at the grid's edges, and the panel counts
    the look-alikes inside the square as drawn."""
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto((map_site / "index.html").as_uri())
    _wait_loaded(page)
    page.uncheck("#labels-shown")  # no name over a corner takes the click
    near = _map_neighbors()
    last_row, last_col = MAP_ROWS - 1, MAP_COLS - 1
    for row, col in ((0, 0), (0, last_col), (last_row, 0), (last_row, last_col), (1, 20)):
        i = row * MAP_COLS + col
        page.mouse.click(*_cell_centre(page, row, col))
        page.wait_for_function(f"tsnegrid.similar.image === {i}", timeout=WAIT_MS)
        page.evaluate("tsnegrid.drawOverlay()")
        square, g = page.evaluate("tsnegrid.similar.square"), _geometry(page)
        s = g["s"]
        r0, c0 = max(0, row - 3), max(0, col - 3)
        r1, c1 = min(last_row, row + 3), min(last_col, col + 3)
        want = {"x0": g["ox"] + c0 * s, "y0": g["oy"] + r0 * s,
                "x1": g["ox"] + (c1 + 1) * s, "y1": g["oy"] + (r1 + 1) * s}
        assert all(abs(square[key] - want[key]) < 0.01 for key in want), (square, want)
        assert g["ox"] - 0.01 <= square["x0"] and square["x1"] <= g["ox"] + MAP_COLS * s + 0.01
        assert g["oy"] - 0.01 <= square["y0"] and square["y1"] <= g["oy"] + MAP_ROWS * s + 0.01
        rows, cols = np.divmod(near[i], MAP_COLS)
        inside = int(((rows >= r0) & (rows <= r1) & (cols >= c0) & (cols <= c1)).sum())
        assert page.inner_text("#similar-count") == (
            f"{MAP_K} nearest in the embedding: {inside} within 3 cells, "
            f"{MAP_K - inside} farther away")
        page.keyboard.press("Escape")
        page.wait_for_function("tsnegrid.similar.image === -1", timeout=WAIT_MS)
        assert page.evaluate("tsnegrid.similar.square") is None
    page.close()


@contextmanager
def _served(folder: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """``folder`` over HTTP on a free loopback port; yields its url and the (path, status) of
    every request it answered."""
    answered: list[tuple[str, int]] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            answered.append((self.path, int(code)))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answered
    finally:
        server.shutdown()
        server.server_close()


@needs_chromium
def test_the_page_asks_for_no_favicon_and_no_request_fails(browser: Any, map_site: Path,
                                                          tmp_path: Path) -> None:
    """The page carries its icon, so a browser asks no server (the service's included) for
    /favicon.ico; a plain page on another server shows that this browser does ask."""
    (tmp_path / "plain.html").write_text("<!doctype html><title>plain</title><p>plain</p>")
    failed: list[str] = []
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto((map_site / "index.html").as_uri())
    _wait_loaded(page)
    assert failed == []
    with _served(map_site) as (url, answered), _served(tmp_path) as (plain_url, plain):
        page.goto(url + "/index.html")
        _wait_loaded(page)
        page.goto(plain_url + "/plain.html")  # after the viewer page's own favicon request
        deadline = time.monotonic() + WAIT_MS / 1000
        while ("/favicon.ico", 404) not in plain and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("/favicon.ico", 404) in plain  # the browser asks for it, unless told not to
        assert answered and all(code < 400 for _path, code in answered), answered
        assert "/favicon.ico" not in [path for path, _code in answered]
    assert failed == []
    page.close()


@needs_chromium
def test_a_layout_without_regions_has_no_names_switch(demo_page: Any) -> None:
    assert not demo_page.locator("#labels-row").is_visible()
    assert demo_page.evaluate("tsnegrid.labelRects()") == []


# ---- two levels of region names ---------------------------------------------------------------

LEVELS_SIDE, LEVELS_TILE = 40, 16
COARSE_NAMES = ["north-west", "north-east", "south-west", "south-east"]


@pytest.fixture(scope="module")
def levels_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40 x 40 map in four coarse quadrants, each of four fine 10 x 10 regions (named
    f0..f15), one fine region unnamed; as layout.json writes them (fine, then coarse)."""
    out = tmp_path_factory.mktemp("levels-site")
    side, half, q = LEVELS_SIDE, LEVELS_SIDE // 2, LEVELS_SIDE // 4
    rr, cc = np.divmod(np.arange(side * side), side)
    coarse = (rr // half) * 2 + cc // half
    fine = (rr // q) * 4 + cc // q
    fine_regions = [{"id": k, "level": "fine", "name": None if k == 5 else f"f{k}",
                     "source": "test", "score": 1.0, "candidate": f"f{k}", "size": q * q,
                     "anchor": [(k // 4) * q + q // 2, (k % 4) * q + q // 2], "radius": 4.0,
                     "bbox": [(k // 4) * q, (k % 4) * q, (k // 4) * q + q - 1,
                              (k % 4) * q + q - 1],
                     "parent": (k // 8) * 2 + (k % 4) // 2} for k in range(16)]
    coarse_regions = [{"id": k, "level": "coarse", "name": COARSE_NAMES[k], "source": "test",
                       "score": 1.0, "candidate": COARSE_NAMES[k], "size": half * half,
                       "anchor": [(k // 2) * half + q, (k % 2) * half + q], "radius": 9.0,
                       "bbox": [(k // 2) * half, (k % 2) * half, (k // 2) * half + half - 1,
                                (k % 2) * half + half - 1]} for k in range(4)]
    (out / "img").mkdir()
    Image.new("RGB", (8, 8), (90, 140, 200)).save(out / "img" / "0.png")
    images = [{"path": str(out / "img" / "0.png"), "row": int(r), "col": int(c),
               "region": int(f), "coarse_region": int(k)}
              for r, c, f, k in zip(rr, cc, fine, coarse, strict=True)]
    palette = np.random.default_rng(1).integers(40, 255, size=(16, 3))
    pixels = palette[fine.reshape(side, side)].repeat(LEVELS_TILE, 0).repeat(LEVELS_TILE, 1)
    Image.fromarray(pixels.astype(np.uint8)).save(out / "grid.png")
    doc = {"grid": {"rows": side, "cols": side},
           "settings": {"tile": LEVELS_TILE, "format": "png"}, "images": images,
           "regions": fine_regions + coarse_regions}
    (out / "layout.json").write_text(json.dumps(doc), encoding="utf-8")
    write_viewer(doc, out)
    return out


@needs_chromium
def test_coarse_names_zoomed_out_fine_names_zoomed_in(browser: Any, levels_site: Path) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((levels_site / "index.html").as_uri())
    _wait_loaded(page)
    home = _labels(page)
    assert page.evaluate("tsnegrid.labelLevel") == "coarse"
    assert {r["name"] for r in home} == set(COARSE_NAMES)
    page.evaluate(f"""() => {{
        const t = {LEVELS_TILE}, vp = tsnegrid.viewer.viewport;
        vp.fitBounds(vp.imageToViewportRectangle(
            new OpenSeadragon.Rect(0, 0, 20 * t, 20 * t)), true); }}""")
    near = _labels(page)
    assert page.evaluate("tsnegrid.labelLevel") == "fine"
    names = {r["name"] for r in near}
    assert names and names <= {f"f{k}" for k in range(16)} - {"f5"}  # f5 has no name
    assert {"f0", "f1", "f4"} <= names
    for i, a in enumerate(near):
        for b in near[i + 1:]:
            assert not (a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"]
                        and b["y0"] < a["y1"])
    # the hover names the fine region and the coarse one that holds it
    page.mouse.move(*_cell_centre(page, 2, 2))
    tip = page.locator("#tip")
    tip.wait_for(state="visible", timeout=WAIT_MS)
    assert "region: f0 · in north-west" in tip.inner_text()
    page.mouse.move(*_cell_centre(page, 12, 12))  # the unnamed fine region: the coarse name
    page.wait_for_function("document.getElementById('tip').innerText.includes('north-west') "
                           "&& !document.getElementById('tip').innerText.includes('f0')",
                           timeout=WAIT_MS)
    page.close()
    assert not errors


# ---- a grid of many blocks: data on demand ----------------------------------------------------

WIDE_ROWS, WIDE_COLS = 3, 150  # three blocks of 64 columns side by side


def _wide_doc(tmp: Path) -> dict[str, Any]:
    """450 images (paths img-0000 ... in folders a/ and b/) on a 3 x 150 grid, tile 4."""
    Image.new("RGB", (WIDE_COLS * 4, WIDE_ROWS * 4), (90, 90, 90)).save(tmp / "grid.png")
    n = WIDE_ROWS * WIDE_COLS
    return {"grid": {"rows": WIDE_ROWS, "cols": WIDE_COLS},
            "settings": {"tile": 4, "format": "png"},
            "images": [{"path": f"/photos/{'ab'[i % 2]}/img-{i:04d}.png", "row": i // WIDE_COLS,
                        "col": i % WIDE_COLS} for i in range(n)]}


def _wide_meta(n: int) -> dict[str, dict[str, str]]:
    return {f"img-{i:04d}.png": {"caption": f"caption {i}", "kind": "odd" if i % 2 else "even"}
            for i in range(n)}


def test_search_index_words_postings_and_what_it_leaves_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _wide_doc(tmp_path)
    n = len(doc["images"])
    write_viewer(doc, tmp_path, metadata=_wide_meta(n))
    index = _call_args(tmp_path / "data" / "search.js", "tsnegridSearch")[0]
    terms = dict(zip(index["terms"], index["postings"], strict=True))
    assert not index["partial"]
    assert viewer_data_mod.decode_postings(terms["/photos/b"]).tolist() == list(range(1, n, 2))
    assert viewer_data_mod.decode_postings(terms["img-0007.png"]).tolist() == [7]
    assert viewer_data_mod.decode_postings(terms["caption 12"]).tolist() == [12]
    # many distinct values: the words in them; too many words: those of one image left out
    monkeypatch.setattr(viewer_data_mod, "WHOLE_TERMS_MAX", 10)
    monkeypatch.setattr(viewer_data_mod, "MAX_TERMS", 100)
    write_viewer(doc, tmp_path, metadata=_wide_meta(n))
    index = _call_args(tmp_path / "data" / "search.js", "tsnegridSearch")[0]
    terms = dict(zip(index["terms"], index["postings"], strict=True))
    assert index["partial"] and "img" in terms and "0007" not in terms
    assert viewer_data_mod.decode_postings(terms["caption"]).tolist() == list(range(n))
    assert viewer_data_mod.decode_postings(terms["odd"]).tolist() == list(range(1, n, 2))


@needs_chromium
def test_many_blocks_hover_search_and_csv(browser: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Three blocks; a wide field kept in the blocks; an index without single-image words, so
    a query for one file name is answered by searching the blocks."""
    monkeypatch.setattr(viewer_data_mod, "MAX_DICTIONARY", 10)  # captions: in the blocks
    monkeypatch.setattr(viewer_data_mod, "WHOLE_TERMS_MAX", 10)
    monkeypatch.setattr(viewer_data_mod, "MAX_TERMS", 5)
    doc = _wide_doc(tmp_path)
    n = len(doc["images"])
    write_viewer(doc, tmp_path, metadata=_wide_meta(n))
    assert len(list((tmp_path / "data").glob("c*.js"))) == 3
    page = browser.new_page(viewport={"width": 1200, "height": 500})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((tmp_path / "index.html").as_uri())
    _wait_loaded(page)
    assert page.evaluate("tsnegrid.chunksLoaded") == 0  # nothing per image read to open
    i = 2 * WIDE_COLS + 140  # in the third block
    page.evaluate("tsnegrid.viewer.viewport.zoomBy(4, null, true)")
    page.evaluate(f"tsnegrid.viewer.viewport.panTo(tsnegrid.viewer.viewport"
                  f".imageToViewportCoordinates({140.5 * 4}, {2.5 * 4}), true)")
    page.mouse.move(*_cell_centre(page, 2, 140))
    tip = page.locator("#tip")
    tip.wait_for(state="visible", timeout=WAIT_MS)
    assert tip.locator(".name").inner_text() == f"img-{i:04d}.png"
    assert f"caption {i}" in tip.inner_text() and "even" in tip.inner_text()
    assert page.evaluate("tsnegrid.chunksLoaded") == 1
    page.evaluate("tsnegrid.search('img-0123')")  # in no index term: the blocks are searched
    page.wait_for_function("tsnegrid.query === 'img-0123' && tsnegrid.rank !== null",
                           timeout=WAIT_MS)
    assert page.evaluate("tsnegrid.rank") == [123]
    page.evaluate("tsnegrid.search('caption 44')")  # a wide field's values, in the blocks
    page.wait_for_function("tsnegrid.query === 'caption 44' && tsnegrid.matchCount === 11",
                           timeout=WAIT_MS)  # 44 and 440-449
    assert page.evaluate("tsnegrid.rank") == [44, *range(440, 450)]
    page.evaluate("tsnegrid.search('odd')")  # a word in the index
    page.wait_for_function(f"tsnegrid.query === 'odd' && tsnegrid.matchCount === {n // 2}",
                           timeout=WAIT_MS)
    picked = [0, 70, 140, 151, 449]
    csv_text = page.evaluate(f"tsnegrid.select({picked}); tsnegrid.selectionCsv()")
    rows = list(csv.DictReader(csv_text.splitlines()))
    assert [(r["path"], r["caption"]) for r in rows] == [
        (f"/photos/{'ab'[j % 2]}/img-{j:04d}.png", f"caption {j}") for j in picked]
    assert not errors
    page.close()
