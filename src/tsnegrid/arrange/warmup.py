"""Get the arrange stage's compiled kernels ready while the earlier stages run.

The grid solver and the refinement swaps are numba kernels. Their machine code is cached on
disk after the first run, but that first run (a fresh install, a new container, a CI job) has
to compile them, which took seconds. ``start`` compiles them, or loads them from the cache, in
a background thread on tiny problems with exactly the argument types of the real calls, so the
work overlaps loading, embedding and reducing; a real call that comes first simply waits for
numba's compiler lock and finds the kernel compiled. Results do not depend on it.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

_lock = threading.Lock()
_thread: threading.Thread | None = None


def compile_kernels() -> None:
    """Compile (or load from numba's cache) every kernel of the exact/large assignment, the
    refinement swaps and the map smoothing, on tiny inputs typed as the real calls type them."""
    import numpy as np

    from tsnegrid.arrange import refine, smooth
    from tsnegrid.arrange.assign.exact import solve_exact

    t0 = time.perf_counter()
    points = np.array([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5]], dtype=np.float64)
    solve_exact(points, 2, 2, "sqeuclidean")
    board = np.array([0, 1, 2, -1], dtype=np.int64)
    pos = np.array([0, 1, 2], dtype=np.int64)
    x = np.zeros((3, 2), dtype=np.float32)
    knn = np.zeros((3, 1), dtype=np.int64)
    movable = np.ones(3, dtype=np.bool_)
    refine._swap_pass(board, pos, x, knn, movable, 2, 2, refine.REACH, 1, refine.SWAP_CELLS,
                      refine.WDIAG, 0)
    fmap = np.zeros((4, 2), dtype=np.float32)
    smooth._smooth_pass(board, pos, x, fmap, 2, 2, smooth.REACH, 1, smooth.CELLS, 0)
    log.debug("arrange kernels ready in %.2f s", time.perf_counter() - t0)


def _run() -> None:
    try:
        compile_kernels()
    except Exception:  # the real call compiles again and reports any error itself
        log.debug("background compile of the arrange kernels failed", exc_info=True)


def start() -> threading.Thread:
    """Start the background compile once per process (later calls return the same thread).

    The kernel modules are imported here, in the caller's thread, so the background thread
    only compiles and never races the caller's imports.
    """
    global _thread
    with _lock:
        if _thread is None:
            from tsnegrid.arrange import refine, smooth  # noqa: F401
            from tsnegrid.arrange.assign import exact  # noqa: F401

            _thread = threading.Thread(target=_run, name="tsnegrid-compile", daemon=True)
            _thread.start()
        return _thread
