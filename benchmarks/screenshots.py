"""The README's pictures of the demo, made from the demo itself by the commands the README gives:
the mosaic of the demo command (``docs/demo-grid.jpg``), the mosaic with the region names burnt
in (``docs/demo-labels.jpg``), the viewer with region names (``docs/regions.png``) and the viewer
searching "cat", coloured by category, with a hover (``docs/viewer.png``).

    python benchmarks/screenshots.py [--out /tmp/tsnegrid-shots]

Needs Debian's chromium at /usr/bin/chromium and Playwright (the test extra). Run it after any
change that moves the demo's layout, names or viewer, and commit the four pictures.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024"
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"


def _thumbnail(src: Path, dest: Path) -> None:
    from PIL import Image

    with Image.open(src) as mosaic:
        mosaic.thumbnail((1024, 1024))
        mosaic.save(dest, quality=85)


def _loaded(page: Any) -> None:
    page.wait_for_function("window.tsnegrid && tsnegrid.viewer.world.getItemCount() > 0 && "
                           "tsnegrid.viewer.world.getItemAt(0).getFullyLoaded()",
                           timeout=60_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/tsnegrid-shots"))
    args = ap.parse_args()
    tsnegrid = str(Path(sys.executable).with_name("tsnegrid"))
    plain, named = args.out / "demo-out", args.out / "emoji-1024"
    # the README's demo command, as written there
    subprocess.run([tsnegrid, "-q", "build", str(DEMO), "--out", str(plain)], check=True)
    _thumbnail(plain / "grid.jpg", DOCS / "demo-grid.jpg")
    # the README's viewer command, with the names burnt into grid.jpg too
    subprocess.run([tsnegrid, "-q", "build", str(DEMO / "images"), "--out", str(named),
                    "--html", "--labels", "--metadata", str(DEMO / "labels.csv"),
                    "--names", "category"], check=True)
    _thumbnail(named / "grid.jpg", DOCS / "demo-labels.jpg")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto((named / "index.html").as_uri())
        _loaded(page)
        page.wait_for_timeout(5000)  # the names fade in after the first frames
        page.screenshot(path=str(DOCS / "regions.png"))
        page.uncheck("#labels-shown")
        page.fill("#search", "cat")
        page.select_option("#colour-by", "category")
        page.wait_for_timeout(1000)
        doc = json.loads((named / "layout.json").read_text())
        with open(DEMO / "labels.csv", newline="", encoding="utf-8") as f:
            cats = {r["file"] for r in csv.DictReader(f) if "cat" in r["name"].split()}
        cat = next(im for im in doc["images"] if Path(im["path"]).name in cats)
        xy = page.evaluate("""([row, col]) => {
            const t = TSNEGRID.tile, vp = tsnegrid.viewer.viewport;
            const p = vp.imageToViewerElementCoordinates(
                new OpenSeadragon.Point((col + 0.5) * t, (row + 0.5) * t));
            const box = tsnegrid.viewer.element.getBoundingClientRect();
            return [box.left + p.x, box.top + p.y]; }""", [cat["row"], cat["col"]])
        page.mouse.move(*xy)
        page.locator("#tip").wait_for(state="visible", timeout=10_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(DOCS / "viewer.png"))
        browser.close()
    shutil.rmtree(args.out, ignore_errors=True)
    print("wrote docs/demo-grid.jpg, docs/demo-labels.jpg, docs/regions.png, docs/viewer.png")


if __name__ == "__main__":
    main()
