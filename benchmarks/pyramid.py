"""Pyramid writer: tsnegrid's Pillow DZI writer beside a libvips ``dzsave`` one, same input.

Usage: python benchmarks/pyramid.py [--sizes 100000,1000000] [--decode-size 100000] [--tile 32]
       [--repeat 3] [--work DIR] [--anchor REV] [--dry-run]

Three writers, each with write_dzi's signature: tsnegrid's (Pillow level writers), a libvips
``dzsave`` one (below: it reads the grid as a PNG stream made band by band, stored deflate, so
memory stays a few bands) and the anchor, tsnegrid's writer at commit ``--anchor``. The first two
get the same bands of the grid from ``tsnegrid.render.pyramid.grid_bands``, so the same pixels.
The grid is Fashion-MNIST (../shared/datasets/fashion-mnist) on a square grid of ``--tile`` px
cells at random cells. Prepared runs hand the writer ready thumbnails through ``load_tile``
(10,000 distinct ones, cycled), so decoding is not what is measured; the decode run writes the
images as PNG files (hard links cycling over the 70,000 above that) and lets the writer decode
them on its thread pool. Each run is a child process, so its peak RSS (VmHWM) and CPU time are
its own; each writer runs ``--repeat`` times per case, round robin, and the medians are kept.
Each output is compared with the Pillow writer's: file names, the .dzi, and mean/max absolute
pixel difference per level. Needs ``pyvips`` and ``pyvips-binary`` (the ``bench`` extra).
Writes the "pyramid" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from _results import write_section
from large import link_images, load_fmnist, write_images
from tsnegrid.load import AlphaTally, Skipped
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.publish import write_text
from tsnegrid.render.pyramid import (
    DZI_OVERLAP,
    DZI_TILE,
    TILE_SAVE_OPTIONS,
    Pyramid,
    check_grid,
    dzi_xml,
    grid_bands,
    level_count,
)

THUMBS = 10_000
ROOT = Path(__file__).resolve().parents[1]
ANCHOR = "f8af222"
"""The Pillow writer before its band loads were chunked and its tiles encoded on their own
thread (one decoding task per image, tiles encoded between bands)."""


# --- the dzsave writer -------------------------------------------------------------------------

def vips_suffix(fmt: str) -> str:
    """dzsave's tile suffix with the Pillow writer's encoder settings."""
    opts = TILE_SAVE_OPTIONS[fmt][1]
    if fmt == "png":
        return f".png[compression={opts['compress_level']}]"
    return f".{fmt}[Q={opts['quality']}]"


class PngStream:
    """An 8-bit RGB PNG of the grid, made band by band as libvips reads it: stored deflate
    blocks, so there is nothing to compress or inflate beyond copies and checksums."""

    def __init__(self, width: int, height: int, bands: Iterator[Image.Image]) -> None:
        self.parts = self._parts(width, height, bands)
        self.pending = memoryview(b"")
        self.error: BaseException | None = None

    @staticmethod
    def _chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(data, zlib.crc32(tag))
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    def _parts(self, width: int, height: int, bands: Iterator[Image.Image]) -> Iterator[bytes]:
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        yield b"\x89PNG\r\n\x1a\n" + self._chunk(b"IHDR", ihdr)
        z = zlib.compressobj(0)
        for band in bands:
            rows = np.zeros((band.height, 1 + width * 3), np.uint8)  # filter byte 0: none
            rows[:, 1:] = np.asarray(band).reshape(band.height, -1)
            yield self._chunk(b"IDAT", z.compress(rows))
        yield self._chunk(b"IDAT", z.flush()) + self._chunk(b"IEND", b"")

    def read(self, size: int) -> memoryview | None:
        """libvips' read callback: up to ``size`` bytes, None at the end (or after an error,
        which is kept for the caller: an exception cannot cross libvips)."""
        try:
            while not len(self.pending):
                part = next(self.parts, None)
                if part is None:
                    return None
                self.pending = memoryview(part)
        except BaseException as exc:  # noqa: B036 - re-raised by write_dzi_dzsave
            self.error = exc
            return None
        out, self.pending = self.pending[:size], self.pending[size:]
        return out


def write_dzi_dzsave(
    paths: Sequence[str | Path],
    cells: NDArray[np.int64],
    rows: int,
    cols: int,
    out_dir: str | Path,
    *,
    tile: int = 64,
    fit: bool = False,
    background: tuple[int, int, int] = (255, 255, 255),
    fmt: str = "jpg",
    name: str = "grid",
    max_image_pixels: int = 178_956_970,
    workers: int = 0,
    progress: ProgressFn = no_progress,
    load_tile: Callable[[str | Path], Image.Image] | None = None,
    alpha: AlphaTally | None = None,
) -> Pyramid:
    """``write_dzi`` with libvips' dzsave making the tiles: staged under a hidden name, moved
    into place, the .dzi written last."""
    import pyvips

    cells = np.asarray(cells, dtype=np.int64)
    check_grid(len(paths), cells, rows, cols, tile, fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = out / f".{name}.dzsave"
    shutil.rmtree(f"{stage}_files", ignore_errors=True)
    width, height = cols * tile, rows * tile
    failed: dict[int, Skipped] = {}
    stream = PngStream(width, height, grid_bands(
        paths, cells, rows, cols, failed, tile=tile, fit=fit, background=background,
        max_image_pixels=max_image_pixels, workers=workers, progress=progress,
        load_tile=load_tile, alpha=alpha))
    source = pyvips.SourceCustom()
    source.on_read(stream.read)
    image = pyvips.Image.pngload_source(source, access="sequential", unlimited=True)
    try:
        image.dzsave(str(stage), layout="dz", tile_size=DZI_TILE, overlap=DZI_OVERLAP,
                     depth="onepixel", suffix=vips_suffix(fmt), keep="none")
    except pyvips.Error:
        if stream.error is not None:
            raise stream.error from None
        raise
    if stream.error is not None:
        raise stream.error
    staged = Path(f"{stage}_files")
    (staged / "vips-properties.xml").unlink(missing_ok=True)
    Path(f"{stage}.dzi").unlink(missing_ok=True)
    folder = out / f"{name}_files"
    if folder.exists():
        shutil.rmtree(folder)
    staged.rename(folder)
    dzi = out / f"{name}.dzi"
    write_text(dzi, dzi_xml(width, height, fmt))  # last: it names the tiles
    return Pyramid(dzi, width, height, level_count(width, height), fmt,
                   tuple(failed[i] for i in sorted(failed)))


# --- one run (child process) -------------------------------------------------------------------

def grid_for(n: int) -> tuple[int, NDArray[np.int64]]:
    """The square grid for n images and their cells (a fixed random placement)."""
    side = int(np.ceil(np.sqrt(n)))
    return side, np.random.default_rng(0).permutation(side * side)[:n].astype(np.int64)


def child(spec: dict[str, object]) -> dict[str, object]:
    from tsnegrid.render.mosaic import make_tile
    from tsnegrid.render.pyramid import write_dzi

    n, tile = int(spec["n"]), int(spec["tile"])  # type: ignore[call-overload]
    side, cells = grid_for(n)
    load_tile = None
    paths: list[str] | list[Path]
    if spec["mode"] == "prepared":
        imgs, _ = load_fmnist()
        thumbs = [make_tile(Image.fromarray(im).convert("RGB"), tile, False, (255, 255, 255))
                  for im in imgs[:THUMBS]]
        paths = [str(i) for i in range(n)]

        def load_tile(path: str | Path) -> Image.Image:
            return thumbs[int(path) % THUMBS]
    else:
        paths = [Path(p) for p in json.loads(Path(str(spec["paths"])).read_text())[:n]]
    write = {"pillow": write_dzi, "dzsave": write_dzi_dzsave,
             "anchor": lambda *a, **k: anchor_module(str(spec["anchor"])).write_dzi(*a, **k),
             }[str(spec["writer"])]
    out = Path(str(spec["out"]))
    load0 = os.getloadavg()[0]
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    result = write(paths, cells, side, side, out, tile=tile, load_tile=load_tile)
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM"))
    return {"seconds": seconds, "cpu": r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime,
            "rss_mib": hwm / 1024, "levels": result.levels, "failed": len(result.failed),
            "load": [load0, os.getloadavg()[0]]}


def anchor_module(rev: str) -> ModuleType:
    """tsnegrid.render.pyramid as it was at commit ``rev`` (the anchor writer)."""
    source = subprocess.check_output(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/tsnegrid/render/pyramid.py"], text=True)
    module = ModuleType("pyramid_anchor")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:pyramid.py", "exec"), module.__dict__)
    return module


def median_run(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Median wall and CPU seconds of repeated runs, the largest peak RSS, the loads' range."""
    loads = [x for t in trials for x in t["load"]]
    return {**trials[0], "seconds": float(np.median([t["seconds"] for t in trials])),
            "range": (min(t["seconds"] for t in trials), max(t["seconds"] for t in trials)),
            "cpu": float(np.median([t["cpu"] for t in trials])),
            "rss_mib": max(t["rss_mib"] for t in trials), "load": [min(loads), max(loads)]}


