"""Large collections: embedding throughput against the bare ONNX model, and whole builds from
precomputed vectors to a deep-zoom pyramid at 100k (and optionally 1M) images, with peak RSS.

Usage: python benchmarks/large.py [--embed 10000] [--sizes 100000,1000000] [--html]
Images are Fashion-MNIST (../shared/datasets/fashion-mnist) written as PNG files; above 70,000
images the files are hard links cycling over the 70,000. Vectors are the images' raw pixels
(784-d), each copy's its image's pixels plus Gaussian noise (sigma 0.02).
Writes the "large" section of benchmarks/RESULTS.md ("large-html" with --html). Each build runs
in a child process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
FMNIST = ROOT.parent / "shared" / "datasets" / "fashion-mnist"


def load_fmnist() -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images (N x 28 x 28 uint8) and labels."""
    imgs, labels = [], []
    for part in ("train", "t10k"):
        with gzip.open(FMNIST / f"{part}-images-idx3-ubyte.gz") as f:
            imgs.append(np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28))
        with gzip.open(FMNIST / f"{part}-labels-idx1-ubyte.gz") as f:
            labels.append(np.frombuffer(f.read(), np.uint8, offset=8))
    return np.concatenate(imgs), np.concatenate(labels)


def write_images(imgs: np.ndarray, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, im in enumerate(imgs):
        p = folder / f"{i:07d}.png"
        if not p.exists():
            Image.fromarray(im).save(p)
        paths.append(p)
    return paths


def link_images(real: list[Path], n: int, folder: Path) -> list[Path]:
    """n paths: the real files, then hard links cycling over them (distinct paths; symbolic
    links would resolve to, and count as, the same file)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = list(real[:n])
    for i in range(len(paths), n):
        p = folder / f"{i:07d}.png"
        if not p.exists():
            os.link(real[i % len(real)], p)
        paths.append(p)
    return paths


def embed_throughput(imgs: np.ndarray, tmp: Path, n: int) -> dict[str, float]:
    """images/s of tsnegrid's embedding (decode + hash + infer + cache) vs the bare model on
    pre-decoded, pre-processed arrays, same batch size and threads."""
    from tsnegrid.embed import embed_images, make_embedder
    from tsnegrid.embed.cache import EmbeddingCache
    from tsnegrid.embed.config import EmbedConfig
    from tsnegrid.load import open_image

    paths = write_images(imgs[:n], tmp / "embed")
    cache_dir = tmp / "cache"
    embedder = make_embedder("lite0", cache_dir)
    batch = np.stack([embedder.preprocess(open_image(p)) for p in paths[:32]])
    embedder.embed_batch(batch)  # warm-up

    def bare_rate() -> float:
        t0 = time.perf_counter()
        for _ in range(0, n, 32):
            embedder.embed_batch(batch)
        return n / (time.perf_counter() - t0)

    before = bare_rate()
    (tmp / "emb.sqlite").unlink(missing_ok=True)  # every image is embedded anew
    cache = EmbeddingCache(tmp / "emb.sqlite")
    t0 = time.perf_counter()
    out = embed_images(paths, embedder, cache,
                       config=EmbedConfig("lite0", cache_dir, batch_size=32))
    ours = n / (time.perf_counter() - t0)
    cache.close()
    bare = (before + bare_rate()) / 2  # bare runs on both sides of ours, against load drift
    assert out.vectors.shape[0] == n
    return {"n": n, "bare": bare, "tsnegrid": ours, "ratio": ours / bare}


CHILD = """
import json, resource, sys, time
from pathlib import Path
from tsnegrid import Settings, build
src, vec, out, cache = sys.argv[1:5]
t0 = time.perf_counter()
layout = build([src], out, Settings(cache_dir=Path(cache), tiles=True, tile=64,
                                    html=sys.argv[5] == "html"), vectors=vec)
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"wall": wall, "rss_gib": rss, "timings": layout.timings,
                  "metrics": layout.metrics, "grid": [layout.rows, layout.cols],
                  "placed": len(layout.paths)}))
