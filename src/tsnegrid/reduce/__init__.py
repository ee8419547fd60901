"""Reduction: high-dimensional vectors to 2-D points (fast t-SNE by default; UMAP and PCA too)."""

from tsnegrid.reduce.config import ReduceConfig
from tsnegrid.reduce.methods import (
    N_JOBS,
    REDUCERS,
    Reducer,
    normalize_seed,
    reduce,
    reduce_points,
)
from tsnegrid.reduce.pca import pca
from tsnegrid.reduce.tsne import PCA_DIMS, resolve_perplexity
from tsnegrid.reduce.validate import validate_vectors

__all__ = ["N_JOBS", "PCA_DIMS", "REDUCERS", "ReduceConfig", "Reducer", "normalize_seed", "pca",
           "reduce", "reduce_points", "resolve_perplexity", "validate_vectors"]
