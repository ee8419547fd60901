"""Near-duplicates: images whose embeddings are nearly parallel share one cell.

Pairs with cosine similarity at or above the threshold are linked among each image's ``NEIGHBOURS``
nearest neighbours (exact search up to 20,000 images, faiss's IVF index above), and linked images
form groups (connected components); the first image of a group in input order keeps the cell, the
others are listed as its duplicates.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from tsnegrid.settings import check_dedupe

log = logging.getLogger(__name__)

#: Neighbours examined per image; also how many copies one search pass can link at once (larger
#: groups still join through shared neighbours).
NEIGHBOURS = 16


def _root(parent: NDArray[np.int64], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = int(parent[i])
    return i


def find_duplicates(vectors: NDArray[np.floating], threshold: float,
                    seed: int = 0) -> NDArray[np.int64]:
    """For each row, the index of the row whose cell it shares: itself, or the first row (in
    input order) of its group of near-duplicates."""
    check_dedupe(threshold)
    n = len(vectors)
    rep = np.arange(n, dtype=np.int64)
    if threshold == 0 or n < 2:
        return rep
    from tsnegrid.neighbors import nearest_neighbors

    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    idx, dist = nearest_neighbors(x, NEIGHBOURS, seed=seed)
    # Unit vectors: |a - b|^2 = 2 - 2 cos(a, b).
    close = 1.0 - np.asarray(dist) ** 2 / 2.0 >= threshold - 1e-9
    parent = np.arange(n, dtype=np.int64)
    for i, j in zip(*np.nonzero(close), strict=True):
        a, b = _root(parent, int(i)), _root(parent, int(idx[i, j]))
        if a != b:
            parent[max(a, b)] = min(a, b)  # the root is always the group's first row
    for i in range(n):
        rep[i] = _root(parent, i)
    log.info("dedupe at cosine >= %g: %d of %d images are near-duplicates", threshold,
             int((rep != np.arange(n)).sum()), n)
    return rep
