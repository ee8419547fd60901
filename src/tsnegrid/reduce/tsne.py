"""Fast t-SNE: a shorter, measured schedule, cheaper affinities, and gradients from compiled
kernels: Barnes-Hut (``bh``, up to ``BH_MAX_N`` points) or FFT interpolation (``fft``, above).
openTSNE is not imported (nor scikit-learn, which it imports: 1.4-1.6 s here); it is the
anchor the benchmarks and tests compare with.

Why these settings (measured on Fashion-MNIST pixels at 10k-70k and EfficientNet-Lite0 vectors of
the 1,024-image demo and of emoji-google-64, see ``benchmarks/reduce.py``; 10-NN preservation is
against the raw input-space neighbours, one thread, on a shared 2-core machine):

* **Perplexity 10, k = 30 neighbours** above 5,000 points instead of 30 / 90: a third of the
  neighbour search and of the attractive-force work, and 10-NN preservation is the same (t-SNE
  keeps what its affinities describe; perplexity 30 spends effort on neighbours 11-90 that the
  grid never sees). Up to 5,000 points perplexity 20 preserves more and costs nothing noticeable.
* **Exact neighbours on the Barnes-Hut path** (up to ``BH_MAX_N`` points: brute force in
  numpy), **faiss's IVF index on the FFT path** (``neighbors.knn_ivf``): at 10k in 50-D the
  exact search took 2.0 s and the IVF one 0.16 s (30-NN recall 0.995); at 50k the IVF search
  1.4 s (0.993) against 2.4 s for the 10-tree Annoy forest used before (0.84). With Annoy's
  forest the layout's 10-NN preservation at 50k moved by only 0.001 between 10 and 20 trees:
  t-SNE's affinities forgive a missed 25th neighbour.
* **Fewer iterations**: early exaggeration 12 with learning rate N/12 (Belkina et al. 2019)
  separates the clusters in 50 steps as well as in the customary 250, and the main phase with
  learning rate N and momentum 0.9 (openTSNE: 0.8) reaches the preservation of openTSNE's 500
  steps in 75 (5k-20k points) and 120 (50k-70k); see ``_iterations``. A step costs more
  as the layout spreads (the FFT grid grows with its span), so the late steps are the dear ones.
* **Gradients**: Barnes-Hut up to ``BH_MAX_N`` points (at 1k-2k as fast as FFT and +0.005 10-NN
  preservation), FFT interpolation (FIt-SNE) above (at 10k a BH step costs 3x an FFT step); FFT
  with 2 interpolation points per interval instead of 3 halves the late steps' cost at the same
  preservation (wider intervals, ``ints_in_interval=2``, lost 0.014 at 50k and were dropped).
  Both kernels run on one thread (``n_jobs`` reaches the BLAS and the IVF search).
* **One thread by default**, BLAS included: on a 2-core machine shared with other work, 2 threads
  were slower per step than 1 (oversubscription: an FFT step 25 ms vs 12 ms at 10k, a 1,024 x 784
  PCA 0.8 s vs 0.13 s); pass ``n_jobs`` to use more on an idle machine.
* **Not kept**: heavier tails (``dof`` 0.8) and uniform k-NN affinities preserved less at equal
  steps; UMAP is faster than openTSNE but preserves far less (0.25 vs 0.39 at 10k).
* **PCA initialisation** (openTSNE's, rescaled to std 1e-4): deterministic and keeps the global
  arrangement of clusters, which is what the grid's distance preservation (DPQ) rewards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError
from tsnegrid.neighbors import nearest_neighbors, resolve_neighbor_method
from tsnegrid.reduce.pca import pca

log = logging.getLogger(__name__)

PCA_DIMS = 50
PERPLEXITY = 10.0
#: Perplexity up to ``BH_MAX_N`` points: on the 1,024-image demo 20 preserves 0.467 of the 10-NN
#: against 0.458 with 10 (openTSNE's 30 and 500 steps: 0.468), at the same cost.
PERPLEXITY_SMALL = 20.0
EXAGGERATION = 12.0
BH_MAX_N = 5_000
#: Below this N t-SNE is not meaningful (perplexity would be < 1); the layout is PCA's.
MIN_TSNE_N = 5
#: Main-phase momentum; openTSNE's 0.8 needs about twice the steps for the same preservation.
MOMENTUM = 0.9


@dataclass(frozen=True)
class TSNESettings:
    """Every choice the fast t-SNE makes; ``resolve_tsne_settings`` fills in the ``auto`` ones."""

    perplexity: float
    k_neighbors: int
    neighbors: str
    gradient: str
    early_iterations: int
    iterations: int
    pca_dims: int
    n_jobs: int
    fft_points: int = 2


def resolve_perplexity(n: int, perplexity: float | str = "auto") -> float:
    """``auto``: ``PERPLEXITY_SMALL`` up to ``BH_MAX_N`` points, ``PERPLEXITY`` above, lowered for
    tiny N so that 3 * perplexity < N."""
    if perplexity == "auto":
        base = PERPLEXITY_SMALL if n <= BH_MAX_N else PERPLEXITY
        value = float(min(base, max(1.0, (n - 1) / 3.0)))
        log.info("perplexity auto -> %.1f for N=%d", value, n)
        return value
    value = float(perplexity)
    if not value > 0:
        raise InputError(f"perplexity must be positive, got {perplexity!r}")
    return value


def _iterations(n: int) -> tuple[int, int]:
    """(early exaggeration, main) steps, measured with main-phase momentum 0.9 (10-NN
    preservation, one thread; openTSNE's 250 + 500 steps in brackets):

    * up to ``BH_MAX_N``: 50 + 150 steps. 50 + 80 preserve as much (emoji-google-64 Lite0
      vectors: 0.449 at 1,911 and 0.457 at 1,024 points against 0.451 and 0.455; openTSNE
      0.447) in 2/3 of the time, but the grids made from them lose DPQ16 (emoji 0.9133 ->
      0.9113, digits 0.9195 -> 0.9159, ELPV 0.9087 -> 0.9058, below LAS's 0.9083), so small
      sets keep the longer schedule;
    * Fashion-MNIST at 10,000: within 0.003 of the plateau after 50 + 75;
    * Fashion-MNIST at 50,000 and 70,000 (with a 10-tree Annoy search): 50 + 120 preserve
      0.303 and 0.286 (openTSNE 0.306 and 0.291, ``benchmarks/startup.py``); 50 + 150 0.309 and
      0.293 for 1/4 more time, 50 + 110 0.302 and 0.282.

    50 early steps preserve as much as 100 or 250."""
    if n <= BH_MAX_N:
        return 50, 150
    if n <= 20_000:
        return 50, 75
    return 50, 120


def resolve_tsne_settings(
    n: int,
    *,
    perplexity: float | str = "auto",
    neighbors: str = "auto",
    gradient: str = "auto",
    iterations: int | str = "auto",
    n_jobs: int = 1,
) -> TSNESettings:
    """Turn every ``auto`` into a value for N points, logging each choice in one line."""
    if n_jobs < 1:
        raise InputError(f"n_jobs must be >= 1, got {n_jobs}")
    perp = resolve_perplexity(n, perplexity)
    k = min(n - 1, max(1, int(3 * perp)))
    if gradient == "auto":
        gradient = "bh" if n <= BH_MAX_N else "fft"
    elif gradient not in ("bh", "fft"):
        raise InputError(f"unknown gradient method {gradient!r}; choose from auto, bh, fft")
    if neighbors == "auto":  # exact on the small sets, the IVF index where exact is dear
        neighbors = "exact" if gradient == "bh" else "ivf"
    nn = resolve_neighbor_method(neighbors, n)
    early, main = _iterations(n)
    if iterations != "auto":
        main = int(iterations)
        if main < 0:
            raise InputError(f"iterations must be >= 0, got {iterations}")
    settings = TSNESettings(perplexity=perp, k_neighbors=k, neighbors=nn, gradient=gradient,
                            early_iterations=early, iterations=main, pca_dims=PCA_DIMS,
                            n_jobs=n_jobs)
    log.info("t-SNE settings for N=%d: %s", n, settings)
    return settings


def tsne(vectors: NDArray[np.floating], seed: int, settings: TSNESettings) -> NDArray[np.float64]:
    """Embed N x D vectors in 2-D with the given settings (N >= ``MIN_TSNE_N``)."""
    return embed(pca(vectors, settings.pca_dims, seed), seed, settings)


def embed(x: NDArray[np.float64], seed: int, settings: TSNESettings) -> NDArray[np.float64]:
    """t-SNE of already reduced (PCA) coordinates: affinities, PCA init, two-phase descent
    (Barnes-Hut in ``bh``, FFT interpolation in ``fft``; both on compiled kernels)."""
    from tsnegrid.reduce import bh

    n = x.shape[0]
    idx, dist = nearest_neighbors(x, settings.k_neighbors, settings.neighbors, seed,
                                  n_jobs=settings.n_jobs)
    schedule = {"early_iterations": settings.early_iterations,
                "iterations": settings.iterations, "exaggeration": EXAGGERATION,
                "early_momentum": 0.5, "momentum": MOMENTUM,
                "early_learning_rate": max(200.0, n / EXAGGERATION),
                "learning_rate": max(200.0, float(n))}
    p = bh.affinities(idx, dist, settings.perplexity)
    start = bh.initial_map(x, seed)
    if settings.gradient == "bh":
        return bh.optimize(start, p, **schedule)
    from tsnegrid.reduce import fft

    return fft.optimize(start, p, points=settings.fft_points, **schedule)
