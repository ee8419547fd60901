"""The viewer at 100,000 images: the look-alikes' build cost and recall, the size of layout.js
and neighbors.js (against other encodings), and the page's load and interaction times in
headless Chromium.

Usage: python benchmarks/viewer.py [--n 100000] [--dim 1280]
The layout is the 1,024 demo emoji repeated to N images on a square grid, with the demo's
labels.csv as metadata (as the earlier 100k viewer figures in docs/viewer.md); the vectors are
a generated mixture of 50 clusters in --dim dimensions (Lite0's vectors have 1,280). Recall of
the look-alikes is also measured on Fashion-MNIST's 70,000 raw-pixel vectors (real structure).
Writes the "viewer" section of benchmarks/RESULTS.md. Needs Debian's chromium and playwright.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024"
FMNIST = ROOT.parent / "shared" / "datasets" / "fashion-mnist"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def mixture(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim)).astype(np.float32)
    return (centres[rng.integers(0, 50, n)]
            + 0.6 * rng.normal(size=(n, dim)).astype(np.float32))


def fashion() -> np.ndarray:
    parts = []
    for part in ("train", "t10k"):
        with gzip.open(FMNIST / f"{part}-images-idx3-ubyte.gz") as f:
            parts.append(np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784))
    return np.concatenate(parts).astype(np.float32)


def look_alikes(x: np.ndarray, sample: int = 300) -> dict[str, float]:
    """similar_images' time, and its recall@20 against exact search in the full vectors on a
    fixed sample of rows."""
    from tsnegrid.reduce.neighbors import SIMILAR_K, similar_images

    t0 = time.perf_counter()
    got = similar_images(x, seed=0)
    secs = time.perf_counter() - t0
    rows = np.random.default_rng(1).choice(len(x), sample, replace=False)
    sq = (x.astype(np.float64) ** 2).sum(1)
    hits = 0
    for r in rows:
        d = sq - 2 * x.astype(np.float64) @ x[r].astype(np.float64)
        d[r] = np.inf
        exact = np.argpartition(d, SIMILAR_K)[:SIMILAR_K]
        hits += len(set(exact.tolist()) & set(got[r].tolist()))
    return {"n": len(x), "dim": x.shape[1], "seconds": secs,
            "recall": hits / (sample * SIMILAR_K), "neighbors": got}


def write_site(n: int, neighbors: np.ndarray, out: Path) -> dict[str, Any]:
    from tsnegrid.layout import Layout
    from tsnegrid.metadata import load_metadata
    from tsnegrid.render import RenderConfig, render_outputs
    from tsnegrid.settings import Settings

    files = sorted(str(p) for p in (DEMO / "images").iterdir())
    side = math.ceil(math.sqrt(n))
    cells = np.random.default_rng(0).permutation(side * side)[:n].astype(np.int64)
    s = Settings(html=True, tiles=True, tile=64)
    layout = Layout(paths=tuple(files[i % len(files)] for i in range(n)), cells=cells,
                    coords=np.zeros((n, 2)), rows=side, cols=side, model_id="bench",
                    settings=s, neighbors=neighbors, neighbors_from="vectors")
    t0 = time.perf_counter()
    render_outputs(layout, out, RenderConfig.from_settings(s),
                   metadata=load_metadata(DEMO / "labels.csv"))
    packed = json.loads((out / "neighbors.js").read_text()[len("window.TSNEGRID_NEIGHBORS = "):]
                        .rstrip().rstrip(";"))
    return {"grid": side, "render_s": time.perf_counter() - t0,
            "layout_js": (out / "layout.js").stat().st_size,
            "neighbors_js": (out / "neighbors.js").stat().st_size,
            "bytes": packed["bytes"],
            "int32_b64": len(base64.b64encode(neighbors.astype("<i4").tobytes())),
            "json_list": len(json.dumps(neighbors.tolist(), separators=(",", ":")))}


def page_times(out: Path, n: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    url = (out / "index.html").as_uri()
    loaded = ("window.tsnegrid && tsnegrid.viewer.world.getItemCount() > 0 && "
              "tsnegrid.viewer.world.getItemAt(0).getFullyLoaded()")
    res: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        t0 = time.perf_counter()
        page.goto(url)
        res["load_event_s"] = time.perf_counter() - t0
        page.wait_for_function(loaded, timeout=120_000)
        res["drawn_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        page.evaluate("tsnegrid.showSimilar(123)")  # loads and decodes neighbors.js
        res["first_similar_s"] = time.perf_counter() - t0
        res["next_similar_ms"] = page.evaluate(
            "(async () => { const t = performance.now(); await tsnegrid.showSimilar(4567);"
            " return performance.now() - t; })()")
        res["redraw_similar_ms"] = page.evaluate(
            "(() => { const t = performance.now(); tsnegrid.drawOverlay();"
            " return performance.now() - t; })()")
        page.evaluate("tsnegrid.clearSimilar()")
        res["select_all_csv_ms"] = page.evaluate(
            f"(() => {{ const t = performance.now();"
            f" tsnegrid.select(Array.from({{length: {n}}}, (_, i) => i));"
            f" const csv = tsnegrid.selectionCsv(); window.csvBytes = csv.length;"
            f" return performance.now() - t; }})()")
        res["csv_mb"] = page.evaluate("window.csvBytes") / 1e6
        res["redraw_selection_ms"] = page.evaluate(
            "(() => { const t = performance.now(); tsnegrid.drawOverlay();"
            " return performance.now() - t; })()")
        page.close()
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        t0 = time.perf_counter()
        page.goto(url + "#zoom=8.000&x=150.50&y=150.50&q=cat&colour=category&image=42")
        page.wait_for_function(loaded + " && tsnegrid.similar.image === 42", timeout=120_000)
        res["hash_open_s"] = time.perf_counter() - t0
        browser.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    args = ap.parse_args()
    gen = look_alikes(mixture(args.n, args.dim))
    real = look_alikes(fashion())
    with tempfile.TemporaryDirectory() as tmp:
        site = write_site(args.n, gen["neighbors"], Path(tmp))
        page = page_times(Path(tmp), args.n)
    mb = 1e6
    lines = [
        "## Viewer at 100,000 images (`benchmarks/viewer.py`)", "",
        f"{args.n:,} images (the demo's 1,024 emoji repeated, with its labels.csv) on a "
        f"{site['grid']}x{site['grid']} grid, DZI pyramid; headless Chromium, 1200x800 window.",
        "", "Look-alikes (20 per image, `similar_images`, computed at build time):", "",
        "| vectors | N | D | time (s) | recall@20 vs exact |", "|---|---|---|---|---|",
        *(f"| {name} | {r['n']:,} | {r['dim']} | {r['seconds']:.1f} | {r['recall']:.3f} |"
          for name, r in (("generated 50-cluster mixture", gen),
                          ("Fashion-MNIST raw pixels", real))),
        "", "Files:", "",
        "| file | size (MB) |", "|---|---|",
        f"| layout.js | {site['layout_js'] / mb:.1f} |",
        f"| neighbors.js ({site['bytes']} bytes per index, base64; chosen) | "
        f"{site['neighbors_js'] / mb:.1f} |",
        f"| the same as base64 int32 (not used) | {site['int32_b64'] / mb:.1f} |",
        f"| the same as a JSON list (not used) | {site['json_list'] / mb:.1f} |",
        "", "Page:", "",
        "| step | time |", "|---|---|",
        f"| open to the load event | {page['load_event_s']:.2f} s |",
        f"| open to fully drawn | {page['drawn_s']:.2f} s |",
        f"| open with a hash (zoom 8, search, colour, picked image) to fully drawn | "
        f"{page['hash_open_s']:.2f} s |",
        f"| first click's look-alikes (loads and decodes neighbors.js) | "
        f"{page['first_similar_s']:.2f} s |",
        f"| a later click's look-alikes | {page['next_similar_ms']:.1f} ms |",
        f"| overlay redraw with look-alikes, whole grid visible | "
        f"{page['redraw_similar_ms']:.1f} ms |",
        f"| select all {args.n:,} and make the CSV ({page['csv_mb']:.1f} MB) | "
        f"{page['select_all_csv_ms']:.0f} ms |",
        f"| overlay redraw with all selected, whole grid visible | "
        f"{page['redraw_selection_ms']:.1f} ms |",
        "", f"Rendering the site (pyramid and viewer): {site['render_s']:.1f} s. Load average "
        f"(1 min) at the end of the run: {os.getloadavg()[0]:.1f} (other jobs share the machine; "
        "times grow with it). The mixture's recall says little: in 1,280-d noise every point is "
        "nearly as far from all others.",
    ]
    write_section("viewer", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
