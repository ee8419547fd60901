"""The search backends by name, and ``"auto"`` resolved to one of them (logged)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError
from tsnegrid.neighbors.exact import Neighbors, knn_exact
from tsnegrid.neighbors.ivf import knn_ivf

log = logging.getLogger(__name__)

#: A backend: (data, k, seed, n_jobs) -> the k nearest neighbours of every row.
NeighborSearch = Callable[[NDArray[np.floating], int, int, int], Neighbors]

#: Largest N for which ``auto`` picks exact search (the refinement's, the duplicate search's and
#: the viewer's neighbours; the t-SNE affinities choose by their gradient, ``tsne``). Exact
#: search costs N^2 * D flops and a partition of N^2 distances: at 10,000 points in 50-D 1-2 s
#: on one core here, faiss's IVF search 0.1 s.
EXACT_MAX_N = 20_000

NEIGHBOR_METHODS: dict[str, NeighborSearch] = {"exact": knn_exact, "ivf": knn_ivf}


def resolve_neighbor_method(method: str, n: int) -> str:
    """``auto``: exact search up to ``EXACT_MAX_N`` points, faiss's IVF index above."""
    if method == "auto":
        chosen = "exact" if n <= EXACT_MAX_N else "ivf"
        log.info("neighbors auto -> %s for N=%d", chosen, n)
        return chosen
    if method not in NEIGHBOR_METHODS:
        raise InputError(f"unknown neighbor method {method!r}; choose from auto, "
                         + ", ".join(NEIGHBOR_METHODS))
    return method


def nearest_neighbors(data: NDArray[np.floating], k: int, method: str = "auto",
                      seed: int = 0, *, n_jobs: int = 1) -> Neighbors:
    """The k nearest neighbours of every row (k is clipped to N - 1; the IVF search runs on
    ``n_jobs`` threads)."""
    k = min(k, data.shape[0] - 1)
    return NEIGHBOR_METHODS[resolve_neighbor_method(method, data.shape[0])](data, k, seed, n_jobs)
