"""Start-up stays light: the CLI and every command's --help load no stage and no heavy library.

Checked on what a fresh interpreter has imported (not on time, which depends on the machine).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tsnegrid import settings

# logging too: the commands set it up when they run (tsnegrid.logs), so --help never loads it
HEAVY = ("logging", "numpy", "scipy", "sklearn", "numba", "onnxruntime", "onnx", "fastapi",
         "sqlalchemy", "PIL", "openTSNE", "torch", "pydantic", "uvicorn", "tqdm", "dask")

PROBE = """
import json, sys
from tsnegrid.cli import cli
args = json.loads(sys.argv[1])
if args:
    try:
        cli(args, obj={})
    except SystemExit:
        pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _imported(args: list[str]) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], check=True,
                         capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_cli_loads_no_heavy_library() -> None:
    assert not _imported([]) & set(HEAVY)


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["add", "--help"],
                                  ["assign", "--help"], ["reduce", "--help"], ["serve", "--help"],
                                  ["apps", "--help"], ["apps", "create", "--help"],
                                  ["--version"]])
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    assert not _imported(args) & set(HEAVY)


def test_cli_name_lists_match_the_stages() -> None:
    from tsnegrid.arrange import assign, incremental
    from tsnegrid.reduce import REDUCERS

    assert tuple(REDUCERS) == settings.REDUCER_NAMES
    assert assign.METRICS == settings.ASSIGN_METRICS
    assert incremental.MAX_MOVED == settings.MAX_MOVED


def test_a_small_build_imports_neither_scipy_nor_scikit_learn(tmp_path) -> None:
    # The demo-sized build (reduce, arrange, regions, metrics, render) runs on numpy and the
    # compiled kernels: scipy's import alone costs 0.5 s, scikit-learn's and openTSNE's 2 s.
    import numpy as np

    vectors = tmp_path / "v.npy"
    rng = np.random.default_rng(0)
    np.save(vectors, np.vstack([rng.normal(size=(150, 40)), rng.normal(size=(150, 40)) + 3]))
    out = _imported(["-q", "reduce", str(vectors), "--out", str(tmp_path / "c.npy")])
    assert "tsnegrid" in out and not out & {"scipy", "sklearn", "openTSNE"}
    probe = ("import json, sys, numpy as np\n"
             "from tsnegrid.arrange import assign\n"
             "from tsnegrid.metrics import grid_quality\n"
             "from tsnegrid.regions.ward import ward, graph_lists\n"
             "from tsnegrid.regions import _placement\n"
             "v = np.random.default_rng(0).normal(size=(300, 8))\n"
             "from tsnegrid.reduce import reduce\n"
             "p = reduce(v)\n"
             "from tsnegrid.arrange.grid import fit_to_grid\n"
             "cells = assign.assign(fit_to_grid(p, 20, 15), 20, 15)\n"
             "from tsnegrid.arrange.refine import refine\n"
             "refine(np.hstack([v] * 8), cells, 20, 15, seed=0)\n"
             "grid_quality(v, cells, 15)\n"
             "e = np.arange(299)\n"
             "ward(v, graph_lists(e, e + 1, 300), 5)\n"
             "_placement(cells[:40], 15)\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n")
    got = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    assert not set(json.loads(got.strip().splitlines()[-1])) & {"scipy", "sklearn", "openTSNE"}


def test_a_large_reduce_runs_on_its_own_kernels(tmp_path) -> None:
    # Above BH_MAX_N the FFT path: tsnegrid's kernels and faiss, not openTSNE (whose import,
    # scikit-learn's among it, took 1.4-1.6 s of a 10,000-point run).
    import numpy as np

    from tsnegrid.reduce.tsne import BH_MAX_N

    vectors = tmp_path / "v.npy"
    rng = np.random.default_rng(0)
    half = BH_MAX_N // 2 + 100
    np.save(vectors, np.vstack([rng.normal(size=(half, 20)), rng.normal(size=(half, 20)) + 4]))
    out = _imported(["-q", "reduce", str(vectors), "--out", str(tmp_path / "c.npy")])
    assert "faiss" in out and not out & {"scipy", "sklearn", "openTSNE"}
    points = np.load(tmp_path / "c.npy")
    assert points.shape == (2 * half, 2) and np.isfinite(points).all()
    # the two clusters stay apart: mapped neighbours come from the point's own cluster
    from tsnegrid.neighbors import knn_of_rows

    near, _ = knn_of_rows(points, np.arange(2 * half), 10)
    assert ((near < half) == (np.arange(2 * half) < half)[:, None]).mean() > 0.99
