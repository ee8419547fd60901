"""Test helper: a slow pixel embedder that leaves one line per embedded batch in a file, so that a
test can interrupt a build, or break its cluster, in the middle of embedding.

Used as a Dask worker preload (``--preload slow_pixels``) and as the CLI itself
(``python -m slow_pixels build ...``); ``TSNEGRID_TEST_DELAY`` (seconds per batch) and
``TSNEGRID_TEST_MARKS`` (the file) configure it.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from numpy.typing import NDArray

from tsnegrid.embed.pixels import PixelEmbedder

_fast = PixelEmbedder.embed_batch


def _slow(self: PixelEmbedder, batch: NDArray[np.float32]) -> NDArray[np.float32]:
    time.sleep(float(os.environ.get("TSNEGRID_TEST_DELAY", "0.3")))
    out = _fast(self, batch)
    if marks := os.environ.get("TSNEGRID_TEST_MARKS"):
        with open(marks, "a") as f:
            f.write(f"{len(batch)}\n")
    return out


PixelEmbedder.embed_batch = _slow  # type: ignore[method-assign]

if __name__ == "__main__":
    from tsnegrid.cli import main

    sys.argv[0] = "tsnegrid"
    main()
