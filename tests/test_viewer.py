"""The zoomable viewer: page data, wiring into the pipeline, and the page in a real Chromium."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
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
from tsnegrid.render.viewer import viewer_data, write_viewer
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
    text = (out / "layout.js").read_text(encoding="utf-8")
    assert text.startswith("window.TSNEGRID = ")
    data: dict[str, Any] = json.loads(text[len("window.TSNEGRID = "):].rstrip().rstrip(";"))
    return data


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
    monkeypatch.setattr(viewer_mod, "SINGLE_IMAGE_MAX_SIDE", 100)
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
    counts = demo_page.locator("#legend .count").all_inner_texts()
    categories = {r["category"] for r in csv.DictReader(open(DEMO / "labels.csv"))}
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
    import base64

    text = (out / "neighbors.js").read_text(encoding="utf-8")
    prefix = "window.TSNEGRID_NEIGHBORS = "
    assert text.startswith(prefix)
    packed = json.loads(text[len(prefix):].rstrip().rstrip(";"))
    raw = np.frombuffer(base64.b64decode(packed["data"]), np.uint8).reshape(-1, packed["bytes"])
    wide = np.zeros((len(raw), 4), np.uint8)
    wide[:, :packed["bytes"]] = raw
    return packed, wide.view("<u4").reshape(-1, packed["k"]).astype(np.int64)


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


def test_build_stores_neighbours_for_the_page_and_for_programs(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 30)
    vectors = np.random.default_rng(1).normal(size=(30, 8))
    np.save(tmp_path / "v.npy", vectors)
    out = tmp_path / "out"
    layout = build([tmp_path / "img"], out, Settings(html=True), vectors=tmp_path / "v.npy")
    d = ((vectors[:, None] - vectors[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    want = np.argsort(d, axis=1)[:, :20]
    assert layout.neighbors is not None and np.array_equal(layout.neighbors, want)
    assert layout.neighbors_from == "vectors" and "neighbors" in layout.timings
    packed, decoded = _decode_neighbors(out)
    assert np.array_equal(decoded, want) and packed["from"] == "vectors"
    assert _read_page_data(out)["neighbors"] == {"k": 20, "from": "vectors",
                                                 "script": "neighbors.js"}
    assert np.array_equal(np.load(out / "neighbors.npy"), want)
    doc = json.loads((out / "layout.json").read_text())
    assert doc["neighbors"] == {"file": "neighbors.npy", "k": 20, "from": "vectors"}


def test_coords_builds_take_neighbours_from_the_points(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "img", 12)
    layout = _build(tmp_path / "img", tmp_path / "out", 12)
    pts = np.load(tmp_path / "out-coords.npy")
    d = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert layout.neighbors_from == "coords" and layout.neighbors is not None
    assert np.array_equal(layout.neighbors, np.argsort(d, axis=1)[:, :11])
    assert _decode_neighbors(tmp_path / "out")[0]["from"] == "coords"


def test_a_page_without_neighbours_drops_a_stale_script(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "grid.png")
    (tmp_path / "neighbors.js").write_text("old")
    doc = {"grid": {"rows": 1, "cols": 2}, "settings": {"tile": 4, "format": "png"},
           "images": [{"path": "a", "row": 0, "col": 0}, {"path": "b", "row": 0, "col": 1}]}
    write_viewer(doc, tmp_path)
    assert _read_page_data(tmp_path)["neighbors"] is None
    assert not (tmp_path / "neighbors.js").exists()
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
    want = [im for im in doc["images"] if 3 <= im["row"] <= 9 and 4 <= im["col"] <= 12]
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


def _concept_scores(doc: dict[str, Any], query: str) -> list[float]:
    """The page's rule, in Python: a class matches by a broader name or a whole word."""
    from tsnegrid.concepts.broader import broader_names
    from tsnegrid.concepts.names import class_ids, class_synonyms

    index = {w: k for k, w in enumerate(class_ids())}
    word = re.compile(r"(^|[^a-z0-9])" + re.escape(query) + r"($|[^a-z0-9])")

    def hit(c: dict[str, Any]) -> bool:
        at = index[c["id"]]
        return query in broader_names()[at] or bool(
            word.search(f"{c['name']} | {class_synonyms()[at]}".lower()))

    return [sum(round(1000 * c["value"]) / 1000 for c in im["concepts"] if hit(c))
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

@pytest.fixture(scope="module")
def regions_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 demo emoji built with lite0's concepts and small named regions."""
    root = tmp_path_factory.mktemp("regions-site")
    emoji_subset(root / "img", 300)
    build([root / "img"], root / "out", Settings(html=True, cache_dir=root / "cache", tile=32,
                                                 region_size=10))
    return root / "out"


def _labels(page: Any) -> list[dict[str, Any]]:
    page.evaluate("tsnegrid.drawOverlay()")
    rects: list[dict[str, Any]] = page.evaluate("tsnegrid.labelRects()")
    return rects


@needs_chromium
def test_region_names_show_by_size_never_overlap_and_zoom_on_click(browser: Any,
                                                                   regions_site: Path) -> None:
    doc = json.loads((regions_site / "layout.json").read_text())
    sizes = [r["size"] for r in doc["regions"]]
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((regions_site / "index.html").as_uri())
    _wait_loaded(page)
    home = _labels(page)
    assert 2 <= len(home) < len(sizes)  # the large regions' names, not every one
    box = page.locator("#osd").bounding_box()
    for i, a in enumerate(home):
        assert a["x0"] >= -1 and a["x1"] <= box["width"] + 1
        for b in home[i + 1:]:
            assert not (a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"]
                        and b["y0"] < a["y1"]), (a, b)
    shown = {r["k"] for r in home}
    assert np.mean([sizes[k] for k in shown]) > np.mean(sizes)  # the larger regions first
    page.evaluate("tsnegrid.viewer.viewport.zoomBy(3); "
                  "tsnegrid.viewer.viewport.applyConstraints(true)")
    page.wait_for_timeout(600)
    new = {r["k"] for r in _labels(page)} - shown
    assert new and np.mean([sizes[k] for k in new]) < np.mean([sizes[k] for k in shown])
    page.evaluate("tsnegrid.viewer.viewport.goHome(true)")
    page.wait_for_timeout(600)
    target = _labels(page)[-1]
    before = page.evaluate("tsnegrid.viewer.viewport.getZoom(true)")
    osd = page.locator("#osd").bounding_box()
    page.mouse.click(osd["x"] + (target["x0"] + target["x1"]) / 2,
                     osd["y"] + (target["y0"] + target["y1"]) / 2)
    page.wait_for_timeout(1500)
    assert page.evaluate("tsnegrid.viewer.viewport.getZoom(true)") > 1.5 * before
    r0, c0, r1, c1 = doc["regions"][target["k"]]["bbox"]
    shown = page.evaluate("""() => {
        const vp = tsnegrid.viewer.viewport, b = vp.viewportToImageRectangle(vp.getBounds(true));
        return [b.x, b.y, b.x + b.width, b.y + b.height]; }""")
    t = 32
    assert shown[0] <= c0 * t + 1 and shown[1] <= r0 * t + 1
    assert shown[2] >= (c1 + 1) * t - 1 and shown[3] >= (r1 + 1) * t - 1
    assert page.evaluate("tsnegrid.similar ? tsnegrid.similar.image : -1") == -1  # no pick
    page.evaluate("tsnegrid.viewer.viewport.goHome(true)")
    image = doc["images"][0]
    page.mouse.move(*_cell_centre(page, image["row"], image["col"]))
    page.locator("#tip").wait_for(state="visible", timeout=WAIT_MS)
    region = doc["regions"][image["region"]]["name"]
    assert page.locator("#tip .region").inner_text() == f"region: {region}"
    page.uncheck("#labels-shown")  # the panel's switch hides the names
    assert _labels(page) == []
    page.check("#labels-shown")
    assert _labels(page)
    page.goto((regions_site / "index.html").as_uri())
    _wait_loaded(page)
    page.screenshot(path=str(regions_site / "screenshot.png"))
    page.close()
    assert not errors


@needs_chromium
def test_a_layout_without_regions_has_no_names_switch(demo_page: Any) -> None:
    assert not demo_page.locator("#labels-row").is_visible()
    assert demo_page.evaluate("tsnegrid.labelRects()") == []
