"""Nearest-neighbour search, shared by the reduction (t-SNE affinities), the arrangement's
refinement, duplicate search, metrics, regions and the viewer's look-alikes: exact (BLAS) or
faiss's IVF index, chosen by name or by size (``"auto"``)."""

from tsnegrid.neighbors.exact import Neighbors, knn_between, knn_exact, knn_of_rows
from tsnegrid.neighbors.ivf import faiss_threads, ivf_index, ivf_search, knn_ivf
from tsnegrid.neighbors.search import (
    EXACT_MAX_N,
    NEIGHBOR_METHODS,
    NeighborSearch,
    nearest_neighbors,
    resolve_neighbor_method,
)
from tsnegrid.neighbors.similar import SIMILAR_K, similar_images

__all__ = ["EXACT_MAX_N", "NEIGHBOR_METHODS", "NeighborSearch", "Neighbors", "SIMILAR_K",
           "faiss_threads", "ivf_index", "ivf_search", "knn_between", "knn_exact", "knn_ivf",
           "knn_of_rows", "nearest_neighbors", "resolve_neighbor_method", "similar_images"]
