"""Incremental add against a full rebuild: how many old images keep their cell, and how far the
grid's quality falls behind rebuilding everything, by the share of images added.

The old layout is the default pipeline's grid (t-SNE + LAP + refine) of the old vectors;
``tsnegrid.arrange.incremental.place`` then adds the new ones (every k-th image, spread through the
set). The full rebuild runs the same pipeline on all vectors with three seeds; its mean is the
reference (single rebuilds differ by seed). Writes the ``incremental`` section of RESULTS.md.

    python benchmarks/incremental.py [--cache-dir /tmp/quality-cache]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from _results import write_section
from quality import emoji, fashion
from tsnegrid import metrics
from tsnegrid.arrange import assign, grid
from tsnegrid.arrange.incremental import MAX_MOVED, place
from tsnegrid.arrange.refine import refine
from tsnegrid.reduce import reduce

SEEDS = (0, 1, 2)
SHARES = (0.005, 0.01, 0.02, 0.05, 0.10)


def default_grid(v: NDArray[np.float64], seed: int) -> tuple[NDArray[np.int64], int, int, float]:
    """The default pipeline from vectors to cells: cells, rows, cols and seconds taken."""
    t0 = time.perf_counter()
    pts = reduce(v, method="tsne", seed=seed)
    rows, cols = grid.auto_shape(len(v), grid.cloud_aspect(pts))
    cells = assign.assign(grid.fit_to_grid(pts, rows, cols), rows, cols)
    cells = refine(v, cells, rows, cols, seed=seed).cells
    return cells, rows, cols, time.perf_counter() - t0


def quality(v: NDArray[np.float64], y: NDArray[np.generic], cells: NDArray[np.int64], rows: int,
            cols: int) -> tuple[float, float]:
    return (metrics.dpq(v, cells, cols, p=16),
            metrics.neighbour_agreement(y, cells, rows, cols))


def split(v: NDArray[np.float64], y: NDArray[np.generic], share: float
          ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                     NDArray[np.generic]]:
    """Every k-th image (k = 1 / share) new: the old vectors, the new ones, and all vectors
    and labels in that order (old first)."""
    step = round(1 / share)
    new = np.zeros(len(v), dtype=bool)
    new[np.arange(step // 2, len(v), step)] = True
    order = np.concatenate([np.flatnonzero(~new), np.flatnonzero(new)])
    return v[~new], v[new], v[order], y[order]


def rows_for(name: str, v: NDArray[np.float64], y: NDArray[np.generic]) -> list[str]:
    out = []
    for share in SHARES:
        old_v, new_v, vv, yy = split(v, y, share)
        old_cells, rows, cols, _ = default_grid(old_v, 0)
        t0 = time.perf_counter()
        p = place(old_v, old_cells, rows, cols, new_v)
        t_add = time.perf_counter() - t0
        inc = quality(vv, yy, np.concatenate([p.old_cells, p.new_cells]), p.rows, cols)
        full, t_full = [], []
        for seed in SEEDS:
            cells, r, c, t = default_grid(vv, seed)
            full.append(quality(vv, yy, cells, r, c))
            t_full.append(t)
        f = np.array(full)
        kept = 1 - p.moved / len(old_v)
        out.append(f"| {name} | {len(old_v)} + {len(new_v)} ({share:.1%}) | {kept:.1%} | "
                   f"{rows}->{p.rows} | {inc[0]:.4f} | {f[:, 0].mean():.4f} ± "
                   f"{f[:, 0].std():.4f} | {inc[0] / f[:, 0].mean():.3f} | {inc[1]:.3f} | "
                   f"{f[:, 1].mean():.3f} | {t_add:.2f} | {np.mean(t_full):.2f} |")
        print(out[-1], flush=True)
    return out


Sets = tuple[int, tuple[NDArray[np.float64], NDArray[np.generic]],
             tuple[NDArray[np.float64], NDArray[np.generic]]]


def load_sets(description: str) -> Sets:
    """The incremental benchmarks' command line and data: Fashion-MNIST's size, emoji-google-64
    (Lite0 + colour, by category) and Fashion-MNIST (by class)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/quality-cache"))
    ap.add_argument("--fashion-n", type=int, default=10000)
    args = ap.parse_args()
    v, labels = emoji(args.cache_dir, "both", 0.25)
    fv, flabels = fashion(args.fashion_n)
    return args.fashion_n, (v, labels["category"]), (fv, flabels["class"])


def main() -> None:
    fashion_n, (v, category), (fv, fclass) = load_sets(__doc__.splitlines()[0])
    rows = [*rows_for("emoji-google-64, Lite0 + colour (category)", v, category),
            *rows_for(f"Fashion-MNIST {fashion_n}, pixels (class)", fv, fclass)]
    body = "\n".join([
        "## Incremental add (`benchmarks/incremental.py`)",
        "",
        "New images (every k-th of the set) added to the default grid of the others with",
        f"`tsnegrid.arrange.incremental.place` (at most {MAX_MOVED:.0%} of old images may move), "
        "against",
        f"full rebuilds of all images (mean ± sd over seeds {', '.join(map(str, SEEDS))}). DPQ16",
        "and 8-neighbour label agreement of the final grid; times in seconds from vectors (the",
        "embedding of the new images is not included; a rebuild re-runs t-SNE on everything).",
        "",
        "| set | old + new | old kept | rows | DPQ16 add | DPQ16 rebuild | ratio | "
        "agreement add | agreement rebuild | add (s) | rebuild (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    write_section("incremental", body)


if __name__ == "__main__":
    main()
