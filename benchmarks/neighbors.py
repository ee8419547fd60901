"""Look-alikes at scale: ``similar_images``' time, peak extra memory and recall@20 against exact
search, beside the previous approach's in the same run.

Usage: python benchmarks/neighbors.py [--sizes 100000,1000000] [--previous-max 100000]
                                      [--sample 300] [--no-real] [--cache-dir DIR]
Quick run: python benchmarks/neighbors.py --sizes 20000 --no-real

Sets: generated N x 1,280 vectors (--sizes; a mixture of 1,000 Gaussian clusters in a 32-d latent
space mapped linearly to 1,280 dims, plus noise); with the real sets (unless --no-real): a
generated 100,000 x 1,280 set of high intrinsic dimension (1,000 clusters, per-axis variance
1/i, no latent space: the hard case), Fashion-MNIST's 70,000 x 784 raw pixels, and real Lite0
vectors (tsnegrid's lite0 embedder over emoji-google-64's 1,911 images and the first 3,000
Fashion-MNIST test images written as PNG; cached in --cache-dir). Lite0's 4,911 rows are under
``SIMILAR_EXACT_MAX_N``, where ``auto`` searches exactly; the approximate path is forced there.
The previous approach (as it was before this benchmark: PCA to 50 dims with
``tsnegrid.reduce.pca``, faiss's IVF index with 2 sqrt(N) lists and 12 probes on one thread,
60 candidates re-ranked with numpy in blocks of 1,024 rows) runs on every set up to
--previous-max rows. Recall@20: the share of each of --sample fixed rows' exact 20 nearest
(float64 brute force) among the 20 returned. Peak extra memory: the process's peak RSS during
the call (VmHWM, reset before it through /proc/self/clear_refs) less its RSS before the call
(the input included). Writes the "neighbors" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
FMNIST = DATASETS / "fashion-mnist"
EMOJI = DATASETS / "emoji-google-64"
K = 20


def mixture(n: int, dim: int = 1280, seed: int = 0) -> np.ndarray:
    """1,000 Gaussian clusters (centres scale 4) in a 32-d latent space, mapped linearly to
    ``dim`` dims, plus noise 0.3 per dim: neighbours follow the latent positions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(1000, 32)).astype(np.float32)
    mix = rng.normal(size=(32, dim)).astype(np.float32) / np.sqrt(32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        m = min(n, start + 50_000) - start
        z = centres[rng.integers(0, 1000, m)] + rng.standard_normal((m, 32), dtype=np.float32)
        out[start:start + m] = z @ mix
        out[start:start + m] += 0.3 * rng.standard_normal((m, dim), dtype=np.float32)
    return out


def spread(n: int, dim: int = 1280, seed: int = 0) -> np.ndarray:
    """1,000 Gaussian clusters in ``dim`` dims whose axis i has variance 1/i (half between the
    clusters, half within): the spectrum of real Lite0 vectors, which keep 0.70 of their
    variance in 64 principal components, but no low-dimensional structure within a cluster."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(0.5 / np.arange(1, dim + 1)).astype(np.float32)
    centres = rng.standard_normal((1000, dim), dtype=np.float32) * scale
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        m = min(n, start + 50_000) - start
        out[start:start + m] = rng.standard_normal((m, dim), dtype=np.float32) * scale
        out[start:start + m] += centres[rng.integers(0, 1000, m)]
    return out


def fashion() -> np.ndarray:
    parts = []
    for part in ("train", "t10k"):
        with gzip.open(FMNIST / f"{part}-images-idx3-ubyte.gz") as f:
            parts.append(np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784))
    return np.concatenate(parts).astype(np.float32)


def lite0(cache_dir: Path) -> np.ndarray:
    """Lite0 vectors of emoji-google-64 and of 3,000 Fashion-MNIST test images (PNG files)."""
    from tsnegrid.embed import EmbeddingCache, embed_images, make_embedder

    with open(EMOJI / "labels.csv", newline="") as f:
        paths = [EMOJI / "images" / r["file"] for r in csv.DictReader(f)]
    folder = cache_dir / "fashion-png"
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(FMNIST / "t10k-images-idx3-ubyte.gz") as f:
        imgs = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:3000]
    for i, im in enumerate(imgs):
        p = folder / f"{i:05d}.png"
        if not p.exists():
            Image.fromarray(im).save(p)
        paths.append(p)
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
    try:
        return embed_images(paths, make_embedder("lite0", cache_dir), cache).vectors
    finally:
        cache.close()


def previous_similar(data: np.ndarray, k: int = K, seed: int = 0) -> np.ndarray:
    """The look-alikes' approximate path as it was: PCA-50, faiss IVF (``knn_ivf``: 2 sqrt(N)
    lists, 12 probes, one thread) for 3 x k candidates, re-ranked with numpy."""
    from tsnegrid.neighbors import knn_ivf
    from tsnegrid.reduce.pca import pca

    n = len(data)
    reduced = pca(data, 50, seed) if data.shape[1] > 50 else data
    candidates, _ = knn_ivf(reduced, min(3 * k, n - 1), seed, 1)
    x = np.asarray(data, dtype=np.float32)
    sq = np.einsum("nd,nd->n", x, x)
    out = np.empty((n, k), dtype=np.int32)
    for start in range(0, n, 1024):
        block = candidates[start:start + 1024]
        d = sq[block] - 2 * np.einsum("nd,nkd->nk", x[start:start + 1024], x[block])
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        out[start:start + 1024] = np.take_along_axis(block, order, axis=1)
    return out


def exact_rows(x: np.ndarray, rows: np.ndarray, k: int = K) -> np.ndarray:
    """The exact k nearest other rows of ``x`` for ``rows`` (float64, over chunks of x)."""
    q = x[rows].astype(np.float64)
    best_d = np.full((len(rows), k), np.inf)
    best_i = np.zeros((len(rows), k), dtype=np.int64)
    for s in range(0, len(x), 32_768):
        c = x[s:s + 32_768].astype(np.float64)
        d = np.einsum("nd,nd->n", c, c)[None, :] - 2 * q @ c.T
        own = np.flatnonzero((rows >= s) & (rows < s + len(c)))
        d[own, rows[own] - s] = np.inf
        dd = np.hstack([best_d, d])
        ii = np.hstack([best_i, np.broadcast_to(np.arange(s, s + len(c)), d.shape)])
        part = np.argpartition(dd, k - 1, axis=1)[:, :k]
        best_d = np.take_along_axis(dd, part, axis=1)
        best_i = np.take_along_axis(ii, part, axis=1)
    return best_i


def _status() -> dict[str, int]:
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {key: int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM")}


def measured(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float, float]:
    """fn's answer, wall seconds, CPU seconds (all its threads), and peak extra memory in MB
    (peak RSS during it less RSS before)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = _status()["VmRSS"]
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return out, secs, cpu, (_status()["VmHWM"] - before) / 2**20


