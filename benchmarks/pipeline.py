"""Time each stage of `tsnegrid build` on the 1,024-image demo, cold and warm cache.

Usage: python benchmarks/pipeline.py [--runs 1]
Writes the "pipeline" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from _results import write_section
from tsnegrid import Settings, build
from tsnegrid.metrics import neighbour_agreement

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024"
STAGES = ["load", "embed", "reduce", "assign", "refine", "metrics", "render"]


def scipy_assign_time(layout_coords: np.ndarray, rows: int, cols: int) -> float:
    """The dense exact anchor on the same points."""
    from tsnegrid.arrange.assign import SOLVERS
    from tsnegrid.arrange.grid import fit_to_grid

    pts = fit_to_grid(layout_coords, rows, cols)
    t0 = time.perf_counter()
    SOLVERS["scipy"](pts, rows, cols, "sqeuclidean")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="warm runs to average")
    args = parser.parse_args()
    with open(DEMO / "labels.csv", newline="") as f:
        labels = {r["file"]: r["category"] for r in csv.DictReader(f)}
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        settings = Settings(cache_dir=cache)
        runs = [("cold cache (export + embed)", 1), ("warm cache", args.runs)]
        for name, n in runs:
            timings: list[dict[str, float]] = []
            walls = []
            for _ in range(n):
                t0 = time.perf_counter()
                layout = build([DEMO / "images"], Path(tmp) / "out", settings)
                walls.append(time.perf_counter() - t0)
                timings.append(layout.timings)
            mean = {s: float(np.mean([t.get(s, 0.0) for t in timings])) for s in STAGES}
            rows_out.append((name, mean, float(np.mean(walls)), layout))
    last = rows_out[-1][3]
    anchor = scipy_assign_time(last.coords, last.rows, last.cols)
    agree = neighbour_agreement(np.array([labels[Path(p).name] for p in last.paths]),
                                last.cells, last.rows, last.cols)
    lines = [
        "## Pipeline stages on the 1,024-image demo",
        "",
        "| run | " + " | ".join(STAGES) + " | total wall (s) |",
        "|---|" + "---|" * (len(STAGES) + 1),
    ]
    for name, mean, wall, _ in rows_out:
        lines.append(f"| {name} | " + " | ".join(f"{mean[s]:.2f}" for s in STAGES)
                     + f" | {wall:.2f} |")
    a = rows_out[-1][1]["assign"]
    lines += [
        "",
        f"Grid {last.rows}x{last.cols}; model {last.model_id}.",
        f"Assignment: tsnegrid {a:.2f} s vs scipy linear_sum_assignment {anchor:.2f} s on the "
        f"same points (ratio {anchor / max(a, 1e-9):.1f}x); the original notebook took 44 s.",
        f"Quality: kNN-10 preservation {last.metrics['knn10_preservation']:.3f}, DPQ16 "
        f"{last.metrics['dpq16']:.3f}, category agreement with 8 grid neighbours {agree:.3f}.",
    ]
    write_section("pipeline", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
