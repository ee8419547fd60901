"""Input checks shared by every reducer: one place that says what a usable vector array is."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError

MIN_POINTS = 2


def validate_vectors(vectors: NDArray[np.floating]) -> NDArray[np.floating]:
    """Check an N x D numeric array of finite values with N >= 2 distinct rows.

    Returns float32 input as is (1M x 1280 vectors would need 10 GB as float64) and anything else
    as float64.
    Rejected with :class:`~tsnegrid.errors.InputError`: a shape other than N x D, an empty array,
    a non-numeric dtype, NaN or inf anywhere (the message names the first bad row), fewer than two
    rows, and rows that are all identical (no layout can say anything about them).
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
    if out.shape[0] < MIN_POINTS:
        raise InputError(f"need at least {MIN_POINTS} vectors to lay out, got {out.shape[0]}")
    if not (out != out[0]).any():
        raise InputError(f"all {out.shape[0]} vectors are identical; there is nothing to lay out")
    return out
