"""Layout quality: t-SNE + exact LAP, tsnegrid's default (t-SNE + LAP + refine), LAS (Barthel et
al. 2022, ``tsnegrid.arrange.sort.las``: full assignments from a random grid) and vc-flas FLAS
side by side on the same vectors (RGB colours, the LAS paper's colours, sklearn digits, emoji,
solar-cell photographs, Fashion-MNIST); then the --features mixes on emoji.

LAS solves a dense N x N assignment per round (O(N^3)); it runs up to ``LAS_LIMIT`` images and
FLAS is the anchor above. The photographs are the ELPV set (PyPI ``elpv-dataset`` 1.0.0.post1:
2,624 300 x 300 greyscale electroluminescence photographs of solar cells cut from 44 module
photographs, labelled mono/polycrystalline and by defect probability 0, 1/3, 2/3 or 1; images
CC BY-NC-SA 4.0, Buerhop-Lutz, Deitsch et al., Forschungszentrum Juelich / ZAE Bayern; installed
into a separate environment, never shipped). Its images are embedded by Lite0 through the
library; the model weights come from the installed package.

Writes the ``quality`` section of benchmarks/RESULTS.md when every set runs (a ``--sets``
subset only prints its rows). Needs the bench extra (vc-flas, scikit-learn), elpv-dataset and the
datasets in ../shared/datasets.

    python benchmarks/quality.py [--sets colours,digits] [--fashion-n 10000]
        [--cache-dir /tmp/quality-cache]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from _results import write_section
from tsnegrid import metrics
from tsnegrid.arrange import assign, grid, sort
from tsnegrid.arrange.refine import refine
from tsnegrid.embed import embed_images, make_embedder
from tsnegrid.embed.cache import EmbeddingCache
from tsnegrid.embed.config import EmbedConfig
from tsnegrid.reduce import reduce

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
#: LAS (a dense N x N assignment per round) runs on sets of up to this many images.
LAS_LIMIT = 3000

T = TypeVar("T")
Labels = dict[str, NDArray[np.generic]]
Loader = Callable[[argparse.Namespace], list[tuple[NDArray[np.float64], Labels]]]


def embed(paths: list[Path], cache_dir: Path, features: str = "semantic",
          weight: float = 0.5) -> NDArray[np.float64]:
    """Lite0 vectors (or a feature mix) of the images, one per path, through the cache."""
    embedder = make_embedder("lite0", cache_dir, 0, features, weight)
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
    try:
        config = EmbedConfig(model="lite0", cache_dir=cache_dir, features=features,
                             colour_weight=weight)
        emb = embed_images(paths, embedder, cache, config=config)
    finally:
        cache.close()
    assert not emb.skipped and len(emb.vectors) == len(paths)
    return emb.vectors.astype(np.float64)


def emoji(cache_dir: Path, features: str = "semantic",
          weight: float = 0.5) -> tuple[NDArray[np.float64], Labels]:
    """emoji-google-64 embedded by Lite0 (or a feature mix), with category and subcategory."""
    root = DATA / "emoji-google-64"
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    v = embed([root / "images" / r["file"] for r in rows], cache_dir, features, weight)
    labels = {k: np.array([r[k] for r in rows]) for k in ("category", "subcategory")}
    return v, labels


def elpv(cache_dir: Path) -> tuple[NDArray[np.float64], Labels]:
    """The ELPV solar-cell photographs (package ``elpv-dataset``) embedded by Lite0, with the
    cell type (mono / poly) and the defect probability as labels."""
    import elpv_dataset

    root = Path(elpv_dataset.__file__).parent / "data"
    rows = [line.split() for line in (root / "labels.csv").read_text().splitlines() if line]
    v = embed([root / path for path, _, _ in rows], cache_dir)
    return v, {"type": np.array([t for _, _, t in rows]),
               "defect": np.array([p for _, p, _ in rows])}


def fashion(n: int) -> tuple[NDArray[np.float64], Labels]:
    """The first n Fashion-MNIST test images as pixels in [0, 1], with their class."""
    root = DATA / "fashion-mnist"
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:n]
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return x.astype(np.float64) / 255, {"class": y}


def colours(n: int = 1024) -> tuple[NDArray[np.float64], Labels]:
    """n random RGB colours (channels in [0, 1], seed 0); no labels."""
    return np.random.default_rng(0).random((n, 3)), {}


def paper_colours() -> tuple[NDArray[np.float64], Labels]:
    """The LAS paper's 1,024 random RGB colours: ``np.random.seed(3)``, 32 x 32 x 3 uniform in
    [0, 255) cut to integers (scaled to [0, 1]; DPQ does not depend on the scale); no labels."""
    rgb = np.random.RandomState(3).uniform(0, 255, size=(32, 32, 3)).astype(int)
    return rgb.reshape(-1, 3).astype(np.float64) / 255, {}


def digits() -> tuple[NDArray[np.float64], Labels]:
    """sklearn's bundled 8x8 digits (1,797) as pixels in [0, 1], with their class."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data / 16, {"class": d.target}


