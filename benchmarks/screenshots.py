"""The README's pictures of the demo, made from the demo itself: the viewer with region names
(``docs/regions.png``) and the mosaic with the names burnt in (``docs/demo-labels.jpg``).

    python benchmarks/screenshots.py [--out /tmp/tsnegrid-shots]

Needs Debian's chromium at /usr/bin/chromium and Playwright (the test extra).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024"
CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/tsnegrid-shots/emoji-1024"))
    args = ap.parse_args()
    tsnegrid = str(Path(sys.executable).with_name("tsnegrid"))
    subprocess.run([tsnegrid, "-q", "build", str(DEMO / "images"), "--out", str(args.out),
                    "--html", "--labels", "--metadata", str(DEMO / "labels.csv")], check=True)
    # grid.jpg has the names burnt in; the viewer shows grid-plain.jpg and draws its own
    from PIL import Image

    mosaic = Image.open(args.out / "grid.jpg")
    mosaic.thumbnail((1024, 1024))
    mosaic.save(ROOT / "docs" / "demo-labels.jpg", quality=85)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto((args.out / "index.html").as_uri())
        page.wait_for_function("window.tsnegrid && tsnegrid.viewer.world.getItemCount() > 0 && "
                               "tsnegrid.viewer.world.getItemAt(0).getFullyLoaded()",
                               timeout=60_000)
        page.wait_for_timeout(5000)  # the names fade in after the first frames
        page.screenshot(path=str(ROOT / "docs" / "regions.png"))
        browser.close()
    shutil.rmtree(args.out, ignore_errors=True)
    print("wrote docs/regions.png and docs/demo-labels.jpg")


if __name__ == "__main__":
    main()
