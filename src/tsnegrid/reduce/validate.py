"""Input checks shared by every reducer: one place that says what a usable vector array is."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError

log = logging.getLogger(__name__)



def validate_vectors(vectors: NDArray[np.floating]) -> NDArray[np.floating]:
    """Check an N x D numeric array (N >= 1) of finite values.

    Returns float32 input as is (1M x 1280 vectors would need 10 GB as float64) and anything else
    as float64.
    Rejected with :class:`~tsnegrid.errors.InputError`: a shape other than N x D, an empty array,
    a non-numeric dtype, and NaN or inf anywhere (the message names the first bad row). A single
    row and all-identical rows are accepted: :func:`trivial_layout` handles them.
    """
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise InputError(f"vectors must be a 2-D array (N x D), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"vectors array is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"vectors must be integer or float, got dtype {arr.dtype}")
    out = arr if arr.dtype == np.float32 else arr.astype(np.float64)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise InputError(f"vectors contain NaN or inf in {int(bad.sum())} row(s), first at row "
                         f"{int(np.flatnonzero(bad)[0])}")
    return out


def trivial_layout(vectors: NDArray[np.floating]) -> NDArray[np.float64] | None:
    """The documented fallback when there is nothing to reduce, else None.

    One vector, or N identical vectors (say, N copies of one image), carry no arrangement: every
    point goes to (0, 0) and the grid stage spreads them over its cells in any order.
    """
    n = vectors.shape[0]
    if n == 1:  # a valid input with one obvious layout: nothing to warn about
        return np.zeros((1, 2))
    if not (vectors != vectors[0]).any():
        log.warning("all %d vectors are identical: nothing to reduce, all points at (0, 0)", n)
        return np.zeros((n, 2))
    return None
