"""The reducer registry and the one entry point, :func:`reduce`.

Every reducer is a pure function ``(vectors, seed, n_jobs) -> N x 2 float64``; ``REDUCERS`` maps
names to them. Same inputs, seed and ``n_jobs`` give identical output.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError, MissingDependencyError
from tsnegrid.reduce.config import ReduceConfig
from tsnegrid.reduce.large import SCHEMES, resolve_scheme, tsne_sampled
from tsnegrid.reduce.pca import pca, reduce_pca
from tsnegrid.reduce.tsne import MIN_TSNE_N, PCA_DIMS, resolve_tsne_settings, tsne
from tsnegrid.reduce.validate import trivial_layout, validate_vectors

log = logging.getLogger(__name__)

#: Threads for neighbour search and gradients. One: on the 2-core reference machine, shared with
#: other work, two threads were slower per step than one (see the t-SNE module docstring).
N_JOBS = 1


class Reducer(Protocol):
    """A reduction backend: validated N x D vectors in, N x 2 points out."""

    def __call__(self, vectors: NDArray[np.floating], seed: int, n_jobs: int
                 ) -> NDArray[np.float64]: ...


def normalize_seed(seed: int | np.integer) -> int:
    """Accept any integer-like seed and map it into the range every backend accepts."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"seed must be an integer, got {seed!r}")
    return int(seed) % (2**31 - 1)


def reduce_tsne(vectors: NDArray[np.floating], seed: int, n_jobs: int = N_JOBS, *,
                scheme: str = "auto") -> NDArray[np.float64]:
    """Fast t-SNE (see :mod:`tsnegrid.reduce.tsne`); ``scheme="sample"`` embeds a sample and
    places the rest (:mod:`tsnegrid.reduce.large`).

    Below ``MIN_TSNE_N`` points the layout is the first two principal components (documented
    fallback: t-SNE needs a perplexity >= 1 with 3 * perplexity < N).
    """
    n = vectors.shape[0]
    chosen = resolve_scheme(scheme, n)
    if n < MIN_TSNE_N:
        log.info("N=%d is below %d; using the PCA layout instead of t-SNE", n, MIN_TSNE_N)
        return reduce_pca(vectors, seed)
    if chosen == "sample":
        return tsne_sampled(vectors, seed, n_jobs=n_jobs)
    return tsne(vectors, seed, resolve_tsne_settings(n, n_jobs=n_jobs))


def reduce_umap(vectors: NDArray[np.floating], seed: int, n_jobs: int = N_JOBS
                ) -> NDArray[np.float64]:
    """UMAP on the first 50 principal components (optional extra ``tsnegrid[umap]``)."""
    try:
        import umap
    except ImportError as exc:
        raise MissingDependencyError("umap-learn", extra="umap") from exc
    n = vectors.shape[0]
    if n < MIN_TSNE_N:
        log.info("N=%d is below %d; using the PCA layout instead of UMAP", n, MIN_TSNE_N)
        return reduce_pca(vectors, seed)
    x = pca(vectors, PCA_DIMS, seed)
    model = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed,
                      n_jobs=n_jobs)
    return np.asarray(model.fit_transform(x), dtype=np.float64)


def _reduce_pca(vectors: NDArray[np.floating], seed: int, n_jobs: int = N_JOBS
                ) -> NDArray[np.float64]:
    del n_jobs  # PCA here is one BLAS call; its threads follow the BLAS settings
    return reduce_pca(vectors, seed)


REDUCERS: dict[str, Reducer] = {"tsne": reduce_tsne, "umap": reduce_umap, "pca": _reduce_pca}


def reduce(vectors: NDArray[np.floating], method: str = "tsne", seed: int = 0, *,
           n_jobs: int = N_JOBS, scheme: str = "auto") -> NDArray[np.float64]:
    """Reduce N x D vectors to N x 2 float64 points with the named method.

    ``scheme`` applies to t-SNE only: ``full``, ``sample`` (sample-and-place, for 1M-scale sets;
    faster, lower 10-NN preservation) or ``auto`` (see ``tsnegrid.reduce.large.resolve_scheme``).

    Raises :class:`~tsnegrid.errors.InputError` for an unknown method, a bad seed or ``n_jobs``,
    and for unusable vectors (see :func:`validate_vectors`). One vector or all-identical vectors
    give all points at (0, 0); fewer than ``MIN_TSNE_N`` give the PCA layout.
    """
    if method not in REDUCERS:
        raise InputError(f"unknown reducer {method!r}; choose from {', '.join(REDUCERS)}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise InputError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    if scheme not in ("auto", *SCHEMES):
        raise InputError(f"unknown scheme {scheme!r}; choose from auto, {', '.join(SCHEMES)}")
    seed = normalize_seed(seed)
    x = validate_vectors(vectors)
    fallback = trivial_layout(x)
    if fallback is not None:
        return fallback
    from threadpoolctl import threadpool_limits

    # BLAS threads follow n_jobs too: with 2 OpenBLAS threads on a loaded 2-core machine a
    # 1,024 x 784 PCA took 0.8 s instead of 0.13 s with one.
    with threadpool_limits(limits=n_jobs):
        if method == "tsne":
            return reduce_tsne(x, seed, n_jobs, scheme=scheme)
        return REDUCERS[method](x, seed, n_jobs)


def reduce_points(vectors: NDArray[np.floating], config: ReduceConfig) -> NDArray[np.float64]:
    """The reduce stage: ``reduce`` with the configured method and seed."""
    return reduce(vectors, method=config.method, seed=config.seed)


__all__ = ["N_JOBS", "REDUCERS", "Reducer", "normalize_seed", "reduce", "reduce_points"]
