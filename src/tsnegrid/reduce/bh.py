"""Barnes-Hut t-SNE in compiled kernels (``_kernels.pyx``): the reduction of small sets.

The same method as openTSNE's ``negative_gradient_method="bh"`` (the gradient agrees with
openTSNE 1.0.4's to 1e-15 at theta 0.5, ``tests/test_reduce_bh.py``), computed without
importing openTSNE and scikit-learn: that import (scipy.stats among it) cost 1.7-2.3 s here,
more than the whole reduction of the 1,024-image demo. Larger sets use the FFT interpolation
of ``fft``, which shares these affinities, this start and this descent.

* Affinities: Gaussian conditional probabilities over each point's k neighbours with the
  bandwidth of the given perplexity, symmetrised (P + P^T) / 2 and normalised to sum 1.
* Start: the first two principal coordinates, scaled to std 1e-4, jittered by 1% of that
  (openTSNE's ``initialization.pca``).
* Descent: momentum and gains, every move clipped to length 5, the map kept centred; the two
  phases (early exaggeration, then the main one) share the momentum and gains.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tsnegrid.reduce import _kernels
from tsnegrid.reduce.pca import top_directions

THETA = 0.5
MIN_GAIN = 0.01
MAX_STEP = 5.0
INIT_STD = 1e-4
JITTER = 0.01

Affinities = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]


def affinities(indices: NDArray[np.int64], distances: NDArray[np.float64],
               perplexity: float) -> Affinities:
    """Symmetric t-SNE affinities from k-NN ``(indices, distances)`` (N x k, the point itself
    excluded) as CSR ``(indptr, columns, values)`` over N x N, summing to 1."""
    n, k = indices.shape
    conditional = np.empty((n, k), dtype=np.float64)
    _kernels.perplexity_rows(np.ascontiguousarray(distances, dtype=np.float64),
                             float(min(perplexity, k)), conditional)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = np.asarray(indices, dtype=np.int64).ravel()
    src = np.concatenate([rows, cols])
    dst = np.concatenate([cols, rows])
    values = np.concatenate([conditional.ravel(), conditional.ravel()])
    key = src * n + dst
    order = np.argsort(key, kind="stable")
    key, values = key[order], values[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    summed = np.add.reduceat(values, first)
    src, dst = np.divmod(key[first], n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst.astype(np.int64), summed / summed.sum()


def initial_map(x: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    """The start: the first two principal coordinates of ``x``, scaled so the first has std
    ``INIT_STD``, plus Gaussian jitter of ``JITTER`` times that."""
    y = np.zeros((x.shape[0], 2), dtype=np.float64)
    centred = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
    directions = top_directions(centred, 2, seed)
    y[:, :len(directions)] = centred @ directions.T
    spread = float(np.std(y[:, 0]))
    y *= INIT_STD / spread if spread > 0 else 1.0
    jitter = np.random.RandomState(seed).normal(0.0, INIT_STD * JITTER, y.shape)
    return np.ascontiguousarray(y + jitter)


def optimize(y: NDArray[np.float64], p: Affinities, *, early_iterations: int,
             iterations: int, exaggeration: float, early_momentum: float, momentum: float,
             early_learning_rate: float, learning_rate: float) -> NDArray[np.float64]:
    """The two phases of gradient descent on ``y`` (a copy is returned)."""
    y = np.array(y, dtype=np.float64, order="C")
    indptr, cols, values = p
    update = np.zeros_like(y)
    gains = np.ones_like(y)
    scratch = np.empty_like(y)
    for steps, exag, mom, rate in ((early_iterations, exaggeration, early_momentum,
                                    early_learning_rate),
                                   (iterations, 1.0, momentum, learning_rate)):
        _kernels.descend(y, indptr, cols, values, int(steps), float(exag), float(mom),
                         float(rate), THETA, MIN_GAIN, MAX_STEP, update, gains, scratch)
    return y
