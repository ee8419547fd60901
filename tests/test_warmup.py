"""The background compile covers exactly the kernels and argument types the real calls use."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tsnegrid.arrange.assign.partition import _stable_argsort

PROBE = """
import numpy as np
from numba.core.registry import CPUDispatcher
from tsnegrid.arrange import refine, smooth, warmup, windows
from tsnegrid.arrange.assign import auction, certify, exact, large, partition

mods = (auction, certify, partition, refine, smooth, windows)
def signatures():
    return {(m.__name__, k): list(v.signatures) for m in mods for k, v in vars(m).items()
            if isinstance(v, CPUDispatcher)}

warmup.start().join()
before = signatures()
rng = np.random.default_rng(0)
pts = rng.random((200, 2)) * 15
cells = exact.solve_exact(pts, 15, 15, "sqeuclidean").cells
exact.solve_exact(pts, 15, 15, "euclidean")
large.solve_large(rng.random((5000, 2)) * 80, 80, 80, "sqeuclidean")
refine.refine(rng.random((200, 16)), cells, 15, 15, seed=1)
refine.refine(rng.random((200, 3)), cells, 15, 15, seed=1)
refine.refine(rng.random((200, 16)), cells, 15, 15, movable=rng.random(200) < 0.3)
after = signatures()
entry = [("tsnegrid.arrange.assign.auction", "auction"),
         ("tsnegrid.arrange.assign.certify", "violations"),
         ("tsnegrid.arrange.assign.certify", "spare_cell_gap"),
         ("tsnegrid.arrange.assign.partition", "_bisect"),
         ("tsnegrid.arrange.refine", "_swap_pass"), ("tsnegrid.arrange.smooth", "_smooth_pass")]
assert all(before[k] for k in entry), [k for k in entry if not before[k]]
new = {k: v[len(before[k]):] for k, v in after.items() if v != before[k]}
assert not new, new
print("ok", len(before))
"""


def test_warmup_compiles_every_signature_the_real_calls_use() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")


def test_stable_argsort_matches_numpy_stable_sort_with_ties() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 17, 64, 1000):
        for key in (rng.random(n), np.round(rng.random(n) * 4), np.zeros(n)):
            k = n - n // 3
            buf = np.empty(n, dtype=np.int64)
            got = _stable_argsort(key, k, np.empty(n, dtype=np.int64), buf)[:k]
            assert np.array_equal(got, np.argsort(key[:k], kind="stable"))
