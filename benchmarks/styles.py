"""Same emoji across styles: for each feature mix, how often does an emoji drawn in Google's
(Noto) style find the same emoji drawn in Twitter's (Twemoji) style as its nearest neighbour?

A style change keeps what the emoji is and roughly its colours and layout, and changes the
drawing; retrieval across styles measures how much of "looks alike" a feature mix keeps.
Writes the ``styles`` section of benchmarks/RESULTS.md.

The Twemoji images (CC-BY 4.0) are fetched, not shipped; get them with

    mkdir -p /tmp/styles && cd /tmp/styles && npm pack emoji-datasource-twitter@16.0.0 \\
        && tar xzf emoji-datasource-twitter-16.0.0.tgz

    python benchmarks/styles.py [--other /tmp/styles/package/img/twitter/64] \\
        [--cache-dir /tmp/styles-cache]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from _results import write_section
from quality import knn_accuracy
from tsnegrid.embed import embed_images, make_embedder
from tsnegrid.embed.cache import EmbeddingCache
from tsnegrid.embed.config import EmbedConfig

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
GOOGLE = DATA / "emoji-google-64" / "images"
OTHER = Path("/tmp/styles/package/img/twitter/64")
NPM = ("mkdir -p /tmp/styles && cd /tmp/styles && npm pack emoji-datasource-twitter@16.0.0 "
       "&& tar xzf emoji-datasource-twitter-16.0.0.tgz")

#: (label, model, features, colour weight): raw pixels plus the mixes of quality.py's table.
MIXES = (
    ("pixels (32x32 RGB)", "pixels", "semantic", 0.5),
    ("semantic (Lite0)", "lite0", "semantic", 0.5),
    ("colour", "lite0", "colour", 0.5),
    ("both, colour weight 0.25", "lite0", "both", 0.25),
    ("both, colour weight 0.5", "lite0", "both", 0.5),
    ("both, colour weight 1", "lite0", "both", 1.0),
)
DEFAULT_MIX = "both, colour weight 0.25"


def paired_names(google: Path, other: Path) -> list[str]:
    """PNG file names (unified code points) present in both folders, sorted."""
    names = {p.name for p in google.glob("*.png")} & {p.name for p in other.glob("*.png")}
    return sorted(names)


def embed(paths: list[Path], model: str, features: str, weight: float,
          cache_dir: Path) -> NDArray[np.float64]:
    """Vectors exactly as the pipeline computes them (no normalisation beyond the mix's own)."""
    embedder = make_embedder(model, cache_dir, 0, features, weight)
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
    try:
        config = EmbedConfig(model=model, cache_dir=cache_dir, features=features,
                             colour_weight=weight)
        emb = embed_images(paths, embedder, cache, config=config)
    finally:
        cache.close()
    if emb.skipped:
        raise SystemExit(f"unreadable: {emb.skipped[0].path}: {emb.skipped[0].reason}")
    return emb.vectors.astype(np.float64)


def true_match_rank(queries: NDArray[np.float64], targets: NDArray[np.float64],
                    metric: str) -> NDArray[np.int64]:
    """0-based rank of targets[i] among all targets for queries[i]; ties count against it."""
    if metric == "cosine":
        q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        t = targets / np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), 1e-12)
        score = q @ t.T
    else:
        score = -((queries**2).sum(1)[:, None] - 2 * queries @ targets.T
                  + (targets**2).sum(1)[None, :])
    own = np.diag(score)[:, None]
    return (score >= own).sum(axis=1) - 1


def top_k(rank: NDArray[np.int64], k: int) -> float:
    return float((rank < k).mean())


def category_labels(google: Path, names: list[str]) -> NDArray[np.str_] | None:
    """Unicode category per paired file from labels.csv beside the images folder, if there."""
    labels = google.parent / "labels.csv"
    if not labels.exists():
        return None
    with open(labels, newline="") as f:
        category = {r["file"]: r["category"] for r in csv.DictReader(f)}
    return np.array([category[n] for n in names]) if all(n in category for n in names) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--google", type=Path, default=GOOGLE, help="Noto emoji PNG folder")
    ap.add_argument("--other", type=Path, default=OTHER, help="Twemoji 64px PNG folder")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/styles-cache"))
    args = ap.parse_args()
    for folder, hint in ((args.google, "the shared emoji-google-64 dataset"),
                         (args.other, f"fetch it with: {NPM}")):
        if not folder.is_dir():
            raise SystemExit(f"{folder}: no such folder; {hint}")
    names = paired_names(args.google, args.other)
    if not names:
        raise SystemExit(f"no PNG file names common to {args.google} and {args.other}")
    categories = category_labels(args.google, names)
    print(f"{len(names)} emoji in both styles", flush=True)

    rows = []
    for label, model, features, weight in MIXES:
        g = embed([args.google / n for n in names], model, features, weight, args.cache_dir)
        t = embed([args.other / n for n in names], model, features, weight, args.cache_dir)
        cos = [true_match_rank(g, t, "cosine"), true_match_rank(t, g, "cosine")]
        euc = [true_match_rank(g, t, "euclidean"), true_match_rank(t, g, "euclidean")]
        top1 = [top_k(r, 1) for r in cos]
        top5 = [top_k(r, 5) for r in cos]
        knn = f"{knn_accuracy(g, categories):.3f}" if categories is not None else "-"
        name = f"**{label}** (default)" if label == DEFAULT_MIX else label
        rows.append(f"| {name} | {g.shape[1]} | {top1[0]:.3f} / {top1[1]:.3f} | "
                    f"{top5[0]:.3f} / {top5[1]:.3f} | **{np.mean(top1):.3f}** | "
                    f"{np.mean(top5):.3f} | {np.mean([top_k(r, 1) for r in euc]):.3f} | "
                    f"{np.median(np.concatenate(cos)) + 1:.0f} | {knn} |")
        print(rows[-1], flush=True)

    body = "\n".join([
        "## Same emoji across styles (`benchmarks/styles.py`)",
        "",
        f"{len(names)} emoji drawn in two styles, paired by file name (unified code points):",
        "Google Noto (emoji-google-64) and Twemoji (npm `emoji-datasource-twitter` 16.0.0,",
        "img/twitter/64). Each image of one style ranks all images of the other by cosine",
        "similarity of its vectors as the pipeline computes them (the pipeline itself does not",
        "normalise; the `both` mix scales each part to unit length); top-k is the share whose",
        "own emoji is among the k nearest (ties count against it), Google -> Twemoji / Twemoji",
        "-> Google, and their mean. Euclidean top-1 is the same with the distance t-SNE and the",
        "grid refinement use. Median rank of the own emoji over both directions (1 = nearest).",
        f"Chance top-1 is 1/{len(names)}. 5-NN category accuracy: leave-one-out on the Google",
        "set alone, Euclidean (as in the quality section).",
        "",
        "| features | dims | top-1 (G->T / T->G) | top-5 (G->T / T->G) | top-1 mean "
        "| top-5 mean | Euclidean top-1 | median rank | 5-NN category (Google) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Twemoji graphics: Copyright Twitter, Inc. and other contributors, CC-BY 4.0; fetched",
        "with `npm pack emoji-datasource-twitter@16.0.0` for this benchmark, not shipped.",
    ])
    write_section("styles", body)


if __name__ == "__main__":
    main()