def check(got: np.ndarray, n: int) -> None:
    """Valid look-alikes: in range, never the row itself, no repeats within a row."""
    assert got.shape == (n, K) and got.dtype == np.int32
    assert ((got >= 0) & (got < n)).all() and not (got == np.arange(n)[:, None]).any()
    s = np.sort(got, axis=1)
    assert not (s[:, 1:] == s[:, :-1]).any()


def run_set(name: str, x: np.ndarray, sample: int, previous: bool) -> list[dict[str, Any]]:
    from tsnegrid.neighbors import similar_images

    rows = np.random.default_rng(1).choice(len(x), min(sample, len(x)), replace=False)
    exact = exact_rows(x, rows)
    out = []
    sides: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("new", lambda: similar_images(x, K, 0, method="ivf"))]
    if previous:
        sides.append(("previous", lambda: previous_similar(x)))
    for side, fn in sides:
        load = os.getloadavg()[0]
        got, secs, cpu, extra = measured(fn)
        check(got, len(x))
        recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / K
                          for a, b in zip(exact, got[rows], strict=True)])
        out.append({"set": name, "n": len(x), "dim": x.shape[1], "side": side, "secs": secs,
                    "cpu": cpu, "extra_mb": extra, "input_mb": x.nbytes / 2**20, "recall": recall,
                    "load": load})
        print(out[-1], flush=True)
        del got
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated sizes of the generated 1,280-d mixture")
    parser.add_argument("--previous-max", type=int, default=100_000,
                        help="run the previous approach on sets up to this many rows")
    parser.add_argument("--sample", type=int, default=300, help="rows whose recall is checked")
    parser.add_argument("--no-real", action="store_true",
                        help="skip the hard generated set, Fashion-MNIST and Lite0")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/tsnegrid-bench-cache"))
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    sets: list[tuple[str, Callable[[], np.ndarray]]] = []
    if not args.no_real:
        sets += [("real Lite0 vectors (emoji-google-64 + 3,000 Fashion-MNIST)",
                  lambda: lite0(args.cache_dir)),
                 ("Fashion-MNIST raw pixels", fashion),
                 ("generated, high intrinsic dimension", lambda: spread(100_000))]
    for n in (int(s) for s in args.sizes.split(",") if s):
        sets.append(("generated 32-d latent mixture", lambda n=n: mixture(n)))
    for name, make in sets:
        x = make()
        results += run_set(name, x, args.sample, len(x) <= args.previous_max)
        del x

    lines = ["## Look-alikes at scale (`benchmarks/neighbors.py`)", "",
             "`similar_images` (20 look-alikes per row; the approximate path, forced on the "
             "4,911 Lite0 rows, where `auto` would search exactly) beside the previous approach "
             "in the same run. Extra memory: peak RSS during the call less RSS before it (the "
             "input, whose size is given, excluded). Recall@20 against exact float64 search on "
             f"{args.sample} fixed rows. Threads: all {os.cpu_count()} cores for the new path; "
             "the previous one ran faiss on one thread.", "",
             "| set | N x D | input (MB) | approach | time (s) | CPU (s) | extra memory (MB) | "
             "recall@20 | load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['set']} | {r['n']:,} x {r['dim']:,} | {r['input_mb']:,.0f} | "
                     f"{r['side']} | {r['secs']:.1f} | {r['cpu']:.1f} | {r['extra_mb']:,.0f} | "
                     f"{r['recall']:.3f} | {r['load']:.1f} |")
    pairs = [(a, b) for a in results for b in results
             if a["side"] == "new" and b["side"] == "previous" and a["set"] == b["set"]
             and a["n"] == b["n"]]
    if pairs:
        lines += ["", "Previous / new, same set, same run: " + "; ".join(
            f"{a['set']} {a['n']:,}: time {b['secs'] / a['secs']:.1f}x, extra memory "
            f"{b['extra_mb'] / max(a['extra_mb'], 1):.1f}x, recall {b['recall']:.3f} -> "
            f"{a['recall']:.3f}" for a, b in pairs) + "."]
    lines += ["", "The high-intrinsic-dimension set is the method's weak case: its neighbours "
              "within a cluster are near-random in 1,280 dims, so few fall in the 12 lists "
              "scanned (while tuning, 48 probes reached 0.83 in 3.4x the search time, and IVF "
              "over the full vectors 0.81); real Lite0 vectors and Fashion-MNIST pixels are far "
              "from it."]
    lines += ["", "Targets (2 cores): 100,000 x 1,280 in <= 30 s, 1,000,000 x 1,280 in <= 6 min, "
              "recall@20 >= 0.9 on Fashion-MNIST and on Lite0 vectors, extra memory well under "
              "the input's size at 1M. The load column is the 1-minute load average as the call "
              "began (a machine of 2 cores, shared: above 2, other work took turns with this, "
              "and the wall time grows with it); CPU is the call's processor time over all its "
              "threads, which the load changes far less (on 2 idle cores the wall time lies "
              "between half of it and all of it)."]
    write_section("neighbors", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
