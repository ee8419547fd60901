"""Write a layout's data files: layout.csv, layout.json, report.txt and neighbors.npy (the images
are drawn by ``tsnegrid.render``), each published (``tsnegrid.publish``), layout.json last."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from tsnegrid.layout import Layout
from tsnegrid.publish import describe, save_npy, write_text
from tsnegrid.regions import Regions

NEIGHBORS_FILE = "neighbors.npy"


def write_csv(layout: Layout, path: Path) -> None:
    """Header ``path,row,col,x,y``, one row per placed image; with concepts a ``concepts``
    column (``name:probability`` pairs joined by ``; ``, most probable first); with regions,
    each image's fine and coarse region and their names (``region``, ``region_name``,
    ``coarse_region``, ``coarse_region_name``; empty where a region has no name); with
    ``--dedupe`` a ``duplicate_of`` column too, and a row per near-duplicate at its original's
    cell."""
    names = ["path", "row", "col", "x", "y"]
    rows = layout.records()
    if layout.concepts is not None:
        names.append("concepts")
    if layout.regions is not None:
        names += ["region", "region_name", "coarse_region", "coarse_region_name"]
    if layout.settings.dedupe > 0:
        names.append("duplicate_of")
        rows = [{**r, "duplicate_of": ""} for r in rows] + layout.duplicate_records()
    for r in rows:  # a near-duplicate row carries its original's concepts and region
        if layout.regions is not None:
            r["region_name"] = layout.regions.regions[r["region"]].name or ""
            r["coarse_region_name"] = layout.regions.coarse[r["coarse_region"]].name or ""
        if "concepts" in r:
            r["concepts"] = "; ".join(f"{c['name']}:{c['value']:.4f}" for c in r["concepts"])
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=names)
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def _regions_line(regions: Regions) -> str:
    """How many regions, how many named and from what, the largest coarse ones' names."""
    fine, coarse = regions.regions, regions.coarse
    named = [r for r in (*coarse, *fine) if r.name]
    source = sorted({r.source for r in named}) or ["none"]
    big = ", ".join(f"{r.name} ({r.size})" if r.name else
                    f"unnamed ({r.size}; best guess {r.candidate}, {r.score:.2f})"
                    for r in coarse[:5])
    return (f"regions:  {len(fine)} fine in {len(coarse)} coarse; named "
            f"{sum(1 for r in fine if r.name)} fine and {sum(1 for r in coarse if r.name)} "
            f"coarse, from {', '.join(source)} (largest coarse: {big})")


def report_text(layout: Layout) -> str:
    """Human summary: counts, skipped files with reasons, stage times, metrics."""
    lines = [
        "tsnegrid report",
        f"images found:   {layout.n_found}",
        f"images placed:  {len(layout.paths)}",
        f"images skipped: {len(layout.skipped)}",
        *([f"near-duplicates: {len(layout.duplicates)} (found = placed + skipped + "
           "near-duplicates)"] if layout.duplicates else []),
        f"grid:           {layout.rows} x {layout.cols} ({layout.rows * layout.cols} cells, "
        f"{layout.rows * layout.cols - len(layout.paths)} empty)",
        f"model:          {layout.model_id}",
        f"reducer:        {layout.settings.reducer}",
        f"seed:           {layout.settings.seed}",
        "",
        "stage times (s):",
        *(f"  {k:<10} {v:8.2f}" for k, v in layout.timings.items()),
        "",
        "metrics:",
        *(f"  {k:<24} {v:.4f}" for k, v in layout.metrics.items()),
    ]
    if layout.regions is not None and layout.regions.regions:
        lines += ["", _regions_line(layout.regions)]
    if layout.duplicates:
        lines += ["", f"near-duplicates (cosine >= {layout.settings.dedupe:g}, sharing the cell "
                      f"of the image after '='): {len(layout.duplicates)}",
                  *(f"  {d} = {o}" for d, o in layout.duplicates.items())]
    if layout.transparent_note:
        lines += ["", f"transparent:    {layout.transparent_note}"]
    if layout.skipped:
        lines += ["", "skipped files:", *(f"  {s.path}: {s.reason}" for s in layout.skipped)]
    if layout.undrawn:
        lines += ["", "placed but not drawn (could not be decoded again; their cells are "
                      "empty):", *(f"  {s.path}: {s.reason}" for s in layout.undrawn)]
    return "\n".join(lines) + "\n"


def layout_json(doc: dict[str, Any]) -> str:
    """``doc`` as indented JSON with each record of a list of records (the images, the
    regions, ...) on one line: as readable, and written by the C encoder, which Python uses
    only without indentation (``indent=1`` throughout took 0.3 s of a 1,024-image build)."""
    parts = []
    for key, value in doc.items():
        name = json.dumps(key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            records = ",\n  ".join(json.dumps(v) for v in value)
            parts.append(f" {name}: [\n  {records}\n ]")
        else:  # JSON escapes newlines inside strings, so every newline here is layout
            parts.append(f" {name}: " + json.dumps(value, indent=1).replace("\n", "\n "))
    return "{\n" + ",\n".join(parts) + "\n}"


def write_outputs(layout: Layout, out_dir: Path) -> dict[str, Path]:
    """Write the data files into ``out_dir``; return their paths by kind.

    layout.json goes last and names every other file of ``out_dir`` (``files``: size and
    SHA-256 of each file, count and size of each folder), so a reader can tell a whole set
    (``tsnegrid.publish.check``): a build writes into an empty staging folder, after the images.
    The nearest neighbours go to ``neighbors.npy`` (N x k int32, rows in the order of
    layout.json's ``images``), which layout.json names: as JSON they would be the largest part
    of the file (2 million numbers at 100k images)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"csv": out_dir / "layout.csv", "json": out_dir / "layout.json",
             "report": out_dir / "report.txt"}
    write_csv(layout, files["csv"])
    doc = layout.to_dict()
    stale = out_dir / NEIGHBORS_FILE
    if layout.neighbors is not None:
        files["neighbors"] = stale
        save_npy(stale, np.ascontiguousarray(layout.neighbors, dtype=np.int32))
        doc["neighbors"] = {"file": NEIGHBORS_FILE, "k": int(layout.neighbors.shape[1]),
                            "from": layout.neighbors_from}
    elif stale.exists():  # from an earlier build into this folder: no longer true
        stale.unlink()
    write_text(files["report"], report_text(layout))
    doc["files"] = describe(out_dir)
    write_text(files["json"], layout_json(doc))
    return files
