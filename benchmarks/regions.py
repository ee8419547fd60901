"""Named regions on labelled sets: are the regions pure, and do their names say what is in them?

Each set is built as ``tsnegrid build`` builds it (lite0 with the default feature mix, t-SNE,
assignment, refinement; the embedding cache makes reruns fast), then cut into named regions
(``tsnegrid.regions``). Per set: the number of regions and their mean size; purity against the
true labels (the size-weighted share of each region's most common label); the same purity for
square blocks of the grid of the same number (what a cut that ignores content gets); the name's
share (the fraction of a region's images whose top-5 concepts include its name), averaged over
regions and weighted by size; the share of regions with a broader name; and the stage's time;
then purity and name share of the cut from the concepts alone (no vectors), for comparison.

Sets: emoji-google-64 (1,911 images; Unicode category and subcategory), the first N
Fashion-MNIST test images (10 classes; written as PNGs), and the ELPV solar-cell photographs
(PyPI ``elpv-dataset``, bench extra; cell type mono/poly). ImageNet concepts fit none of them
well (emoji and clothing sketches, solar cells): the names are the nearest ImageNet classes.

    python benchmarks/regions.py [--sets emoji,fashion,elpv] [--fashion-n 4000] [--size 48]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from _results import write_section
from tsnegrid import Settings, build
from tsnegrid.embed import EmbedConfig, embed_files
from tsnegrid.layout import Layout
from tsnegrid.regions import Regions, RegionsConfig, find_regions

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
Labelled = tuple[list[Path], dict[str, NDArray[np.str_]]]


def emoji(_: argparse.Namespace, tmp: Path) -> Labelled:
    root = DATA / "emoji-google-64"
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return ([root / "images" / r["file"] for r in rows],
            {k: np.array([r[k] for r in rows]) for k in ("category", "subcategory")})


def fashion(args: argparse.Namespace, tmp: Path) -> Labelled:
    root = DATA / "fashion-mnist"
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:args.fashion_n]
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:args.fashion_n]
    (tmp / "fashion").mkdir()
    paths = []
    for i, img in enumerate(x):  # dark clothes on white, as photographed items are shown
        paths.append(tmp / "fashion" / f"{i:05d}.png")
        Image.fromarray(255 - img).save(paths[-1])
    names = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
             "bag", "ankle boot"]
    return paths, {"class": np.array([names[k] for k in y])}


def elpv(_: argparse.Namespace, tmp: Path) -> Labelled:
    import elpv_dataset

    root = Path(elpv_dataset.__file__).parent / "data"
    rows = [line.split() for line in (root / "labels.csv").read_text().splitlines() if line]
    return [root / p for p, _, _ in rows], {"type": np.array([t for _, _, t in rows])}


SETS: dict[str, tuple[str, Callable[[argparse.Namespace, Path], Labelled]]] = {
    "emoji": ("emoji-google-64", emoji),
    "fashion": ("Fashion-MNIST", fashion),
    "elpv": ("ELPV solar cells", elpv),
}


def purity(groups: NDArray[np.integer], labels: NDArray[np.str_]) -> float:
    """Size-weighted share of each group's most common label."""
    total = 0
    for g in np.unique(groups):
        _, counts = np.unique(labels[groups == g], return_counts=True)
        total += int(counts.max())
    return total / len(labels)


