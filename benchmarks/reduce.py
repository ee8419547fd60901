"""Reduction stage: tsnegrid's reducer against openTSNE defaults, scikit-learn TSNE and umap-learn.

Usage: python benchmarks/reduce.py [--data demo,emoji,fashion10k,fashion70k,generated100k,...]
       [--anchors opentsne,sklearn,umap] [--schemes auto,full,sample] [--max-anchor-s 300]
       [--queries 5000] [--dpq-max 10000]

Every method gets the same vectors and seed in one run, one after another on one thread
(``n_jobs=1``, BLAS limited to one thread). Times are end to end from the raw vectors: the anchors
are timed on PCA-50 and the PCA time is added to theirs (tsnegrid's own PCA is inside its time).
Quality: 10-NN preservation (fraction of each point's 10 nearest neighbours in the *raw* input
space that are among its 10 nearest in 2-D; on at most ``--queries`` sampled points) and, up to
``--dpq-max`` points, DPQ16 (Barthel et al. 2022) of the grid the pipeline makes from the points.
An anchor whose expected time exceeds ``--max-anchor-s`` is skipped and marked so.
Writes the "reduce" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from _results import write_section
from tsnegrid.reduce import reduce
from tsnegrid.reduce.pca import pca

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
SEED = 0
# Expected seconds per 1,000 points on the 2-core reference machine (from the issue and earlier
# runs of this script), used only to skip an anchor that would run past --max-anchor-s.
EXPECTED_S_PER_1K = {"opentsne": 3.4, "sklearn": 13.4, "umap": 1.2}


def fashion(n: int) -> np.ndarray:
    """The first n of the 70,000 Fashion-MNIST images (train then test), pixels in [0, 1]."""
    parts = []
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        with gzip.open(DATASETS / "fashion-mnist" / name) as f:
            parts.append(np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784))
    x = np.vstack(parts)
    idx = np.sort(np.random.default_rng(SEED).choice(len(x), n, replace=False)) if n < len(x) \
        else np.arange(len(x))
    return x[idx].astype(np.float32) / 255


def lite0(folder: Path, cache_dir: Path) -> np.ndarray:
    """EfficientNet-Lite0 vectors of the images listed in ``folder/labels.csv`` (tsnegrid's
    embedder, cached in ``cache_dir``)."""
    from tsnegrid.embed import EmbeddingCache, embed_images, make_embedder

    with open(folder / "labels.csv", newline="") as f:
        paths = [folder / "images" / r["file"] for r in csv.DictReader(f)]
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
    try:
        return embed_images(paths, make_embedder("lite0", cache_dir, 1), cache).vectors
    finally:
        cache.close()


def generated(n: int, dim: int = 256, clusters: int = 50) -> np.ndarray:
    """A Gaussian mixture: 50 clusters in a 32-d latent space mapped linearly to ``dim`` dims."""
    rng = np.random.default_rng(SEED)
    centres = rng.normal(scale=4.0, size=(clusters, 32)).astype(np.float32)
    mix = rng.normal(size=(32, dim)).astype(np.float32) / np.sqrt(32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(n, start + 100_000) - start
        latent = centres[rng.integers(0, clusters, m)] + rng.normal(size=(m, 32)).astype(np.float32)
        out[start:start + m] = latent @ mix + 0.3 * rng.normal(size=(m, dim)).astype(np.float32)
    return out


def raw_neighbours(x: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact k nearest neighbours of the query rows in the raw space (float32 BLAS blocks)."""
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty((len(queries), k), dtype=np.int64)
    block = max(1, 2**25 // len(x))
    for s in range(0, len(queries), block):
        q = queries[s:s + block]
        score = sq[None, :] - 2 * (x[q] @ x.T)
        score[np.arange(len(q)), q] = np.inf
        out[s:s + block] = np.argpartition(score, k, axis=1)[:, :k]
    return out


def preservation(points: np.ndarray, queries: np.ndarray, hd: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each query's raw-space k-NN that are among its k-NN in 2-D."""
    from scipy.spatial import cKDTree

    _, lo = cKDTree(points).query(points[queries], k=k + 1)
    hits = [len(set(a) & set(b[b != q][:k])) for a, b, q in zip(hd, lo, queries, strict=True)]
    return float(np.mean(hits) / k)


def grid_dpq(x: np.ndarray, points: np.ndarray) -> float:
    """DPQ16 of the grid that tsnegrid's pipeline makes from these points."""
    from tsnegrid.arrange import grid as grid_mod
    from tsnegrid.arrange.assign import assign
    from tsnegrid.metrics import dpq

    rows, cols = grid_mod.auto_shape(len(points), grid_mod.cloud_aspect(points))
    cells = assign(grid_mod.fit_to_grid(points, rows, cols), rows, cols)
    return dpq(x, cells, cols, p=16)


def anchors(names: list[str]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Anchor reducers on PCA-50 input, each with its library defaults, one thread, the seed."""
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    if "opentsne" in names:
        from openTSNE import TSNE as OpenTSNE

        out["openTSNE 1.0.4 defaults"] = lambda p: np.asarray(
            OpenTSNE(random_state=SEED, n_jobs=1).fit(p))
    if "sklearn" in names:
        from sklearn.manifold import TSNE as SkTSNE

        out["scikit-learn TSNE"] = lambda p: SkTSNE(random_state=SEED, n_jobs=1).fit_transform(p)
    if "umap" in names:
        import umap

        out["umap-learn 0.5.12"] = lambda p: umap.UMAP(random_state=SEED, n_jobs=1).fit_transform(p)
    return out


def anchor_key(label: str) -> str:
    return {"openTSNE": "opentsne", "scikit-learn": "sklearn", "umap-learn": "umap"}[
        label.split(" ")[0]]


def warm_umap() -> float:
    """Run UMAP once on a tiny set so numba's compile time is not charged to the first size."""
    import umap

    t0 = time.perf_counter()
    umap.UMAP(random_state=SEED, n_jobs=1).fit_transform(
        np.random.default_rng(0).normal(size=(5000, 10)))
    return time.perf_counter() - t0


def run_dataset(name: str, x: np.ndarray, args: argparse.Namespace) -> list[list[str]]:
    n = len(x)
    rng = np.random.default_rng(SEED + 1)
    queries = np.sort(rng.choice(n, min(n, args.queries), replace=False))
    hd = raw_neighbours(x, queries)
    rows: list[list[str]] = []
    results: list[tuple[str, float, np.ndarray | None, str]] = []

    schemes = args.schemes + (["sample"] if n > args.sample_above else [])
    for scheme in schemes:
        t0 = time.perf_counter()
        pts = reduce(x, "tsne", seed=SEED, n_jobs=1, scheme=scheme)
        label = "**tsnegrid tsne**" + ("" if scheme == "auto" else f" scheme={scheme}")
        results.append((label, time.perf_counter() - t0, pts, ""))
        print(f"{name}: {label} {results[-1][1]:.1f}s", flush=True)

    t0 = time.perf_counter()
    p50 = pca(x, 50, SEED)
    t_pca = time.perf_counter() - t0
    for label, fn in anchors(args.anchors).items():
        expected = EXPECTED_S_PER_1K[anchor_key(label)] * n / 1000
        if expected > args.max_anchor_s:
            results.append((label, float("nan"), None,
                            f"skipped: expected ~{expected:.0f} s > {args.max_anchor_s:.0f} s"))
            continue
        t0 = time.perf_counter()
        out = np.asarray(fn(p50), dtype=np.float64)
        results.append((label, time.perf_counter() - t0 + t_pca, out, ""))
        print(f"{name}: {label} {results[-1][1]:.1f}s", flush=True)

    ref = next((t for lab, t, p, _ in results if lab.startswith("openTSNE") and p is not None),
               None)
    for label, t, p, note in results:
        if p is None:
            rows.append([name, f"{n:,}", label, "-", "-", "-", "-", note])
            continue
        pres = preservation(p, queries, hd)
        dpq16 = f"{grid_dpq(x, p):.3f}" if n <= args.dpq_max else "-"
        ratio = f"{ref / t:.1f}x" if ref is not None else "-"
        rows.append([name, f"{n:,}", label, f"{t:.1f}", ratio, f"{pres:.3f}", dpq16, note])
        print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="demo,emoji,fashion10k,fashion70k",
                        help="comma list of: demo (the 1,024-image demo), emoji, fashion<N>, "
                             "generated<N>, with N like 10k or 1m")
    parser.add_argument("--anchors", default="opentsne,sklearn,umap")
    parser.add_argument("--schemes", default="auto",
                        help="tsnegrid t-SNE schemes to run: auto, full, sample (comma list)")
    parser.add_argument("--sample-above", type=int, default=90_000,
                        help="also run scheme=sample (sample-and-place) above this N")
    parser.add_argument("--max-anchor-s", type=float, default=300.0)
    parser.add_argument("--queries", type=int, default=5000,
                        help="points whose 10-NN preservation is measured")
    parser.add_argument("--dpq-max", type=int, default=2000,
                        help="largest N for which the grid and its DPQ16 are computed")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/tsnegrid-bench-cache"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--section", default="reduce",
                        help="RESULTS.md section to write (another name keeps the main table)")
    args = parser.parse_args()
    args.anchors = [a for a in args.anchors.split(",") if a]
    args.schemes = [a for a in args.schemes.split(",") if a]
    logging.basicConfig(level=logging.WARNING)

    table: list[list[str]] = []
    notes: list[str] = []
    with threadpool_limits(limits=1):
        t0 = time.perf_counter()
        reduce(np.random.default_rng(0).normal(size=(300, 20)), "tsne", seed=SEED, n_jobs=1)
        notes.append(f"tsnegrid first call in a fresh process (its imports and the Barnes-Hut "
                     f"path, 300 points; not charged): {time.perf_counter() - t0:.1f} s")
        if "umap" in args.anchors:
            notes.append(f"umap-learn numba compile (warm-up, not charged): {warm_umap():.0f} s")
        for name in args.data.split(","):
            if name == "emoji":
                x = lite0(DATASETS / "emoji-google-64", args.cache_dir)
                label = "emoji-google-64 Lite0"
            elif name == "demo":
                x, label = lite0(ROOT / "demo" / "emoji-1024", args.cache_dir), "demo 1,024 Lite0"
            elif name.startswith("fashion"):
                n = int(name.removeprefix("fashion").replace("k", "000"))
                x, label = fashion(n), "Fashion-MNIST pixels"
            elif name.startswith("generated"):
                n = int(name.removeprefix("generated").replace("k", "000").replace("m", "000000"))
                x, label = generated(n), "generated 256-d mixture"
            else:
                raise SystemExit(f"unknown data set {name!r}")
            table += run_dataset(label, x, args)

    head = ["data", "N", "method", "time (s)", "openTSNE time / time", "10-NN pres.", "DPQ16",
            "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    body = "## Reduction\n\n" + "\n".join(lines) + "\n\n" + "\n".join(
        f"- {s}" for s in notes + [
            "One thread for every method (BLAS too); anchors on PCA-50, PCA time added.",
            "10-NN preservation against raw input-space neighbours, on at most "
            f"{args.queries:,} sampled points; DPQ16 of the pipeline's grid up to "
            f"{args.dpq_max:,} points.",
        ])
    print(body)
    if not args.no_write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