def flas_cells(v: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.int64]:
    """vc-flas FLAS (default parameters, seed 0) on a rows x cols grid."""
    import vc_flas

    arrangement = vc_flas.flas(vc_flas.Grid.from_features(v.astype(np.float32),
                                                          size=(rows, cols)), seed=0)
    ids = np.asarray(arrangement.sorting).ravel()
    cells = np.empty(len(v), dtype=np.int64)
    cells[ids[ids >= 0]] = np.flatnonzero(ids >= 0)
    return cells


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def compare(name: str, v: NDArray[np.float64], labels: Labels,
            las_limit: int = LAS_LIMIT) -> list[str]:
    """Table rows for the three methods on one set, on the grid the default pipeline picks."""
    (pts, t_tsne) = timed(lambda: reduce(v, method="tsne", seed=0))
    rows, cols = grid.auto_shape(len(v), grid.cloud_aspect(pts))
    lap, t_lap = timed(lambda: assign.assign(grid.fit_to_grid(pts, rows, cols), rows, cols))
    refined, t_ref = timed(lambda: refine(v, lap, rows, cols, seed=0).cells)
    flas, t_flas = timed(lambda: flas_cells(v, rows, cols))
    base = t_tsne + t_lap
    methods = [("t-SNE + exact LAP", lap, base),
               ("**tsnegrid default** (t-SNE + LAP + refine)", refined, base + t_ref)]
    if len(v) <= las_limit:
        las, t_las = timed(lambda: sort.las(v, rows, cols, seed=0))
        methods.append(("LAS (full LAP rounds from random)", las, t_las))
    methods.append(("vc-flas FLAS", flas, t_flas))
    out = []
    for method, cells, t in methods:
        agree = " / ".join(f"{metrics.neighbour_agreement(y, cells, rows, cols):.3f}"
                           for y in labels.values()) or "-"
        out.append(f"| {name} ({len(v)}, {rows}x{cols}) | {method} | "
                   f"{metrics.dpq(v, cells, cols, p=16):.4f} | {agree} | {t:.1f} | "
                   f"{t / base:.2f} |")
        print(out[-1], flush=True)
    return out


def knn_accuracy(v: NDArray[np.float64], y: NDArray[np.generic], k: int = 5) -> float:
    """Leave-one-out k-NN majority-vote accuracy (Euclidean)."""
    sq = (v * v).sum(1)
    d = sq[:, None] - 2 * v @ v.T + sq[None, :]
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1)[:, :k]
    hits = 0
    for i in range(len(v)):
        vals, counts = np.unique(y[near[i]], return_counts=True)
        hits += vals[np.argmax(counts)] == y[i]
    return hits / len(v)


