"""Grid assignment benchmark: tsnegrid's solvers and the anchors on the same instances.

Anchors: scipy ``linear_sum_assignment``, ``lap.lapjv``, POT ``ot.emd`` (exact, dense) and
``vc-flas`` (FLAS, approximate; it sorts the 2-D points by similarity and does not minimise the
point-to-cell cost, so its cost column is for reference only). Each solver runs in its own
process so its peak RSS can be read (VmHWM), with a time limit; anchors are skipped above the
size where they would take minutes or gigabytes. Writes the "assign" section of RESULTS.md.

    python benchmarks/assign.py --sizes 1024,2500,4096,10000,100000,1000000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # noqa: E402

# Largest instance (cells) each solver is run on; beyond it the table says "skipped".
LIMITS = {"tsnegrid exact": 20_000, "tsnegrid large": 1_000_000, "scipy": 4_096,
          "lap": 2_500, "pot": 10_000, "flas": 1_000_000}
EXACT_SOLVERS = ("tsnegrid exact", "pot", "scipy", "lap")
DPQ_MAX = 10_000  # vc-flas' DPQ builds N x N matrices
DPQ_SOLVERS = ("tsnegrid exact", "tsnegrid large", "flas")  # exact anchors match tsnegrid exact


@dataclass(frozen=True)
class Instance:
    name: str
    rows: int
    cols: int
    n: int
    kind: str
    metric: str


def clustered(n: int, rows: int, cols: int, seed: int) -> np.ndarray:
    """t-SNE-like clouds (Gaussian blobs of mixed size and weight), min-max scaled to the grid."""
    rng = np.random.default_rng(seed)
    k = max(3, int(np.sqrt(n) / 4))
    lab = rng.choice(k, n, p=rng.dirichlet(np.full(k, 2.0)))
    spread = rng.uniform(0.01, 0.06, k)
    pts = rng.uniform(0, 1, (k, 2))[lab] + rng.normal(size=(n, 2)) * spread[lab, None]
    pts -= pts.min(0)
    pts /= pts.max(0)
    return pts * np.array([cols, rows])


def make_points(inst: Instance) -> np.ndarray:
    if inst.kind == "uniform":
        rng = np.random.default_rng(inst.n)
        return rng.uniform(0, 1, (inst.n, 2)) * np.array([inst.cols, inst.rows])
    return clustered(inst.n, inst.rows, inst.cols, seed=inst.n)


def grid_for(n: int) -> tuple[int, int]:
    """Most square full grid with n cells."""
    r = math.isqrt(n)
    while n % r:
        r -= 1
    return r, n // r


def instances(sizes: list[int], variants: bool) -> list[Instance]:
    out = []
    for n in sizes:
        rows, cols = grid_for(n)
        out.append(Instance(f"clustered {rows}x{cols}", rows, cols, n, "clustered",
                            "sqeuclidean"))
    if variants:
        out += [
            Instance("uniform 64x64", 64, 64, 4096, "uniform", "sqeuclidean"),
            Instance("uniform 100x100", 100, 100, 10_000, "uniform", "sqeuclidean"),
            Instance("rectangular 32x128", 32, 128, 4096, "clustered", "sqeuclidean"),
            Instance("holes 64x72 (4096 pts)", 64, 72, 4096, "clustered", "sqeuclidean"),
            Instance("holes 100x120 (10k pts)", 100, 120, 10_000, "clustered", "sqeuclidean"),
            Instance("euclidean 64x64", 64, 64, 4096, "clustered", "euclidean"),
            Instance("euclidean 100x100", 100, 100, 10_000, "clustered", "euclidean"),
        ]
    return out


# ---------------------------------------------------------------- worker side (one solver)

def solve(name: str, pts: np.ndarray, rows: int, cols: int, metric: str) -> np.ndarray:
    n, m = len(pts), rows * cols
    if name.startswith("tsnegrid"):
        from tsnegrid.arrange.assign import assign
        method = name.split()[1]
        return assign(pts, rows, cols, method=method, metric=metric)
    if name == "flas":
        import vc_flas
        ids = np.full((rows, cols), -1, dtype=np.int32)
        ids.flat[:n] = np.arange(n, dtype=np.int32)
        grid = vc_flas.Grid(pts.astype(np.float32), ids, np.zeros((rows, cols), dtype=bool),
                            np.arange(n, dtype=np.uint32))
        sorting = vc_flas.flas(grid, seed=1).sorting.ravel()
        cells = np.empty(n, dtype=np.int64)
        placed = sorting >= 0
        cells[sorting[placed]] = np.flatnonzero(placed)
        return cells
    from scipy.spatial.distance import cdist

    from tsnegrid.arrange.assign import cell_centres
    cost = cdist(pts, cell_centres(rows, cols), metric=metric)
    if name == "scipy":
        from scipy.optimize import linear_sum_assignment
        _, col = linear_sum_assignment(cost)
        return col.astype(np.int64)
    if name == "lap":
        import lap
        _, x, _ = lap.lapjv(cost, extend_cost=n < m)
        return x.astype(np.int64)
    if name == "pot":
        import ot
        # spare cells go to one zero-cost dummy source so that the masses balance
        full = np.vstack([cost, np.zeros((1, m))]) if m > n else cost
        a = np.ones(len(full))
        a[n:] = m - n
        plan = ot.emd(a, np.ones(m), full, numItermax=10**9)
        return plan[:n].argmax(axis=1).astype(np.int64)
    raise ValueError(name)


def worker(args: argparse.Namespace) -> None:
    pts = np.load(args.points)
    # imports (POT probes torch) and compiled kernels load before the clock starts
    solve(args.solver, np.array([[0.5, 0.5], [1.5, 1.5]]), 2, 2, args.metric)
    start = time.perf_counter()
    cells = solve(args.solver, pts, args.rows, args.cols, args.metric)
    elapsed = time.perf_counter() - start
    np.save(args.out, cells)
    # VmHWM: peak resident memory of this process image (ru_maxrss would include the driver's)
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM"))
    print(json.dumps({"time": elapsed, "rss": int(hwm.split()[1]) / 1024}))


# ---------------------------------------------------------------- driver side

def run_one(solver: str, inst: Instance, pts_file: Path, out_file: Path,
            timeout: float) -> dict[str, float | str]:
    cmd = [sys.executable, __file__, "--worker", solver, "--points", str(pts_file), "--rows",
           str(inst.rows), "--cols", str(inst.cols), "--metric", inst.metric, "--out",
           str(out_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.waitpid(proc.pid, 0)
            return {"skip": f"> {timeout:.0f} s"}
        time.sleep(0.05)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        tail = (err.strip().splitlines() or ["killed"])[-1]
        return {"skip": f"failed: {tail[:80]}"}
    result = json.loads(out.strip().splitlines()[-1])
    return {"time": result["time"], "rss": result["rss"]}


def cost_of(pts: np.ndarray, cells: np.ndarray, cols: int, metric: str) -> float:
    r, c = np.divmod(cells, cols)
    d2 = (c + 0.5 - pts[:, 0]) ** 2 + (r + 0.5 - pts[:, 1]) ** 2
    return float(np.sqrt(d2).sum() if metric == "euclidean" else d2.sum())


def dpq16(pts: np.ndarray, cells: np.ndarray, rows: int, cols: int) -> float:
    from vc_flas.metrics import distance_preservation_quality
    grid = np.zeros((rows * cols, 2), dtype=np.float32)
    valid = np.zeros(rows * cols, dtype=bool)
    grid[cells] = pts / max(rows, cols)
    valid[cells] = True
    return float(distance_preservation_quality(grid.reshape(rows, cols, 2),
                                               valid.reshape(rows, cols), p=16))


def bench(inst: Instance, solvers: list[str], timeout: float, tmp: Path) -> list[dict]:
    pts = make_points(inst)
    pts_file = tmp / "points.npy"
    np.save(pts_file, pts)
    rows = []
    for solver in solvers:
        row: dict = {"instance": inst.name, "n": inst.n, "solver": solver}
        if inst.rows * inst.cols > LIMITS[solver]:
            row["skip"] = f"skipped above {LIMITS[solver]:,} cells"
        else:
            out_file = tmp / "cells.npy"
            limit = timeout * 10 if solver.startswith("tsnegrid") else timeout
            row.update(run_one(solver, inst, pts_file, out_file, limit))
            if "time" in row:
                cells = np.load(out_file)
                ok = len(np.unique(cells)) == inst.n and cells.min() >= 0
                row["cost"] = cost_of(pts, cells, inst.cols, inst.metric) if ok else math.nan
                if inst.n <= DPQ_MAX and solver in DPQ_SOLVERS:
                    row["dpq16"] = dpq16(pts, cells, inst.rows, inst.cols)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    best: dict[str, float] = {}
    pot: dict[str, float] = {}
    for r in rows:
        if r["solver"] in EXACT_SOLVERS and "cost" in r:
            best[r["instance"]] = min(best.get(r["instance"], math.inf), r["cost"])
        if r["solver"] == "pot" and "time" in r:
            pot[r["instance"]] = r["time"]
    lines = ["| instance | N | solver | time (s) | peak RSS (MB) | cost | cost / optimum | "
             "POT time / time | DPQ16 |", "|" + "---|" * 9]
    for r in rows:
        if "skip" in r:
            lines.append(f"| {r['instance']} | {r['n']:,} | {r['solver']} | {r['skip']} "
                         "| | | | | |")
            continue
        opt = best.get(r["instance"])
        ratio = f"{r['cost'] / opt:.6f}" if opt else "-"
        speed = f"{pot[r['instance']] / r['time']:.1f}x" if r["instance"] in pot else "-"
        dpq = f"{r['dpq16']:.4f}" if "dpq16" in r else "-"
        lines.append(f"| {r['instance']} | {r['n']:,} | {r['solver']} | {r['time']:.2f} | "
                     f"{r['rss']:.0f} | {r['cost']:.6g} | {ratio} | {speed} | {dpq} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2500,4096,10000,100000,1000000")
    parser.add_argument("--solvers", default=",".join(LIMITS))
    parser.add_argument("--variants", action=argparse.BooleanOptionalAction, default=True,
                        help="also rectangular, holes, uniform and Euclidean instances")
    parser.add_argument("--timeout", type=float, default=150.0,
                        help="seconds per anchor run (tsnegrid gets 10x)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    for hidden in ("--points", "--out", "--metric"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cols", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.solver = args.worker
        worker(args)
        return
    solvers = args.solvers.split(",")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for inst in instances([int(s) for s in args.sizes.split(",")], args.variants):
            rows += bench(inst, solvers, args.timeout, Path(tmp))
    body = ("### Grid assignment\n\nSquared-Euclidean cost to cell centres unless named; "
            "\"cost / optimum\" divides by the lowest cost of an exact solver on the instance. "
            "vc-flas sorts by similarity and does not minimise this cost; compare it on DPQ16 "
            "(vc-flas' distance preservation quality, p=16, computed up to "
            f"{DPQ_MAX:,} points).\n\n" + table(rows))
    write_section("assign", body)


if __name__ == "__main__":
    main()