def run_child(spec: dict[str, object]) -> dict[str, object]:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- comparing two outputs ---------------------------------------------------------------------

def tree(out: Path, name: str = "grid") -> dict[str, int]:
    """Relative file name -> size, for the .dzi and every tile."""
    files = {f"{name}.dzi": (out / f"{name}.dzi").stat().st_size}
    for root, _, names in os.walk(out / f"{name}_files"):
        for f in names:
            p = Path(root) / f
            files[p.relative_to(out).as_posix()] = p.stat().st_size
    return files


def pixel_diff(a: Path, b: Path, names: set[str]) -> dict[int, tuple[float, int]]:
    """Per level: mean and max absolute difference over all tile pixels present in both."""
    sums: dict[int, list[int]] = {}
    for rel in names:
        if rel.endswith(".dzi"):
            continue
        level = int(rel.split("/")[1])
        with Image.open(a / rel) as ta, Image.open(b / rel) as tb:
            x = np.asarray(ta.convert("RGB"), np.int16)
            y = np.asarray(tb.convert("RGB"), np.int16)
        if x.shape != y.shape:
            sums.setdefault(level, [0, 0, 0])[2] = 255
            continue
        d = np.abs(x - y)
        s = sums.setdefault(level, [0, 0, 0])
        s[0] += int(d.sum())
        s[1] += d.size
        s[2] = max(s[2], int(d.max()))
    return {lv: (s[0] / max(s[1], 1), s[2]) for lv, s in sorted(sums.items())}


