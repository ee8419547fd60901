"""The viewer's look-alikes ("more like this"): each image's nearest other images."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tsnegrid.neighbors.search import EXACT_MAX_N, nearest_neighbors

#: How many look-alikes the viewer lights up for an image ("more like this").
SIMILAR_K = 20
#: Above ``EXACT_MAX_N`` rows, the IVF index searches a PCA projection to this many dimensions
#: (the search's cost grows with the dimension; with the Annoy forest used before, 100,000 x
#: 1,280 took over 4 min here, x 64 one minute) for ``SIMILAR_CANDIDATES`` x k candidates,
#: which are then ranked by exact distance in the full vectors. On Fashion-MNIST (70,000 x
#: 784) recall@20 against exact search was 0.62 from the projection alone and 0.91 with 3 x k
#: candidates re-ranked, both with Annoy (benchmarks/viewer.py).
SIMILAR_PCA_DIMS = 50
SIMILAR_CANDIDATES = 3
_RERANK_ROWS = 1024  # rows per re-ranking block: 1,024 x 60 x 1,280 float32 is 315 MB


def similar_images(data: NDArray[np.floating], k: int = SIMILAR_K,
                   seed: int = 0) -> NDArray[np.int32]:
    """Each row's ``k`` nearest other rows, nearest first, as compact int32 indices: the
    viewer's "more like this". Exact up to ``EXACT_MAX_N`` rows; above, IVF candidates from
    a PCA projection re-ranked in the full vectors (see ``SIMILAR_PCA_DIMS``)."""
    n = data.shape[0]
    if n < 2:
        return np.zeros((n, 0), dtype=np.int32)
    if n <= EXACT_MAX_N:
        idx, _ = nearest_neighbors(data, k, "exact", seed)
        return idx.astype(np.int32)
    from tsnegrid.reduce.pca import pca

    k = min(k, n - 1)
    reduced = pca(data, SIMILAR_PCA_DIMS, seed) if data.shape[1] > SIMILAR_PCA_DIMS else data
    candidates, _ = nearest_neighbors(reduced, min(SIMILAR_CANDIDATES * k, n - 1), "ivf",
                                      seed)
    return rerank(data, candidates, k)


def rerank(data: NDArray[np.floating], candidates: NDArray[np.int64],
           k: int) -> NDArray[np.int32]:
    """The ``k`` of each row's ``candidates`` nearest to it in ``data`` (exact distances), in
    blocks of rows so the gathered candidate vectors stay small."""
    x = np.asarray(data, dtype=np.float32)
    sq = np.einsum("nd,nd->n", x, x)
    out = np.empty((len(x), k), dtype=np.int32)
    for start in range(0, len(x), _RERANK_ROWS):
        block = candidates[start:start + _RERANK_ROWS]
        rows = x[start:start + _RERANK_ROWS]
        # |c|^2 - 2 x.c ranks candidates as |x - c|^2 does (|x|^2 is the same along a row)
        d = sq[block] - 2 * np.einsum("nd,nkd->nk", rows, x[block])
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        out[start:start + _RERANK_ROWS] = np.take_along_axis(block, order, axis=1)
    return out