def features_table(cache_dir: Path) -> list[str]:
    out = []
    for features, weight in (("semantic", 0.5), ("colour", 0.5), ("both", 0.25),
                             ("both", 0.5), ("both", 1.0)):
        v, labels = emoji(cache_dir, features, weight)
        pts = reduce(v, method="tsne", seed=0)
        rows, cols = grid.auto_shape(len(v), grid.cloud_aspect(pts))
        cells = refine(v, assign.assign(grid.fit_to_grid(pts, rows, cols), rows, cols), rows,
                       cols, seed=0).cells
        acc = " / ".join(f"{knn_accuracy(v, y):.3f}" for y in labels.values())
        agree = " / ".join(f"{metrics.neighbour_agreement(y, cells, rows, cols):.3f}"
                           for y in labels.values())
        label = features if features != "both" else f"both, colour weight {weight:g}"
        out.append(f"| {label} | {v.shape[1]} | {acc} | {agree} |")
        print(out[-1], flush=True)
    return out


#: The compared sets: name -> (row title, loader of its (vectors, labels) given the options).
SETS: dict[str, tuple[str, Loader]] = {
    "colours": ("random RGB colours", lambda a: [colours()]),
    "paper-colours": ("LAS paper's RGB colours", lambda a: [paper_colours()]),
    "digits": ("sklearn digits, pixels", lambda a: [digits()]),
    "emoji": ("emoji-google-64, Lite0", lambda a: [emoji(a.cache_dir)]),
    "elpv": ("ELPV solar-cell photos, Lite0", lambda a: [elpv(a.cache_dir)]),
    "fashion": ("Fashion-MNIST, pixels", lambda a: [fashion(n) for n in a.fashion_n]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS),
                    help=f"comma-separated subset of {', '.join(SETS)} (a subset only prints)")
    ap.add_argument("--fashion-n", type=int, nargs="+", default=[2500, 10000])
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/quality-cache"))
    ap.add_argument("--las-limit", type=int, default=LAS_LIMIT,
                    help="run LAS on sets of up to this many images (0: never; it is deterministic,"
                         " so its rows can be kept from an earlier run)")
    args = ap.parse_args()
    chosen = [name.strip() for name in args.sets.split(",") if name.strip()]
    if unknown := set(chosen) - set(SETS):
        ap.error(f"unknown sets {', '.join(sorted(unknown))}; choose from {', '.join(SETS)}")
    rows = [row for name in chosen for v, labels in SETS[name][1](args)
            for row in compare(SETS[name][0], v, labels, args.las_limit)]
    if set(chosen) != set(SETS):
        return
    feats = features_table(args.cache_dir)
    body = "\n".join([
        "## Layout quality (`benchmarks/quality.py`)",
        "",
        "DPQ16 (Barthel et al.; higher is better) of the final grid against the vectors, and the",
        "share of each image's 8 grid neighbours with its label (emoji: category / subcategory;",
        "ELPV: cell type / defect probability; digits and Fashion-MNIST: class; the colours have",
        "none: 3 channels in [0, 1] from `default_rng(0)`, and the LAS paper's set from",
        "`np.random.seed(3)`). Time in seconds from vectors to cells, side by side in one run;",
        "ratio to t-SNE + exact LAP. Each set uses the grid the default pipeline picks for it. LAS",
        f"(full dense assignments per round, O(N^3)) runs on sets of up to {LAS_LIMIT:,} images;",
        "above, FLAS is the anchor. ELPV: PyPI `elpv-dataset` 1.0.0.post1, images CC BY-NC-SA 4.0,",
        "not shipped.",
        "",
        "| set (N, grid) | method | DPQ16 | label agreement | time (s) | x t-SNE+LAP |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Feature mixes on emoji-google-64 (`--features`; grids with the default pipeline).",
        "",
        "| features | dims | 5-NN accuracy (category / subcategory) | grid label agreement |",
        "|---|---|---|---|",
        *feats,
    ])
    write_section("quality", body)


if __name__ == "__main__":
    main()