"""


def whole_build(imgs: np.ndarray, tmp: Path, n: int, html: bool = False) -> dict[str, object]:
    real = write_images(imgs, tmp / "fmnist")
    paths = link_images(real, n, tmp / f"links{n}")
    listing = tmp / f"list{n}.txt"
    listing.write_text("\n".join(str(p) for p in paths))
    rng = np.random.default_rng(0)
    k = min(n, len(imgs))
    vec = np.zeros((n, 784), np.float32)
    vec[:k] = imgs[:k].reshape(k, -1) / 255.0
    for start in range(k, n, 70_000):  # each copy: its image's pixels plus a little noise
        stop = min(n, start + 70_000)
        vec[start:stop] = (imgs[np.arange(start, stop) % len(imgs)].reshape(stop - start, -1)
                           / 255.0 + rng.normal(0, 0.02, (stop - start, 784)))
    vfile = tmp / f"vec{n}.npy"
    np.save(vfile, vec)
    del vec
    out = subprocess.run([sys.executable, "-c", CHILD, str(listing), str(vfile),
                          str(tmp / f"out{n}"), str(tmp / "cache"),
                          "html" if html else "plain"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embed", type=int, default=10_000, help="images for the throughput run")
    parser.add_argument("--sizes", default="100000", help="comma-separated build sizes")
    parser.add_argument("--tmp", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--html", action="store_true",
                        help="build the viewer too (--html --tiles), with its stages timed")
    args = parser.parse_args()
    imgs, _ = load_fmnist()
    tmp_ctx = tempfile.TemporaryDirectory() if args.tmp is None else None
    tmp = Path(args.tmp or tmp_ctx.name)  # type: ignore[union-attr]
    lines = ["## Large collections", ""]
    if args.embed:
        e = embed_throughput(imgs, tmp, args.embed)
        lines += [
            f"Embedding {e['n']:,} Fashion-MNIST PNGs with Lite0 (batch 32, "
            f"{os.cpu_count()} threads): tsnegrid {e['tsnegrid']:.1f} images/s (decode, hash, "
            f"infer, cache) vs the bare ONNX model on pre-processed arrays {e['bare']:.1f} "
            f"images/s: ratio {e['ratio']:.2f} (target >= 0.80).", ""]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if sizes:
        lines += [f"Builds {'with `--html --tiles`' if args.html else 'with `--tiles`'}, "
                  "tile 64; stage times in seconds.", "",
                  "| N | grid | wall (s) | peak RSS (GiB) | load | reduce | assign | refine | "
                  "metrics | neighbors | render | pyramid | overview | kNN-10 | DPQ16 |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        r = whole_build(imgs, tmp, n, html=args.html)
        t = r["timings"]
        m = r["metrics"]
        lines.append(
            f"| {n:,} | {r['grid'][0]}x{r['grid'][1]} | {r['wall']:.0f} | {r['rss_gib']:.2f} | "
            + " | ".join(f"{t.get(k, 0):.0f}" for k in ("load", "reduce", "assign", "refine",
                                                          "metrics", "neighbors", "render",
                                                          "pyramid", "overview"))
            + f" | {m['knn10_preservation']:.3f} | {m['dpq16']:.3f} |")
        print(lines[-1], flush=True)
    if sizes:
        lines += ["", "Targets: 100k to a pyramid < 5 min, 1M < 1 h, peak RSS < 16 GiB. Metrics "
                  "above 2,048 images are estimated from a fixed sample of rows. Above 70,000 "
                  "the extra vectors are copies with a little noise, whose nearest neighbours "
                  "are mostly their own copies."]
    write_section("large-html" if args.html else "large", "\n".join(lines))
    print("\n".join(lines))
    if tmp_ctx is not None:
        tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