def blocks(cells: NDArray[np.int64], rows: int, cols: int, n: int) -> NDArray[np.int64]:
    """Square blocks of the grid, about n of them."""
    side = max(1, round(np.sqrt(rows * cols / max(n, 1))))
    r, c = np.divmod(cells, cols)
    return (r // side) * (cols // side + 1) + c // side


def name_shares(layout: Layout, regions: Regions) -> NDArray[np.float64]:
    """Per region: the share of its images whose top-5 concepts include its name."""
    from tsnegrid.concepts.broader import broader_names
    from tsnegrid.concepts.names import class_names

    assert layout.concepts is not None
    names, broad = class_names(), broader_names()
    out = []
    for k, region in enumerate(regions.regions):
        ids = layout.concepts.ids[regions.labels == k]
        hit = [any(names[c] == region.name or region.name in broad[c] for c in row)
               for row in ids.tolist()]
        out.append(float(np.mean(hit)))
    return np.asarray(out)


def measure(name: str, paths: list[Path], labels: dict[str, NDArray[np.str_]],
            args: argparse.Namespace) -> list[str]:
    t0 = time.perf_counter()
    settings = Settings(cache_dir=args.cache_dir, seed=0)
    layout = build(paths, None, settings)
    built = time.perf_counter() - t0
    vectors = embed_files([Path(p) for p in layout.paths],  # from the cache the build filled
                          EmbedConfig.from_settings(settings)).vectors
    assert layout.concepts is not None and len(layout.paths) == len(paths)
    order = {str(p): i for i, p in enumerate(paths)}
    rows_of = np.array([order[p] for p in layout.paths])
    t0 = time.perf_counter()
    regions = find_regions(layout.cells, layout.rows, layout.cols, layout.concepts,
                           RegionsConfig(size=args.size), vectors)
    took = time.perf_counter() - t0
    shares = name_shares(layout, regions)
    sizes = np.array([r.size for r in regions.regions])
    base = blocks(layout.cells, layout.rows, layout.cols, len(sizes))
    # the cut from the concepts alone (what find_regions does without vectors)
    alone = find_regions(layout.cells, layout.rows, layout.cols, layout.concepts,
                         RegionsConfig(size=args.size))
    alone_shares = name_shares(layout, alone)
    lines = []
    for key, lab in labels.items():
        y = lab[rows_of]
        lines.append(
            f"| {name} ({len(paths):,}) | {key} ({len(np.unique(y))}) | {len(sizes)} | "
            f"{sizes.mean():.1f} | {purity(regions.labels, y):.3f} | "
            f"{purity(base, y):.3f} | {purity(alone.labels, y):.3f} | {shares.mean():.3f} | "
            f"{float((shares * sizes).sum() / sizes.sum()):.3f} | {alone_shares.mean():.3f} | "
            f"{np.mean([r.broader for r in regions.regions]):.2f} | {took:.2f} |")
    top = ", ".join(f"{r.name} ({r.size})" for r in regions.regions[:8])
    print(f"{name}: built in {built:.1f} s; largest regions: {top}", flush=True)
    return lines + [f"<!-- {name} largest: {top} -->"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="emoji,fashion,elpv")
    parser.add_argument("--fashion-n", type=int, default=4000)
    parser.add_argument("--size", type=int, default=Settings.region_size)
    parser.add_argument("--cache-dir", type=Path, default=Settings().cache_dir)
    args = parser.parse_args()
    rows: list[str] = []
    names: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.sets.split(","):
            title, load = SETS[key]
            paths, labels = load(args, Path(tmp))
            out = measure(title, paths, labels, args)
            rows += [r for r in out if r.startswith("|")]
            names += [r for r in out if r.startswith("<!--")]
            print("\n".join(r for r in out if r.startswith("|")), flush=True)
    head = ("| set | labels | regions | mean size | purity | purity of blocks | "
            "purity, concepts alone | name share | name share (by size) | "
            "name share, concepts alone | broader names | time (s) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    largest = "\n".join(f"- {n[5:-4]}" for n in names)
    body = (f"## Named regions (`tsnegrid.regions`, region size {args.size})\n\n"
            "Each set built with the defaults (lite0, `--features both`, t-SNE, assignment, "
            "refinement), then cut into named regions. Purity: size-weighted share of each "
            "region's most common true label; blocks: square blocks of the grid, as many as "
            "there are regions; concepts alone: the cut made from the concept profiles instead "
            "of the vectors (what `find_regions` does without vectors). Name share: the "
            "fraction of a region's images whose top-5 concepts include its name (a class, or a "
            "class of the broader name), mean over regions, then weighted by size; broader "
            "names: the share of regions named by a group (dog, bird, ...) rather than a class. "
            "Merging touching regions of the same name was tried and dropped: on emoji (concept "
            "profiles without the position term, region size 48) it took purity from 0.576 to "
            "0.527 by making regions of "
            "300 to 500 images.\n\n"
            f"{head}\n" + "\n".join(rows) + "\n\nLargest regions:\n\n" + largest + "\n")
    write_section("regions", body)


if __name__ == "__main__":
    main()
