"""The int8 Lite0 (``--model lite0-int8``) against the float model: speed, and what the vectors
and grids lose, on the labelled sets.

Usage: python benchmarks/int8.py [--fashion 2000]

Sets: emoji-google-64 (../shared/datasets, 2,000-odd emoji with category labels) and the first
``--fashion`` Fashion-MNIST test images (written as PNG files, labelled by class). For each set
and model: the vectors (``--features semantic``), their 10-NN agreement with the float model's
(the share of each image's 10 nearest neighbours that both find), the grid of a build (t-SNE,
assignment, refinement, as ``tsnegrid build``), its DPQ16 measured in the float vectors, and the
label agreement of 8-neighbours on the grid. Speed: the bare model at batch 32 on all cores,
float and int8 in turn. Writes the "int8" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from _results import write_section
from tsnegrid import metrics
from tsnegrid.arrange import ArrangeConfig, arrange, grid_shape
from tsnegrid.embed import EmbedConfig, EmbeddingCache, embed_images, make_embedder
from tsnegrid.reduce import ReduceConfig, reduce_points
from tsnegrid.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
MODELS = ("lite0", "lite0-int8")


def emoji_set() -> tuple[list[Path], NDArray[np.str_]]:
    root = DATA / "emoji-google-64"
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [root / "images" / r["file"] for r in rows], np.array([r["category"] for r in rows])


def fashion_set(n: int, folder: Path) -> tuple[list[Path], NDArray[np.uint8]]:
    root = DATA / "fashion-mnist"
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, im in enumerate(x):
        p = folder / f"{i:05d}.png"
        if not p.exists():
            Image.fromarray(im).save(p)
        paths.append(p)
    return paths, y


def vectors(paths: list[Path], model: str, cache_dir: Path) -> NDArray[np.float32]:
    embedder = make_embedder(model, cache_dir)
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
    try:
        emb = embed_images(paths, embedder, cache,
                           config=EmbedConfig(model=model, cache_dir=cache_dir, concepts=0))
    finally:
        cache.close()
    assert not emb.skipped
    return emb.vectors


def knn(v: NDArray[np.floating], k: int = 10) -> NDArray[np.int64]:
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    out = np.empty((len(u), k), dtype=np.int64)
    for s in range(0, len(u), 1024):
        sim = u[s:s + 1024] @ u.T
        sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf
        out[s:s + 1024] = np.argsort(-sim, axis=1)[:, :k]
    return out


def grid(v: NDArray[np.floating], s: Settings) -> tuple[NDArray[np.int64], int, int]:
    pts = reduce_points(v, ReduceConfig.from_settings(s))
    config = ArrangeConfig.from_settings(s)
    rows, cols = grid_shape(pts, config)
    return arrange(pts, v, config, shape=(rows, cols)).cells, rows, cols


def speed(rounds: int = 4) -> dict[str, float]:
    """Images/s of the bare models at batch 32, in turn."""
    models = {m: make_embedder(m, Path(tempfile.gettempdir())) for m in MODELS}
    x = np.random.default_rng(0).uniform(-1, 1, (32, 3, 224, 224)).astype(np.float32)
    total = dict.fromkeys(MODELS, 0.0)
    for m in models.values():
        m.embed_batch(x)
    for r in range(rounds):
        for name in MODELS if r % 2 == 0 else MODELS[::-1]:
            t0 = time.perf_counter()
            models[name].embed_batch(x)
            total[name] += time.perf_counter() - t0
    return {k: 32 * rounds / v for k, v in total.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fashion", type=int, default=2000)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tsnegrid-int8")
    args = ap.parse_args()
    s = Settings(features="semantic")
    load = os.getloadavg()[0]
    rates = speed()
    lines = [f"- bare model, batch 32, all cores: float {rates['lite0']:.1f} images/s, int8 "
             f"{rates['lite0-int8']:.1f} ({rates['lite0-int8'] / rates['lite0']:.2f}x)", ""]
    rows = []
    sets = [("emoji-google-64", *emoji_set()),
            (f"Fashion-MNIST {args.fashion:,}", *fashion_set(args.fashion, args.work / "fm"))]
    for name, paths, labels in sets:
        vec = {m: vectors(paths, m, args.work / "cache") for m in MODELS}
        ref = vec["lite0"].astype(np.float64)
        a, b = knn(vec["lite0"]), knn(vec["lite0-int8"])
        agree = float(np.mean([len(set(a[i]) & set(b[i])) / 10 for i in range(len(a))]))
        u = vec["lite0"] / np.linalg.norm(vec["lite0"], axis=1, keepdims=True)
        w = vec["lite0-int8"] / np.linalg.norm(vec["lite0-int8"], axis=1, keepdims=True)
        cos = (u * w).sum(axis=1)
        for m in MODELS:
            cells, r, c = grid(vec[m].astype(np.float64), s)
            rows.append(f"| {name} | {len(paths):,} | {m} | "
                        f"{'1.000' if m == 'lite0' else f'{agree:.3f}'} | "
                        f"{'1.000' if m == 'lite0' else f'{cos.mean():.3f} ({cos.min():.3f})'} | "
                        f"{metrics.dpq(ref, cells, c):.3f} | "
                        f"{metrics.neighbour_agreement(labels, cells, r, c):.3f} |")
            print(rows[-1], flush=True)
    write_section("int8", "\n".join([
        "## int8 Lite0 (`--model lite0-int8`) against the float model",
        "",
        "ONNX Runtime static quantization (QDQ, per-channel int8 weights in 7 bits, uint8 "
        "activations, calibrated on scikit-image's bundled photos and demo emoji: "
        "`python -m tsnegrid.embed.quantize`). Vectors with `--features semantic`; grids by "
        "t-SNE, assignment and refinement as `tsnegrid build`; DPQ16 measured in the float "
        "model's vectors for both grids; label agreement: share of 8-neighbours on the grid with "
        f"the same label. Load average (1 min) {load:.1f} at the start on {os.cpu_count()} "
        "cores (other work ran).",
        "",
        *lines,
        "| set | images | model | 10-NN agreement with float | cosine to float: mean (min) "
        "| DPQ16 | label agreement |",
        "|---|---:|---|---:|---:|---:|---:|",
        *rows,
    ]))


if __name__ == "__main__":
    main()