def compare(a: Path, b: Path) -> dict[str, object]:
    """Output ``b`` against ``a``: same file names and .dzi, and the worst level's pixels."""
    ta, tb = tree(a), tree(b)
    diff = pixel_diff(a, b, set(ta) & set(tb))
    return {"same_names": set(ta) == set(tb),
            "same_dzi": (a / "grid.dzi").read_bytes() == (b / "grid.dzi").read_bytes(),
            "mean_abs": max(m for m, _ in diff.values()),
            "max_abs": max(x for _, x in diff.values()),
            "bytes": sum(tb.values()), "tiles": len(tb) - 1}


# --- main --------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--decode-size", type=int, default=100_000, help="0: no decoding run")
    ap.add_argument("--tile", type=int, default=32)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tsnegrid-pyramid")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each writer per case")
    ap.add_argument("--anchor", default=ANCHOR, help="commit of the anchor Pillow writer")
    ap.add_argument("--dry-run", action="store_true", help="print the section, do not write it")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    args.work.mkdir(parents=True, exist_ok=True)
    cases = [("prepared", int(s)) for s in args.sizes.split(",") if s]
    if args.decode_size:
        cases.append(("decoded", args.decode_size))
        imgs, _ = load_fmnist()
        real = write_images(imgs[:args.decode_size], args.work / "fmnist")
        paths = link_images(real, args.decode_size, args.work / "links")
        (args.work / "paths.json").write_text(json.dumps([str(p) for p in paths]))

    writers = ["pillow", "dzsave", "anchor"]
    lines = []
    for mode, n in cases:
        side, _ = grid_for(n)
        trials: dict[str, list[dict[str, Any]]] = {w: [] for w in writers}
        for rep in range(args.repeat):  # round robin, each round starting with the next writer
            for writer in writers[rep % 3:] + writers[:rep % 3]:
                out = args.work / f"{writer}-{mode}-{n}"
                shutil.rmtree(out, ignore_errors=True)
                spec = {"writer": writer, "mode": mode, "n": n, "tile": args.tile,
                        "out": str(out), "paths": str(args.work / "paths.json"),
                        "anchor": args.anchor}
                trials[writer].append(run_child(spec))
                print(mode, n, writer, trials[writer][-1], flush=True)
        runs: dict[str, dict[str, Any]] = {w: median_run(t) for w, t in trials.items()}
        cmps = {}
        base = args.work / f"pillow-{mode}-{n}"
        for writer in writers:
            cmps[writer] = compare(base, args.work / f"{writer}-{mode}-{n}")
            print(mode, n, writer, cmps[writer], flush=True)
        for writer in writers:
            shutil.rmtree(args.work / f"{writer}-{mode}-{n}")
        p = runs["pillow"]
        for writer in writers:
            r, c = runs[writer], cmps[writer]
            label = f"pillow @ {args.anchor}" if writer == "anchor" else writer
            same = "yes" if c["same_names"] and c["same_dzi"] else "NO"
            lines.append(
                f"| {n:,} {mode} ({side}x{side}, {side * args.tile:,} px, {r['levels']} levels) "
                f"| {label} | {r['seconds']:.1f} ({r['range'][0]:.0f}-{r['range'][1]:.0f}) "
                f"| {r['seconds'] / p['seconds']:.2f}x "
                f"| {r['cpu']:.1f} | {r['cpu'] / p['cpu']:.2f}x | {r['rss_mib']:.0f} "
                f"| {c['bytes'] / 2**20:.1f} | {c['tiles']:,} | {same} "
                f"| {c['mean_abs']:.3f} / {c['max_abs']} "
                f"| {r['load'][0]:.1f} / {r['load'][1]:.1f} |")

    body = "\n".join([
        "## Pyramid writer",
        "",
        f"tsnegrid's Pillow DZI writer (`write_dzi`) beside a libvips dzsave writer with the "
        f"same signature (pyvips {_pyvips_version()}, in this script) and the Pillow writer "
        f"as it was at {args.anchor} (the anchor). All get the same bands "
        f"(`grid_bands`, or the anchor's own loop); tiles {args.tile} px, JPEG quality 85, 256 px "
        f"DZI tiles, overlap 0. Prepared: thumbnails handed in through `load_tile` "
        f"({THUMBS:,} Fashion-MNIST images, cycled), so decoding is not measured; decoded: PNG "
        f"files decoded on the writer's thread pool. Each writer ran {args.repeat} times per "
        f"case, round robin: wall and CPU (user + system seconds of the run's process) are the "
        f"medians (wall's range in brackets), peak RSS the largest, ratios to the Pillow "
        f"writer; layout: the same file names and .dzi as the Pillow writer's; pixels: the "
        f"worst level's mean absolute difference from the Pillow writer's tiles, and the "
        f"largest; load: the lowest / "
        f"highest 1-minute load average at the runs' starts and ends (other jobs shared the "
        f"2 cores).",
        "",
        "| case | writer | wall (s) | wall ratio | CPU (s) | CPU ratio | peak RSS (MiB) "
        "| MiB written | tiles | same layout | pixels: mean / max abs diff | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *lines,
    ])
    if args.dry_run:
        print(body)
    else:
        write_section("pyramid", body)


def _pyvips_version() -> str:
    import pyvips

    return f"{pyvips.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}." \
           f"{pyvips.version(2)}"


if __name__ == "__main__":
    main()
