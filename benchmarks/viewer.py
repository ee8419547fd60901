"""The viewer at 100,000 and 1,000,000 images: build cost of the page's data, the page's open,
memory and interaction times in headless Chromium, and the overview (screenshots).

Usage: python benchmarks/viewer.py [--sizes 100000,1000000] [--overview] [--tmp DIR]

Page sites: the demo's 1,024 emoji repeated to N images on a square grid (--tile 16, DZI
pyramid), with the demo's labels.csv as metadata (three fields), five concepts per image
(random ImageNet classes with random probabilities) and 20 look-alikes per image (random
indices: their quality is measured by benchmarks/neighbors.py; the page's cost is the same).
Measured: writing the page's data (``write_viewer``), the files' sizes, open to first tile and
to fully drawn, the JS heap (V8's used heap plus typed arrays' backing stores), hover
latency at three zoom levels (a block not yet loaded, then one loaded), a concept search across
all images, the first and a later "more like this", and select-all to CSV.

--overview: Fashion-MNIST's 70,000 images built from their pixels with names from their labels
(a real layout), and a 1,000,000-cell grid made from it (each cell of the 70k grid becomes 4 x 4
cells holding copies of its image, 16 copies each, without names: blocks stand in for regions),
both with the overview; screenshots of the home view to docs/overview-70k.png and
docs/overview-1m.png.
Writes the "viewer" section of benchmarks/RESULTS.md. Needs Debian's chromium and playwright.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024"
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]
LOADED = ("window.tsnegrid && tsnegrid.viewer.world.getItemCount() > 0 && "
          "tsnegrid.viewer.world.getItemAt(0).getFullyLoaded()")


def _dir_size(folder: Path) -> tuple[int, int, int]:
    sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
    return sum(sizes), len(sizes), max(sizes, default=0)


def page_site(n: int, out: Path) -> dict[str, Any]:
    """The synthetic site of ``n`` images (see the module's doc); build times by stage."""
    from PIL import Image

    from tsnegrid.concepts.names import class_ids, class_names
    from tsnegrid.metadata import load_metadata
    from tsnegrid.render.mosaic import make_tile
    from tsnegrid.render.pyramid import write_dzi
    from tsnegrid.render.viewer import write_viewer

    files = sorted(str(p) for p in (DEMO / "images").iterdir())
    thumbs = {f: make_tile(Image.open(f).convert("RGB"), 16, False, (255, 255, 255))
              for f in files}
    side = math.ceil(math.sqrt(n))
    rng = np.random.default_rng(0)
    cells = rng.permutation(side * side)[:n].astype(np.int64)
    paths = [files[i % len(files)] for i in range(n)]
    ids, names = class_ids(), class_names()
    classes = rng.integers(0, 1000, (n, 5))
    probs = rng.dirichlet(np.ones(6), n)[:, :5]
    images = [{"path": p, "row": int(c) // side, "col": int(c) % side,
               "concepts": [{"id": ids[k], "name": names[k], "value": round(float(v), 4)}
                            for k, v in zip(classes[i].tolist(), probs[i].tolist(),
                                            strict=True)]}
              for i, (p, c) in enumerate(zip(paths, cells.tolist(), strict=True))]
    doc = {"grid": {"rows": side, "cols": side}, "settings": {"tile": 16, "format": "jpg"},
           "images": images}
    neighbors = rng.integers(0, n, (n, 20))
    t0 = time.perf_counter()
    write_dzi(paths, cells, side, side, out, tile=16, load_tile=lambda p: thumbs[str(p)])
    pyramid_s = time.perf_counter() - t0
    meta = load_metadata(DEMO / "labels.csv")
    t0 = time.perf_counter()
    write_viewer(doc, out, metadata=meta, neighbors=neighbors, neighbors_from="vectors")
    viewer_s = time.perf_counter() - t0
    data_bytes, data_files, largest = _dir_size(out / "data")
    return {"grid": side, "pyramid_s": pyramid_s, "viewer_s": viewer_s,
            "layout_js": (out / "layout.js").stat().st_size, "data_bytes": data_bytes,
            "data_files": data_files, "largest": largest,
            "search_js": (out / "data" / "search.js").stat().st_size, "doc": doc}


def _heap_mb(page: Any, cdp: Any) -> float:
    """The page's JavaScript memory after a garbage collection: the V8 heap in use plus the
    typed arrays' backing stores, which live outside it (Runtime.getHeapUsage)."""
    cdp.send("HeapProfiler.collectGarbage")
    use = cdp.send("Runtime.getHeapUsage")
    return float(use["usedSize"] + use.get("backingStorageSize", 0)) / 2**20


def page_times(out: Path, doc: dict[str, Any], n: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    url = (out / "index.html").as_uri()
    res: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function("window.tsnegrid && tsnegrid.maxLevelLoaded >= 0",
                               timeout=120_000, polling=10)
        res["first_tile_s"] = time.perf_counter() - t0
        page.wait_for_function(LOADED, timeout=120_000, polling=10)
        res["drawn_s"] = time.perf_counter() - t0
        res["heap_open_mb"] = _heap_mb(page, cdp)
        # hover at three zooms: a cell in a block not loaded yet, then its neighbour
        rng = np.random.default_rng(2)
        for zoom in (1, 8, 64):
            page.evaluate(f"tsnegrid.viewer.viewport.zoomTo(tsnegrid.viewer.viewport"
                          f".getHomeZoom() * {zoom}, null, true)")
            page.evaluate("tsnegrid.viewer.viewport.applyConstraints(true)")
            box = page.evaluate("""() => {
                const vp = tsnegrid.viewer.viewport, b = vp.viewportToImageRectangle(
                    vp.getBounds(true)), t = TSNEGRID.tile;
                return [b.x / t, b.y / t, b.width / t, b.height / t];}""")
            times = []
            x0 = box[0] + box[2] * (0.3 + 0.4 * rng.random())
            y0 = box[1] + box[3] * (0.3 + 0.4 * rng.random())
            for cx, cy in ((x0, y0), (x0 + 1, y0)):  # a block not loaded yet, then the same
                xy = page.evaluate("""([x, y]) => {
                    const t = TSNEGRID.tile, vp = tsnegrid.viewer.viewport;
                    const p = vp.imageToViewerElementCoordinates(
                        new OpenSeadragon.Point((Math.floor(x) + 0.5) * t,
                                                (Math.floor(y) + 0.5) * t));
                    return [p.x, p.y];}""", [cx, cy])
                page.mouse.move(xy[0] + 3, xy[1] + 3)
                t0 = time.perf_counter()
                page.mouse.move(*xy)
                page.wait_for_function("tsnegrid.hovered >= 0 && "
                                       "!document.getElementById('tip').hidden",
                                       timeout=60_000, polling=5)
                times.append((time.perf_counter() - t0) * 1000)
            res[f"hover_{zoom}_cold_ms"], res[f"hover_{zoom}_warm_ms"] = times
        page.evaluate("tsnegrid.viewer.viewport.goHome(true)")
        for name, q in (("search_first_ms", "dog"), ("search_next_ms", "cat")):
            res[name] = page.evaluate(
                f"(async () => {{ const t = performance.now(); await tsnegrid.search('{q}');"
                f" return performance.now() - t; }})()")
        res["search_matches"] = page.evaluate("tsnegrid.matchCount")
        res["heap_search_mb"] = _heap_mb(page, cdp)
        page.evaluate("tsnegrid.search('')")
        for name, i in (("similar_first_ms", 123), ("similar_next_ms", n // 2)):
            res[name] = page.evaluate(
                f"(async () => {{ const t = performance.now(); await tsnegrid.showSimilar({i});"
                f" return performance.now() - t; }})()")
        page.evaluate("tsnegrid.clearSimilar()")
        res["select_all_csv_ms"] = page.evaluate(
            f"(async () => {{ const t = performance.now();"
            f" tsnegrid.select(Array.from({{length: {n}}}, (_, i) => i));"
            f" const blob = await tsnegrid.selectionBlob(); window.csvBytes = blob.size;"
            f" return performance.now() - t; }})()")
        res["csv_mb"] = page.evaluate("window.csvBytes") / 1e6
        res["heap_csv_mb"] = _heap_mb(page, cdp)
        res["chunks_loaded"] = page.evaluate("tsnegrid.chunksLoaded")
        browser.close()
    return res


# ---- the overview -----------------------------------------------------------------------------

def fashion_site(tmp: Path) -> tuple[Path, dict[str, float]]:
    """Fashion-MNIST 70k built from its pixels, names from its labels, with the overview."""
    from PIL import Image

    from large import load_fmnist
    from tsnegrid.pipeline import build
    from tsnegrid.settings import Settings

    imgs, labels = load_fmnist()
    folder = tmp / "fashion"
    folder.mkdir(parents=True, exist_ok=True)
    with open(tmp / "fashion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label"])
        for i, (im, lab) in enumerate(zip(imgs, labels, strict=True)):
            p = folder / f"{i:07d}.png"
            if not p.exists():
                Image.fromarray(im).save(p)
            w.writerow([p.name, FASHION_NAMES[lab]])
    np.save(tmp / "fashion.npy", imgs.reshape(len(imgs), -1).astype(np.float32) / 255)
    out = tmp / "fashion-out"
    t0 = time.perf_counter()
    layout = build([folder], out, Settings(html=True, tiles=True, tile=32, names="label",
                                           cache_dir=tmp / "cache"),
                   vectors=tmp / "fashion.npy", metadata=tmp / "fashion.csv")
    return out, {"build_s": time.perf_counter() - t0, **layout.timings}


def million_site(fashion_out: Path, tmp: Path) -> tuple[Path, dict[str, float]]:
    """A 1,000,000-cell grid from the 70k one: each cell becomes 4 x 4 copies of its image
    (16 hard links), rendered with the overview (blocks: no regions)."""
    from tsnegrid.layout import Layout
    from tsnegrid.render import RenderConfig, render_outputs
    from tsnegrid.settings import Settings

    doc = json.loads((fashion_out / "layout.json").read_text())
    rows, cols = doc["grid"]["rows"] * 4, doc["grid"]["cols"] * 4
    links = tmp / "million"
    links.mkdir(parents=True, exist_ok=True)
    paths, cells = [], []
    for im in doc["images"]:
        for dr in range(4):
            for dc in range(4):
                p = links / f"{Path(im['path']).stem}-{dr}{dc}.png"
                if not p.exists():
                    os.link(im["path"], p)
                paths.append(str(p))
                cells.append((im["row"] * 4 + dr) * cols + im["col"] * 4 + dc)
    n = len(paths)
    s = Settings(html=True, tiles=True, tile=16, max_pixels=1)  # the pyramid alone
    layout = Layout(paths=tuple(paths), cells=np.asarray(cells, np.int64),
                    coords=np.zeros((n, 2)), rows=rows, cols=cols, model_id="fashion-x16",
                    settings=s)
    out = tmp / "million-out"
    t0 = time.perf_counter()
    render_outputs(layout, out, RenderConfig.from_settings(s))
    return out, {"render_s": time.perf_counter() - t0, "n": n}


def screenshot(out: Path, dest: Path, zoom: float = 1.0) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        t0 = time.perf_counter()
        page.goto((out / "index.html").as_uri())
        page.wait_for_function(LOADED, timeout=120_000, polling=10)
        drawn = time.perf_counter() - t0
        if zoom != 1:
            page.evaluate(f"tsnegrid.viewer.viewport.zoomBy({zoom}, null, true)")
            page.wait_for_function(LOADED, timeout=120_000, polling=10)
        page.wait_for_timeout(800)  # the level blend
        page.screenshot(path=str(dest))
        browser.close()
    return drawn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--overview", action="store_true")
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="tsnegrid-viewer-"))
    lines = ["## The viewer at 100,000 and 1,000,000 images (`benchmarks/viewer.py`)", "",
             "Synthetic sites (the demo's emoji repeated, labels.csv's three fields, five "
             "random concepts and 20 random look-alikes per image, tile 16); headless "
             "Chromium, 1200x800 window. JS heap: V8's used heap plus typed arrays' backing "
             "stores, after a garbage collection.", "",
             "| | " + " | ".join(f"{int(n):,}" for n in args.sizes.split(",") if n) + " |",
             "|---|" + "---|" * len([n for n in args.sizes.split(",") if n])]
    rows: dict[str, list[str]] = {}

    def put(name: str, value: str) -> None:
        rows.setdefault(name, []).append(value)

    sizes = [int(x) for x in args.sizes.split(",") if x]
    for n in sizes:
        out = tmp / f"page{n}"
        shutil.rmtree(out, ignore_errors=True)
        site = page_site(n, out)
        res = page_times(out, site["doc"], n)
        print(n, {k: v for k, v in site.items() if k != "doc"}, res, flush=True)
        mb = 1e6
        put("grid", f"{site['grid']}x{site['grid']}")
        put("build: page data (`write_viewer`)", f"{site['viewer_s']:.1f} s")
        put("build: pyramid from prepared thumbnails", f"{site['pyramid_s']:.1f} s")
        put("layout.js (read up front)", f"{site['layout_js'] / mb:.1f} MB")
        put("data/ (loaded on demand)", f"{site['data_bytes'] / mb:.0f} MB in "
            f"{site['data_files']:,} files, largest {site['largest'] / mb:.2f} MB")
        put("of which the search index", f"{site['search_js'] / mb:.1f} MB")
        put("open to first tile", f"{res['first_tile_s']:.2f} s")
        put("open to fully drawn", f"{res['drawn_s']:.2f} s")
        put("JS heap, opened", f"{res['heap_open_mb']:.0f} MB")
        for z in (1, 8, 64):
            put(f"hover at {z}x home zoom: new block / same block",
                f"{res[f'hover_{z}_cold_ms']:.0f} / {res[f'hover_{z}_warm_ms']:.0f} ms")
        put("search a concept across all images: first (loads the index) / next",
            f"{res['search_first_ms']:.0f} / {res['search_next_ms']:.0f} ms "
            f"({int(res['search_matches']):,} matches)")
        put("JS heap after searching", f"{res['heap_search_mb']:.0f} MB")
        put("more like this: first / another block",
            f"{res['similar_first_ms']:.0f} / {res['similar_next_ms']:.0f} ms")
        put("select all, CSV", f"{res['select_all_csv_ms'] / 1000:.1f} s, "
            f"{res['csv_mb']:.0f} MB")
        put("JS heap after the CSV", f"{res['heap_csv_mb']:.0f} MB")
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    load = (f"Load average (1 min) at the end: {os.getloadavg()[0]:.1f} (other jobs share "
            "the 2 cores; times grow with it).")
    if sizes:
        lines += ["", load]
        write_section("viewer", "\n".join(lines))
        print("\n".join(lines))
    if args.overview:
        fashion_out, ft = fashion_site(tmp)
        drawn70 = screenshot(fashion_out, DOCS / "overview-70k.png")
        million_out, mt = million_site(fashion_out, tmp)
        drawn1m = screenshot(million_out, DOCS / "overview-1m.png")
        text = ["## The viewer's overview (`benchmarks/viewer.py --overview`)", "",
                "Screenshots of the home view: docs/overview-70k.png, docs/overview-1m.png. "
                f"Fashion-MNIST 70,000 built from pixels with names from labels in "
                f"{ft['build_s']:.0f} s (pyramid and overview {ft.get('pyramid', 0):.1f} s), "
                f"page drawn in {drawn70:.2f} s; the 1,000,000-cell grid made from it (4 x 4 "
                f"copies per image, blocks for regions) rendered in {mt['render_s']:.0f} s, "
                f"page drawn in {drawn1m:.2f} s.", "", load]
        write_section("viewer-overview", "\n".join(text))
        print("\n".join(text))


if __name__ == "__main__":
    main()
