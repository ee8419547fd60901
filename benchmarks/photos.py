"""Photo collections at the decoder's limit: camera-size JPEGs (and the demo's PNGs) built cold
and warm, against the bounds that decoding and the model set, beside the code before tiles were
kept in the embed pass (the anchor, run from ``git archive`` of ``--anchor``).

Usage: python benchmarks/photos.py [--source DIR] [--sizes 200,1000] [--anchor REV] [--no-demo]

The photos: ``--sizes`` 4000 x 3000 JPEGs (quality 92, 4:2:0, as a camera writes) made from the
Debian MATE wallpapers (package mate-backgrounds, GPL-2+; ``apt-get install mate-backgrounds``,
or ``apt-get download mate-backgrounds && dpkg-deb -x mate-backgrounds_*.deb DIR`` and
``--source DIR/usr/share/backgrounds/mate``): photo i is a random 4:3 crop (seeded by i) of one
of the wallpapers, resized to 4000 x 3000 with added grain (Gaussian, sigma 6 levels, like a
sensor's: it gives camera-like files of about 3 MB). They are made once under ``--work``; they
are never committed.

Measured side by side in one run, for each set:
- decode: ``open_image`` at the model's 224 px (DCT-scaled for JPEG) on one thread per core;
- model: Lite0 alone at the build's batch size (32) and threads (all cores);
- bound: both sharing the cores, 1 / (1/decode + 1/model) images/s;
- the build (``tsnegrid build``, defaults, own cache) cold and warm (cache kept, same tile), new
  and anchor, each in a child process: wall time, its stages, peak RSS; and whether new and
  anchor give the same grid (every image in the same cell) and the same vectors.
Writes the "photos" section of benchmarks/RESULTS.md. With ``--formats``, only the decode of
the same 12-MP photos as JPEG (DCT-scaled), PNG and WebP (full size: their codecs cannot
scale), into the "photos-formats" section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024" / "images"
ANCHOR = "f8af222"
"""The commit before tiles were made in the embed pass: the code this benchmark compares with."""
SIZE = (4000, 3000)
GRAIN = 6.0
"""Sensor-like grain (levels of 255): 12-MP files of about 3 MB, like a camera's."""


def make_photos(source: Path, n: int, folder: Path) -> list[Path]:
    """``n`` camera-size JPEGs from the wallpapers in ``source`` (made once, then reused)."""
    walls = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    if not walls:
        sys.exit(f"{source}: no wallpapers here; see this script's docstring for where to get "
                 f"the Debian MATE wallpapers")
    folder.mkdir(parents=True, exist_ok=True)
    pictures = [Image.open(w).convert("RGB") for w in walls]
    noise = np.random.default_rng(0).normal(128, GRAIN, (SIZE[1] + 64, SIZE[0] + 64, 3))
    grain = Image.fromarray(np.clip(np.round(noise), 0, 255).astype(np.uint8))

    def one(i: int) -> Path:
        path = folder / f"photo-{i:05d}.jpg"
        if path.exists():
            return path
        rng = np.random.default_rng(i)
        wall = pictures[int(rng.integers(len(pictures)))]
        w, h = wall.size
        ch = int(min(h, w * 3 / 4) * rng.uniform(0.5, 1.0))
        cw = ch * 4 // 3
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        big = wall.crop((x, y, x + cw, y + ch)).resize(SIZE, Image.Resampling.BICUBIC)
        dx, dy = int(rng.integers(64)), int(rng.integers(64))
        grainy = ImageChops.add(big, grain.crop((dx, dy, dx + SIZE[0], dy + SIZE[1])),
                                offset=-128)  # big + N(0, GRAIN), clipped
        tmp = path.with_suffix(".tmp")
        grainy.save(tmp, format="JPEG", quality=92, subsampling=2)
        tmp.rename(path)
        return path

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(one, range(n)))


def anchor_tree(rev: str, dest: Path) -> Path:
    """The ``src`` folder of ``rev`` (with this checkout's compiled kernels) under ``dest``."""
    data = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    for so in (ROOT / "src").rglob("*.so"):
        target = dest / so.relative_to(ROOT)
        if not target.exists():
            shutil.copy2(so, target)
    return dest / "src"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def decode_rate(paths: list[Path]) -> tuple[float, float]:
    """Images/s of the build's decode for the model, one thread per core, and CPU s an image."""
    from tsnegrid.load import open_image

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        t0, c0 = time.perf_counter(), _cpu()
        list(pool.map(lambda p: open_image(p, min_side=224).size, paths))
        return len(paths) / (time.perf_counter() - t0), (_cpu() - c0) / len(paths)


