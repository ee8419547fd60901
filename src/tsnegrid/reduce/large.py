"""Large N: the full fast t-SNE by default, or (``scheme="sample"``) sample-and-place.

``full`` (what ``auto`` picks at every N) scales to 1M points as it is: PCA fitted on a 20k sample,
approximate neighbours (k = 30, faiss's IVF index), FFT gradients, 50 + 120 steps;
benchmarks/RESULTS.md times it at 100k and 1M. ``sample`` is a faster preview whose 10-NN
preservation is much lower (Fashion-MNIST 70k: 0.21 with a 20k sample and nearest-sample placement,
0.20 with 50k and 10-neighbour placement, against 0.29 for the full scheme): points that are not in
the sample can only land where sample points are, so their own neighbourhoods are lost.
Weighted-mean (openTSNE ``transform``-style) and LLE-weight placements were measured and were
worse. Steps:

1. PCA fitted on a sample (see :data:`~tsnegrid.reduce.pca.PCA_FIT_MAX`), applied to all points.
2. Fast t-SNE (:mod:`tsnegrid.reduce.tsne`) of ``SAMPLE_N`` points drawn with the seed.
3. Every other point goes to the distance-weighted mean of the 2-D positions of its ``PLACE_K``
   nearest sample points (an IVF index over the sample's PCA coordinates), like openTSNE's
   ``transform`` initialisation. openTSNE's ``transform`` would then optimise each new point against
   the sample; that costs more than the whole sample embedding at 1M and the grid snapping that
   follows removes the overlaps it resolves, so the scheme stops at the placement.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError
from tsnegrid.neighbors import ivf_index, ivf_search
from tsnegrid.reduce.pca import pca
from tsnegrid.reduce.tsne import PCA_DIMS, embed, resolve_tsne_settings

log = logging.getLogger(__name__)

SAMPLE_N = 50_000
#: Placement neighbours: 1 preserved the most 10-NN on Fashion-MNIST 70k (0.21; 3: 0.14; 10: 0.10).
PLACE_K = 1
SCHEMES = ("full", "sample")


def resolve_scheme(scheme: str, n: int) -> str:
    """``auto``: ``full`` at every N (``sample`` loses too much local structure); logs it."""
    if scheme == "auto":
        chosen = "full"
        log.info("large-N scheme auto -> %s for N=%d", chosen, n)
        return chosen
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}; choose from auto, {', '.join(SCHEMES)}")
    return scheme


def place(reference: NDArray[np.float32], positions: NDArray[np.float64],
          queries: NDArray[np.float32], k: int, seed: int) -> NDArray[np.float64]:
    """2-D positions for ``queries``: inverse-distance-weighted mean of their k nearest
    ``reference`` rows' ``positions`` (faiss's IVF index, one thread, seeded; k = 1: the
    nearest's)."""
    k = min(k, reference.shape[0])
    idx, d2 = ivf_search(ivf_index(reference, seed), queries, k)
    weights = 1.0 / np.maximum(np.sqrt(np.maximum(d2, 0.0)), 1e-12)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkd->nd", weights, positions[idx])


def tsne_sampled(vectors: NDArray[np.floating], seed: int, *, n_jobs: int = 1,
                 sample_size: int = SAMPLE_N) -> NDArray[np.float64]:
    """Sample-and-place t-SNE for large N (see the module docstring)."""
    n = vectors.shape[0]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
    x = pca(vectors, PCA_DIMS, seed).astype(np.float32)
    settings = resolve_tsne_settings(len(sample), n_jobs=n_jobs)
    sample_xy = embed(x[sample].astype(np.float64), seed, settings)
    out = np.empty((n, 2), dtype=np.float64)
    out[sample] = sample_xy
    rest = np.setdiff1d(np.arange(n), sample, assume_unique=True)
    if len(rest):
        log.info("placing %d points by their %d nearest of %d sampled", len(rest), PLACE_K,
                 len(sample))
        out[rest] = place(x[sample], sample_xy, x[rest], PLACE_K, seed)
    return out
