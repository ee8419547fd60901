"""The one source of defaults: every option of the pipeline, its default and its help text.

The CLI builds its options from ``Settings`` fields and the service's request schema reads the
same defaults, so a default is written exactly once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tsnegrid.errors import InputError


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


def default_cache_dir() -> Path:
    """``$TSNEGRID_CACHE``, else ``$XDG_CACHE_HOME/tsnegrid``, else ``~/.cache/tsnegrid``."""
    if env := os.environ.get("TSNEGRID_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tsnegrid"


@dataclass(frozen=True)
class Settings:
    """Everything that determines a build's result, plus how it runs."""

    model: str = _opt("lite0", "Embedder: lite0 (EfficientNet-Lite0, ImageNet), pixels, or a "
                               "path to an .onnx image model.")
    features: str = _opt("both", "What counts as alike: semantic (the model's vector), "
                                  "colour (a small colour-layout descriptor) or both "
                                  "(concatenated, colour scaled by --colour-weight).")
    colour_weight: float = _opt(0.25, "Weight of the colour part with --features both (each part "
                                     "has unit length first).")
    reducer: str = _opt("tsne", "2-D reduction: tsne, umap (needs tsnegrid[umap]) or pca.")
    assign: str = _opt("auto", "Grid assignment solver (auto picks by grid size).")
    refine: str = _opt("auto", "Refine the assigned grid by swaps that bring look-alike images "
                               "next to each other: on, off, or auto (on up to 250,000 cells).")
    dedupe: float = _opt(0.0, "Near-duplicates (embedding cosine similarity at least this, "
                               "e.g. 0.98) share one cell and are listed as duplicates; 0: off.")
    concepts: int = _opt(5, "ImageNet concepts kept per image, with their probabilities, from "
                            "the lite0 model's own classifier (other models have none); 0: "
                            "none.")
    region_size: int = _opt(48, "Regions: mean images per fine region (coarse ones hold several; "
                                "needs concepts or names from --names).")
    names: str = _opt("auto", "Where region names come from: auto (folders, else words of the "
                              "file names, whichever tells regions apart, else concepts), "
                              "concepts, folders, files, none, or a --metadata field.")
    labels: bool = _opt(False, "Also write the region names into the mosaic image, like place "
                               "names on a map (needs region names).")
    grid: str = _opt("auto", "Grid shape ROWSxCOLS, or auto (rows*cols >= N, near the point "
                             "cloud's aspect).")
    tile: int = _opt(64, "Tile size in pixels.")
    fit: bool = _opt(False, "Fit whole images inside tiles (letterbox) instead of centre-crop.")
    background: str = _opt("#ffffff", "Background colour for holes, letterboxing and alpha.")
    format: str = _opt("jpg", "Mosaic image format: jpg, png or webp.")
    html: bool = _opt(False, "Also write a zoomable viewer (index.html) into the output folder.")
    tiles: bool = _opt(False, "Also write a deep-zoom pyramid (grid.dzi, grid_files/), built "
                              "band by band; a mosaic over --max-pixels is then skipped, not "
                              "refused.")
    seed: int = _opt(0, "Random seed; same inputs and seed give the same layout.")
    batch_size: int = _opt(32, "Images per inference batch.")
    threads: int = _opt(0, "CPU threads for inference (0: all cores).")
    workers: int = _opt(0, "Embed on a local Dask cluster with this many worker processes "
                           "(0: in this process).")
    scheduler: str = _opt("", "Embed on the Dask cluster at this scheduler address "
                              "(e.g. tcp://host:8786).")
    scheduler_timeout: float = _opt(30.0, "Seconds the Dask scheduler may take to connect, or to "
                                          "answer while the build waits on it, before the build "
                                          "stops with an error naming it.")
    max_pixels: int = _opt(400_000_000, "Refuse a mosaic larger than this many pixels.")
    max_image_pixels: int = _opt(178_956_970, "Refuse decoding an image larger than this "
                                              "(decompression-bomb guard).")
    cache_dir: Path = _opt(None, "Cache for embeddings "
                                 "(default $TSNEGRID_CACHE or ~/.cache/tsnegrid).")

    def __post_init__(self) -> None:
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", default_cache_dir())
        else:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.tile < 1:
            raise InputError(f"tile must be a positive number of pixels, got {self.tile}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be positive, got {self.batch_size}")
        if self.format.lower() not in IMAGE_FORMATS:
            raise InputError(f"format must be one of {', '.join(IMAGE_FORMATS)}, got "
                             f"{self.format!r}")
        object.__setattr__(self, "format", self.format.lower())
        if self.features not in FEATURES:
            raise InputError(f"features must be one of {', '.join(FEATURES)}, got "
                             f"{self.features!r}")
        if not 0 < self.colour_weight <= 10:
            raise InputError(f"colour_weight must be in (0, 10], got {self.colour_weight}")
        check_dedupe(self.dedupe)
        if self.region_size < 1:
            raise InputError(f"region_size must be a positive number of images, got "
                             f"{self.region_size}")
        if not 0 <= self.concepts <= 1000:
            raise InputError(f"concepts must be a number of classes in [0, 1000], got "
                             f"{self.concepts}")
        if not self.scheduler_timeout > 0:
            raise InputError(f"scheduler_timeout must be a positive number of seconds, got "
                             f"{self.scheduler_timeout}")
        if self.refine not in REFINE_MODES:
            raise InputError(f"refine must be one of {', '.join(REFINE_MODES)}, got "
                             f"{self.refine!r}")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (paths as strings)."""
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v)
                for f in fields(self)}


IMAGE_FORMATS = ("jpg", "png", "webp")
REFINE_MODES = ("auto", "on", "off")
FEATURES = ("semantic", "colour", "both")
#: Names of the reducers (``tsnegrid.reduce.REDUCERS`` maps each to its function) and of the
#: assignment costs; here so that the CLI lists them without importing the stages.
REDUCER_NAMES = ("tsne", "umap", "pca")
ASSIGN_METRICS = ("sqeuclidean", "euclidean")
#: Share of the old images that ``tsnegrid add`` may move to another cell, at most.
MAX_MOVED = 0.03
#: The settings the embed stage reads (``EmbedConfig.from_settings``; the options of
#: ``tsnegrid embed``), here so the CLI can list them without importing the stage.
EMBED_SETTINGS = ("model", "features", "colour_weight", "concepts", "background", "batch_size",
                  "threads", "workers", "scheduler", "scheduler_timeout", "max_image_pixels",
                  "cache_dir")


def check_dedupe(threshold: float) -> None:
    """0 (off) or a cosine similarity in (0, 1]."""
    if not 0 <= threshold <= 1:
        raise InputError(f"dedupe must be a cosine similarity in (0, 1], or 0 for off; got "
                         f"{threshold}")


def setting_help() -> dict[str, str]:
    """Help text of every setting, by name."""
    return {f.name: f.metadata["help"] for f in fields(Settings)}