def model_rate(batch: int = 32, rounds: int = 6) -> tuple[float, float]:
    """Images/s of Lite0 alone at the build's batch size and threads, and CPU s an image."""
    from tsnegrid.embed.lite0 import load_lite0

    model = load_lite0()
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, 224, 224)).astype(np.float32)
    model.embed_batch(x)  # warm-up
    t0, c0 = time.perf_counter(), _cpu()
    for _ in range(rounds):
        model.embed_batch(x)
    return batch * rounds / (time.perf_counter() - t0), (_cpu() - c0) / batch / rounds


def bounds(paths: list[Path]) -> dict[str, float]:
    """The bare decode and model (images/s, CPU s an image) and the bound of both sharing the
    cores: 1 / (1/decode + 1/model) images/s, and their CPU s an image added."""
    decode, decode_cpu = decode_rate(paths[:100])
    model, model_cpu = model_rate()
    return {"decode": decode, "model": model, "bound": 1 / (1 / decode + 1 / model),
            "cpu": decode_cpu + model_cpu}


def decoders(paths: list[Path], extra: list[str]) -> list[str]:
    """Milliseconds per image of the DCT-scaled decode (to cover 224 px) by Pillow (the
    build's), simplejpeg and PyTurboJPEG where they are installed (``extra``: folders to find
    them in), one thread, each image decoded by each in turn, so the machine's load falls on
    all alike; and whether they give Pillow's pixels."""
    sys.path.extend(extra)
    data = [p.read_bytes() for p in paths]

    def pillow(d: bytes) -> np.ndarray:
        im = Image.open(BytesIO(d))
        w, h = im.size
        scale = min(w, h) / 224
        im.draft("RGB", (int(w / scale), int(h / scale)))
        return np.asarray(im.convert("RGB"))

    fns = {"Pillow (draft)": pillow}
    missing = []
    try:
        import simplejpeg

        fns["simplejpeg"] = lambda d: simplejpeg.decode_jpeg(d, colorspace="RGB",
                                                             min_height=224, min_width=224)
    except ImportError:
        missing.append("simplejpeg")
    try:
        import turbojpeg

        tj = turbojpeg.TurboJPEG()
        fns["PyTurboJPEG"] = lambda d: tj.decode(d, scaling_factor=(1, 8))
    except (ImportError, OSError, RuntimeError) as exc:
        missing.append(f"PyTurboJPEG ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    names = list(fns)
    total = dict.fromkeys(names, 0.0)
    same = dict.fromkeys(names, True)
    for k, d in enumerate(data):
        outs = {}
        for j in range(len(names)):
            name = names[(j + k) % len(names)]
            t0 = time.perf_counter()
            outs[name] = fns[name](d)
            total[name] += time.perf_counter() - t0
        for name in names[1:]:
            same[name] = same[name] and np.array_equal(outs[name], outs[names[0]])
    base = total[names[0]]
    lines = [f"- {n}: {1000 * t / len(data):.1f} ms per image, {base / t:.2f}x Pillow"
             + ("" if n == names[0] else f"; same pixels: {'yes' if same[n] else 'no'}")
             for n, t in total.items()]
    return lines + [f"- not measured: {m}" for m in missing]


def formats(photos: list[Path], work: Path, n: int = 12) -> list[str]:
    """ms per image of the build's decode (``open_image`` at 224 px) of the same photos as JPEG,
    PNG and lossy WebP, one thread, interleaved."""
    from tsnegrid.load import open_image

    folder = work / "formats"
    folder.mkdir(exist_ok=True)
    kinds: dict[str, list[Path]] = {"JPEG": photos[:n], "PNG": [], "WebP": []}
    for p in photos[:n]:
        for kind, ext, opts in (("PNG", "png", {"compress_level": 6}),
                                ("WebP", "webp", {"quality": 90})):
            target = folder / f"{p.stem}.{ext}"
            if not target.exists():
                Image.open(p).save(target, **opts)
            kinds[kind].append(target)
    total = dict.fromkeys(kinds, 0.0)
    names = list(kinds)
    for k in range(n):
        for j in range(len(names)):
            kind = names[(j + k) % len(names)]
            t0 = time.perf_counter()
            open_image(kinds[kind][k], min_side=224)
            total[kind] += time.perf_counter() - t0
    size = {kind: sum(p.stat().st_size for p in ps) / len(ps) / 2**20 for kind, ps in kinds.items()}
    return [f"- {kind}: {1000 * t / n:.0f} ms per image ({size[kind]:.1f} MB files), "
            f"{t / total['JPEG']:.1f}x the JPEG's" for kind, t in total.items()]


_CHILD = ("import sys, os, atexit; sys.path.insert(0, sys.argv.pop(1)); "
          "hwm = lambda: open(os.environ['PHOTOS_RSS'], 'w').write(next(l for l in "
          "open('/proc/self/status') if l.startswith('VmHWM'))); atexit.register(hwm); "
          "from tsnegrid.cli import main; sys.argv[0] = 'tsnegrid'; main()")
"""A build in a child: its own peak RSS is VmHWM (a fork's maxrss would count the parent's)."""


@dataclass
class Run:
    """One build: wall and CPU s, peak RSS MiB, its stages' times, each image's cell."""

    wall: float
    cpu: float
    rss: float
    timings: dict[str, float]
    cells: dict[str, tuple[int, int]]

    @property
    def embed(self) -> float:
        return float(self.timings.get("embed", 0.0))

    @property
    def render(self) -> float:
        return float(self.timings.get("render", 0.0)) + float(self.timings.get("pyramid", 0.0))


def run_build(src: Path, images: Path, out: Path, cache: Path) -> Run:
    """One ``tsnegrid build`` with its defaults in a child process."""
    cmd = [sys.executable, "-c", _CHILD, str(src), "build", str(images), "--out", str(out),
           "--cache-dir", str(cache), "--quiet"]
    rss = out.with_name(out.name + ".rss")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PHOTOS_RSS": str(rss)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"build failed ({status}): {' '.join(cmd)}")
    data = json.loads((out / "layout.json").read_text())
    return Run(wall, usage.ru_utime + usage.ru_stime, int(rss.read_text().split()[1]) / 1024,
               data["timings"], {r["path"]: (r["row"], r["col"]) for r in data["images"]})


def cached_vectors(cache: Path) -> dict[tuple[str, str], np.ndarray]:
    with sqlite3.connect(cache / "embeddings.sqlite") as conn:
        return {(m, d): np.frombuffer(v, np.float32)
                for m, d, v in conn.execute("SELECT model, digest, vec FROM vectors")}


def compare(name: str, paths: list[Path], images: Path, src: Path, anchor: Path,
            work: Path) -> tuple[list[str], str]:
    """Cold and warm builds of ``images``, anchor and new in turn (cold, cold, warm, warm),
    between two measures of the bound: table rows and a verdict line."""
    n = len(paths)
    before = bounds(paths)
    runs: dict[str, Run] = {}
    for phase in ("cold", "warm"):
        for who, tree in (("anchor", anchor), ("new", src)):
            cache = work / f"cache-{who}"
            if phase == "cold":
                shutil.rmtree(cache, ignore_errors=True)
            out = work / f"out-{who}-{phase}"
            shutil.rmtree(out, ignore_errors=True)
            runs[f"{who} {phase}"] = run_build(tree, images, out, cache)
            print(name, n, who, phase, f"{runs[f'{who} {phase}'].wall:.1f} s", flush=True)
    after = bounds(paths)
    b = {k: (before[k] + after[k]) / 2 for k in before}
    rows = [f"| {name} | {n:,} | {key} | {r.wall:.1f} | {r.cpu:.1f} | {r.embed:.2f} | "
            f"{n / r.embed if r.embed else 0:.1f} | {r.render:.2f} | "
            f"{100 * r.render / r.wall:.0f}% | {r.wall - r.embed - r.render:.2f} | {r.rss:.0f} |"
            for key, r in runs.items()]
    new, old = runs["new cold"], runs["anchor cold"]
    warm, old_warm = runs["new warm"], runs["anchor warm"]
    same_grid = new.cells == old.cells == warm.cells
    va, vn = cached_vectors(work / "cache-anchor"), cached_vectors(work / "cache-new")
    worst = max((float(np.abs(va[k] - vn[k]).max()) for k in va if k in vn), default=-1.0)
    verdict = (
        f"- {name}, {n:,} images: bound {b['bound']:.1f} images/s (decode {b['decode']:.1f}, "
        f"model {b['model']:.1f}; {before['bound']:.1f} before the builds, "
        f"{after['bound']:.1f} after); embed stage cold {n / new.embed:.1f} images/s = "
        f"**{100 * n / new.embed / b['bound']:.0f}%** of the bound (anchor "
        f"{100 * n / old.embed / b['bound']:.0f}%); cold build {new.wall:.1f} s = "
        f"**{new.wall / (n / b['bound']):.2f}x** the bound's {n / b['bound']:.1f} s (anchor "
        f"{old.wall:.1f} s, {old.wall / (n / b['bound']):.2f}x; new/anchor "
        f"{new.wall / old.wall:.2f}), CPU {new.cpu:.0f} s = {new.cpu / (n * b['cpu']):.2f}x "
        f"the bare decode's and model's {n * b['cpu']:.0f} s (anchor {old.cpu:.0f} s); render "
        f"**{100 * new.render / new.wall:.1f}%** of the cold build (anchor "
        f"{100 * old.render / old.wall:.0f}%); warm {warm.wall:.1f} s = "
        f"**{100 * warm.wall / new.wall:.0f}%** of cold (anchor {old_warm.wall:.1f} s = "
        f"{100 * old_warm.wall / old.wall:.0f}%); same grid as the anchor: "
        f"{'yes' if same_grid else 'NO'}; vectors' largest difference from the anchor's "
        f"{worst:.1e}")
    return rows, verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", type=Path, default=Path("/usr/share/backgrounds/mate"),
                    help="folder of the MATE wallpapers")
    ap.add_argument("--sizes", default="200,1000")
    ap.add_argument("--anchor", default=ANCHOR, help="git revision to compare with")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tsnegrid-photos")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo's PNGs")
    ap.add_argument("--note", default="", help="a line on the machine's load, for the results")
    ap.add_argument("--formats", action="store_true",
                    help="only the decode of the photos as JPEG, PNG and WebP")
    ap.add_argument("--decoders-path", action="append", default=[],
                    help="a folder holding simplejpeg / turbojpeg to compare (pip --target)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    photos = make_photos(args.source, max(sizes), work / "photos")
    if args.formats:
        lines = formats(photos, work)
        print("\n".join(lines))
        write_section("photos-formats", "\n".join([
            "## Photo formats: what a decode costs without DCT scaling",
            "",
            f"The build's decode (`open_image` at the model's 224 px) of 12 of the {SIZE[0]} x "
            f"{SIZE[1]} photos of benchmarks/photos.py saved as JPEG (decoded at 1/8 scale), PNG "
            "and WebP (decoded at full size, then reduced), one thread, interleaved.",
            *([args.note] if args.note else []),
            "",
            *lines]))
        return
    anchor = anchor_tree(args.anchor, work / "anchor")
    src = ROOT / "src"
    load = os.getloadavg()
    sets: list[tuple[str, Path, list[Path]]] = []
    for n in sizes:
        folder = work / f"set-{n}"
        if not folder.is_dir() or len(list(folder.iterdir())) != n:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for p in photos[:n]:
                os.link(p, folder / p.name)
        sets.append(("camera JPEGs", folder, sorted(folder.iterdir())))
    if not args.no_demo:
        sets.append(("demo PNGs", DEMO, sorted(DEMO.iterdir())))
    compared = decoders(photos[:60], args.decoders_path)
    print("\n".join(compared), flush=True)
    rows, verdicts = [], []
    for name, folder, paths in sets:
        out, verdict = compare(name, paths, folder, src, anchor, work / "runs")
        rows += out
        verdicts.append(verdict)
        print("\n".join([*out, verdict]), flush=True)
    body = "\n".join([
        "## Photo collections: one decode per image, on every core",
        "",
        f"{SIZE[0]} x {SIZE[1]} JPEGs made from the Debian MATE wallpapers (random 4:3 crops, "
        "grain added; see benchmarks/photos.py) and the demo's 1,024 PNGs, built by "
        f"`tsnegrid build` with its defaults, new code beside the anchor ({args.anchor}: "
        "before the embed pass made the tiles). Cold: empty cache; warm: the same command "
        "again; anchor and new in turn. Render = mosaic (+ pyramid); rest = wall - embed - "
        "render (start-up, reduce, arrange and refine, regions, writing). The bound is "
        "measured before and after each set's builds (bare decode on one thread per core, bare "
        "model at batch 32 on all cores) and averaged. Load average (1 min) "
        f"{load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on "
        f"{os.cpu_count()} cores (other work ran on the machine: wall times are noisy; CPU s "
        "less so).",
        *([args.note] if args.note else []),
        "",
        "| set | images | run | wall s | CPU s | embed s | embed images/s | render s "
        "| render/wall | rest s | peak RSS MiB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        *verdicts,
        "",
        f"JPEG decoders on {min(60, len(photos))} of the photos, DCT-scaled to cover 224 px, "
        "one thread, interleaved image by image:",
        "",
        *compared,
    ])
    write_section("photos", body)


if __name__ == "__main__":
    main()
