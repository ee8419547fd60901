"""Vectors out: embed images and write the vectors with their paths, so they can be used
elsewhere and fed back with ``tsnegrid build PATHS_FILE --vectors VECTORS.npy``.

``VECTORS.npy`` is N x D float32, one row per readable image; ``VECTORS.paths.txt`` beside it
is a list file (one absolute path per line, in row order, after ``#`` comment lines naming the
model), which ``tsnegrid build`` reads back in the same order. Where the model has concepts
(lite0), ``VECTORS.concepts.json`` holds each row's (``{"model", "top", "images": [[{id, name,
value}, ...], ...]}``, rows in the same order).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tsnegrid.concepts import Concepts
from tsnegrid.destination import check_out_file
from tsnegrid.embed import EmbedConfig, Embedded, embed_files
from tsnegrid.errors import InputError, NoImagesError
from tsnegrid.load import Skipped, discover
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.settings import Settings


@dataclass(frozen=True)
class Exported:
    """Where the vectors and paths went, what they mean, and what could not be read."""

    vectors: Path
    paths: Path
    n: int
    dim: int
    model_id: str
    skipped: tuple[Skipped, ...]
    computed: int = 0
    """How many vectors were computed now (the rest came from the embedding cache)."""
    concepts: Path | None = None
    """The concepts file, when the model has concepts."""


def paths_file(vectors: Path) -> Path:
    """``x/vectors.npy`` -> ``x/vectors.paths.txt``."""
    return vectors.with_suffix(".paths.txt")


def concepts_file(vectors: Path) -> Path:
    """``x/vectors.npy`` -> ``x/vectors.concepts.json``."""
    return vectors.with_suffix(".concepts.json")


def read_concepts(vectors: Path, n: int) -> Concepts | None:
    """The concepts ``write_vectors`` wrote beside ``vectors`` (row for row, ``n`` rows), if
    it did; a file of other rows or another shape is refused."""
    from tsnegrid.concepts.names import class_ids

    path = concepts_file(vectors)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        index = {w: k for k, w in enumerate(class_ids())}
        rows = [[index[c["id"]] for c in im] for im in doc["images"]]
        values = [[float(c["value"]) for c in im] for im in doc["images"]]
        ids = np.asarray(rows, dtype=np.int16)
        vals = np.asarray(values, dtype=np.float32)
        model = str(doc["model"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a concepts file of tsnegrid embed ({exc})") from exc
    if ids.ndim != 2 or len(ids) != n or ids.shape != vals.shape:
        raise InputError(f"{path}: expected {n} rows of concepts (one per listed image), got "
                         f"{len(rows)}")
    return Concepts(ids, vals, model)


def _listable(path: str) -> str:
    """The absolute path as a list-file line; refuses names a list file cannot hold."""
    if "\n" in path or "\r" in path or path != path.strip():
        raise InputError(f"{path!r}: a file name with a line break or leading/trailing spaces "
                         "cannot go into the paths list; rename it")
    return os.path.abspath(path)


def write_vectors(emb: Embedded, paths: Sequence[Path], out: Path) -> Exported:
    """Write the embedded rows of ``paths`` (``emb.kept``) to ``out`` and its paths file."""
    kept = [str(paths[i]) for i in emb.kept]
    lines = [_listable(p) for p in kept]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, np.ascontiguousarray(emb.vectors, dtype=np.float32))
    header = [f"# tsnegrid embed: {len(lines)} images, row i of {out.name} is line i below",
              f"# model: {emb.model_id}"]
    paths_file(out).write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    dim = int(emb.vectors.shape[1]) if emb.vectors.ndim == 2 else 0
    written = concepts_file(out)
    if emb.concepts is not None:
        c = emb.concepts
        doc = {"model": c.model_id, "top": int(c.ids.shape[1]),
               "images": [c.records(i) for i in range(len(c))]}
        written.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    elif written.exists():  # from an earlier export to the same name: no longer true
        written.unlink()
    return Exported(out, paths_file(out), len(lines), dim, emb.model_id, emb.skipped,
                    emb.n_computed, written if emb.concepts is not None else None)


def export_vectors(sources: Sequence[str | Path], out: str | Path,
                   settings: Settings | None = None,
                   progress: ProgressFn = no_progress) -> Exported:
    """Embed the images named by ``sources`` as ``tsnegrid build`` would (same settings, same
    embedding cache) and write ``out`` (.npy) and its paths file."""
    out = Path(out)
    if out.suffix != ".npy":
        raise InputError(f"--out {out}: the vectors file must end in .npy")
    check_out_file(out)
    s = settings or Settings()
    found = discover(sources)
    if not found.paths:
        raise NoImagesError("no image files found in " + ", ".join(map(str, sources)))
    paths = list(found.paths)
    for p in paths:  # refuse before the (long) embedding
        _listable(str(p))
    emb = embed_files(paths, EmbedConfig.from_settings(s), progress)
    if not len(emb.kept):
        raise NoImagesError("none of the images could be read; see the skipped files:\n"
                            + "\n".join(f"  {k.path}: {k.reason}" for k in emb.skipped))
    done = write_vectors(emb, paths, out)
    return replace(done, skipped=tuple(found.skipped) + emb.skipped)
