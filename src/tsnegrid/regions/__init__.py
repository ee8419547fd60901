"""Named regions: the grid cut into contiguous areas of like content, at two nested levels
(coarse regions of a few hundred images, fine ones of about ``size``), each named like a place
on a map: by the user's own words when they tell regions apart (a metadata field, folders, file
names), else by WordNet's most specific synset that carries enough of the region's concept
probability, and not at all when the evidence is weak (``tsnegrid.regions.naming``).

A stage of its own between arrange and render: it needs the placed cells and the concepts, and
its output is data (``layout.json``'s ``regions``) that the viewer and the mosaic draw. The cut
is Ward clustering restricted to grid neighbours, so every region is a 4-connected set of cells,
of the images' vectors (their first ``PCS`` principal components) plus a little of their cell
position, which keeps regions compact; without vectors, of their concept profiles (class
probabilities and broader-name masses). Measured (benchmarks/RESULTS.md, "Named regions"), the
vectors give purer regions than the profiles, and merging touching regions of the same name
made them less pure, so regions are not merged (the viewer and the mosaic write a repeated name
once where the copies are close). When the user's labels name the regions, the cut sees them
too (``LABEL_WEIGHT``), so borders follow them where the grid allows. The coarse level is the
same Ward merge tree cut at fewer clusters (``COARSE`` x the square root of the fine count),
so each fine region lies in one coarse region.
``find_regions`` is the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.concepts import Concepts
from tsnegrid.errors import InputError
from tsnegrid.regions.naming import Name, Naming, Words, choose_names, name_regions, naming_for
from tsnegrid.regions.ward import Graph, connected_parts, graph_lists, ward_levels
from tsnegrid.settings import Settings

__all__ = ["Naming", "Region", "Regions", "RegionsConfig", "Words", "find_regions",
           "naming_for"]

COARSE = 1.5
"""Coarse regions: this times the square root of the number of fine ones (1,024 images: 7
coarse over 21 fine; 100,000: 68 over 2,083)."""
LABEL_WEIGHT = 3.0
"""Weight of the user's own labels (a metadata field, folders), one-hot, beside the content
features when they name the regions: the cut then follows the user's categories where the
grid allows (emoji by category: fine regions 0.68 -> 0.84 pure, named coverage 0.65 -> 0.90;
benchmarks/RESULTS.md, "Region names")."""
GROUP_WEIGHT = 0.5
"""Weight of the WordNet synsets' masses beside the class probabilities in a concept
profile."""
PCS = 32
"""Principal components of the vectors that the clustering sees."""
_PLACEMENT_ROWS = 512  # region cells per block of the distance computation
REPRESENTATIVES = 4
"""Medoids kept per region (``Region.representatives``)."""
SPATIAL = 0.3
"""Weight of the cell position (in units of a region's side) beside the content features,
which have unit mean square norm."""


@dataclass(frozen=True)
class RegionsConfig:
    """Mean images per fine region."""

    size: int = Settings.region_size

    def __post_init__(self) -> None:
        if self.size < 1:
            raise InputError(f"region_size must be a positive number of images, got {self.size}")

    @classmethod
    def from_settings(cls, s: Settings) -> RegionsConfig:
        return cls(size=s.region_size)


@dataclass(frozen=True)
class Region:
    """One region: its name (None when the evidence is weak) with its source, score and best
    candidate (and, for folders, the full path), its images' count, where to write the name
    (``anchor``: the cell farthest inside, ``radius`` cells from the region's edge), its
    bounding box of cells (inclusive), its level and, for a fine region, its coarse one."""

    name: str | None
    size: int
    score: float
    source: str
    candidate: str | None
    detail: str | None
    anchor: tuple[int, int]
    radius: float
    bbox: tuple[int, int, int, int]
    level: str = "fine"
    parent: int | None = None
    representatives: tuple[int, ...] = ()
    """Its images nearest the region's mean in the clustering's content features (medoids),
    nearest first, at most ``REPRESENTATIVES``: what the viewer's overview shows for it."""

    def to_dict(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": index, "level": self.level, "name": self.name, "source": self.source,
            "score": round(self.score, 4), "candidate": self.candidate, "size": self.size,
            "anchor": list(self.anchor), "radius": round(self.radius, 2),
            "bbox": list(self.bbox)}
        if self.detail is not None:
            out["path"] = self.detail
        if self.parent is not None:
            out["parent"] = self.parent
        if self.representatives:
            out["representatives"] = list(self.representatives)
        return out


@dataclass(frozen=True, eq=False)
class Regions:
    """``labels[i]``: the fine region of image i (an index into ``regions``, largest first);
    ``coarse_labels[i]`` its coarse region (into ``coarse``)."""

    labels: NDArray[np.int32]
    regions: tuple[Region, ...]
    coarse_labels: NDArray[np.int32] | None = None
    coarse: tuple[Region, ...] = ()


def _adjacency(cells: NDArray[np.int64], rows: int, cols: int) -> Graph:
    """The 4-neighbour graph of the occupied cells, as neighbour lists over images."""
    at = np.full(rows * cols, -1, dtype=np.int64)
    at[cells] = np.arange(len(cells))
    r, c = np.divmod(cells, cols)
    src, dst = [], []
    for dr, dc in ((0, 1), (1, 0)):
        ok = (r + dr < rows) & (c + dc < cols)
        other = np.where(ok, at[np.minimum((r + dr) * cols + c + dc, rows * cols - 1)], -1)
        keep = ok & (other >= 0)
        src.append(np.flatnonzero(keep))
        dst.append(other[keep])
    return graph_lists(np.concatenate(src), np.concatenate(dst), len(cells))


def _profiles(concepts: Concepts) -> NDArray[np.float32]:
    """Per image: its top class probabilities over the classes in use, then its probability
    mass on each WordNet synset above them that is not abstract."""
    from tsnegrid.concepts.wordnet import hierarchy

    ids, values = concepts.ids.astype(np.int64), concepts.values
    used, inverse = np.unique(ids, return_inverse=True)
    n = len(ids)
    classes = np.zeros((n, len(used)), dtype=np.float32)
    np.add.at(classes, (np.repeat(np.arange(n), ids.shape[1]), inverse.reshape(-1)),
              values.reshape(-1))
    h = hierarchy()
    member = h.member[~h.abstract][:, used]
    member = member[member.any(axis=1)]
    groups = classes @ member.T.astype(np.float32)
    return np.hstack([classes, GROUP_WEIGHT * groups])


def _cluster(x: NDArray[np.float32], graph: Graph, size: int,
             coarse_size: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Ward clusters of about ``size`` images (fine) and of about ``coarse_size`` (coarse,
    unions of fine ones), each connected in ``graph``, per connected part of the grid (holes
    can cut it)."""
    part = connected_parts(graph)
    local = np.empty(len(x), dtype=np.int64)
    fine = np.zeros(len(x), dtype=np.int64)
    coarse = np.zeros(len(x), dtype=np.int64)
    next_fine = next_coarse = 0
    for p in range(int(part.max()) + 1 if len(part) else 0):
        members = np.flatnonzero(part == p)
        k = max(1, round(len(members) / size))
        kc = max(1, min(k, round(len(members) / coarse_size)))
        if k == 1 or len(members) < 3:
            fine[members], coarse[members] = next_fine, next_coarse
            next_fine, next_coarse = next_fine + 1, next_coarse + 1
            continue
        local[members] = np.arange(len(members))
        sub = [local[graph[m]].tolist() for m in members.tolist()]
        f, c = ward_levels(x[members], sub, (k, kc))
        fine[members], coarse[members] = next_fine + f, next_coarse + c
        next_fine += int(f.max()) + 1
        next_coarse += int(c.max()) + 1
    return fine, coarse


def _placement(cells: NDArray[np.int64], cols: int) -> tuple[tuple[int, int], float,
                                                             tuple[int, int, int, int]]:
    """The cell farthest from the region's edge, that distance, and the bounding box.

    The distance is Euclidean, from the cell to the nearest cell outside the region (its
    bounding box framed by one ring of outside cells): what ``scipy.ndimage``'s exact
    distance transform gives, computed directly over the few cells of a region."""
    r, c = np.divmod(cells, cols)
    r0, r1, c0, c1 = int(r.min()), int(r.max()), int(c.min()), int(c.max())
    mask = np.zeros((r1 - r0 + 3, c1 - c0 + 3), dtype=bool)  # a frame of outside cells
    mask[r - r0 + 1, c - c0 + 1] = True
    inside = np.flatnonzero(mask)
    outside = np.stack(np.divmod(np.flatnonzero(~mask), mask.shape[1]), axis=1)
    best, best_d2 = 0, -1.0
    for start in range(0, len(inside), _PLACEMENT_ROWS):
        block = inside[start:start + _PLACEMENT_ROWS]
        at = np.stack(np.divmod(block, mask.shape[1]), axis=1)
        d2 = ((at[:, None, :] - outside[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        i = int(np.argmax(d2))
        if d2[i] > best_d2:  # the first farthest cell in row-major order, as argmax
            best, best_d2 = int(block[i]), float(d2[i])
    ar, ac = divmod(best, mask.shape[1])
    return (ar + r0 - 1, ac + c0 - 1), float(np.sqrt(best_d2)), (r0, c0, r1, c1)


def _features(cells: NDArray[np.int64], cols: int, concepts: Concepts | None,
              vectors: NDArray[np.floating] | None, size: int) -> NDArray[np.float32]:
    """What the clustering compares: content (vector components or concept profiles) at unit
    mean square norm, then the cell position scaled to a region's side times ``SPATIAL``."""
    if vectors is not None and vectors.shape[1] > PCS and len(vectors) > PCS:
        from tsnegrid.reduce.pca import pca

        content = pca(np.asarray(vectors, dtype=np.float32), PCS, seed=0)
    elif vectors is not None:
        content = np.asarray(vectors, dtype=np.float64) - np.mean(vectors, axis=0)
    else:
        assert concepts is not None
        content = _profiles(concepts).astype(np.float64)
    content = content / max(float(np.sqrt((content ** 2).sum(axis=1).mean())), 1e-12)
    r, c = np.divmod(cells, cols)
    where = np.stack([r, c], axis=1) / np.sqrt(size)
    return np.hstack([content, SPATIAL * where]).astype(np.float32)


def _one_hot(labels: tuple[str | None, ...], hierarchical: bool,
             most: int = 256) -> NDArray[np.float32]:
    """The user's labels as indicator columns (the ``most`` commonest; others and none: 0).
    Folder paths set a column for each of their folders (``a``, ``a/b``), so two images of
    one parent folder are closer than two of different ones."""
    from collections import Counter

    def parts(label: str | None) -> list[str]:
        if label is None:
            return []
        if not hierarchical:
            return [label]
        steps = label.split("/")
        return ["/".join(steps[:i]) for i in range(1, len(steps) + 1)]

    expanded = [parts(x) for x in labels]
    keep = [p for p, _ in Counter(p for ps in expanded for p in ps).most_common(most)]
    column = {p: j for j, p in enumerate(keep)}
    out = np.zeros((len(labels), max(len(keep), 1)), dtype=np.float32)
    for i, ps in enumerate(expanded):
        for p in ps:
            if p in column:
                out[i, column[p]] = 1.0
    return out


def _ranked(labels: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Regions renumbered largest first (ties by number): the new labels and the old order."""
    sizes = np.bincount(labels)
    order = np.lexsort((np.arange(len(sizes)), -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[labels], order


def medoids(content: NDArray[np.floating], labels: NDArray[np.int64],
            most: int = REPRESENTATIVES) -> list[list[int]]:
    """Per label, the indices of its rows nearest the label's mean row (at most ``most``,
    nearest first, ties by index)."""
    k = int(labels.max()) + 1 if len(labels) else 0
    x = np.asarray(content, dtype=np.float64)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    means = np.zeros((k, x.shape[1]))
    np.add.at(means, labels, x)
    means /= np.maximum(counts, 1)[:, None]
    d = ((x - means[labels]) ** 2).sum(axis=1)
    order = np.lexsort((np.arange(len(x)), d, labels))
    starts = np.searchsorted(labels[order], np.arange(k + 1))
    return [order[starts[j]:min(starts[j] + most, starts[j + 1])].tolist() for j in range(k)]


def _regions(cells: NDArray[np.int64], cols: int, labels: NDArray[np.int64],
             names: list[Name], level: str, content: NDArray[np.floating],
             parents: NDArray[np.int64] | None = None) -> tuple[Region, ...]:
    out = []
    reps = medoids(content, labels)
    for k in range(int(labels.max()) + 1):
        anchor, radius, bbox = _placement(cells[labels == k], cols)
        n = names[k]
        out.append(Region(n.text, int((labels == k).sum()), n.score, n.source, n.candidate,
                          n.detail, anchor, radius, bbox, level,
                          None if parents is None else int(parents[k]), tuple(reps[k])))
    return tuple(out)


def find_regions(cells: NDArray[np.int64], rows: int, cols: int, concepts: Concepts | None,
                 config: RegionsConfig | None = None,
                 vectors: NDArray[np.floating] | None = None,
                 naming: Naming | None = None) -> Regions:
    """Cut the grid into contiguous named regions at two levels (``cells[i]`` is image i's
    cell; ``vectors`` the images' embedding, row for row, or None to cut by the concepts
    alone; ``naming`` where the names come from: by default the concepts)."""
    config = config or RegionsConfig()
    cells = np.asarray(cells, dtype=np.int64)
    n_concepts = len(concepts) if concepts is not None else len(cells)
    if len(cells) != n_concepts or (vectors is not None and len(vectors) != len(cells)):
        raise InputError(f"regions: {len(cells)} cells for {n_concepts} images' concepts"
                         + ("" if vectors is None else f" and {len(vectors)} vectors"))
    if concepts is None and vectors is None:
        raise InputError("regions: need the images' vectors or their concepts")
    if not len(cells):
        return Regions(np.zeros(0, np.int32), (), np.zeros(0, np.int32), ())
    graph = _adjacency(cells, rows, cols)
    k_fine = max(1, round(len(cells) / config.size))
    coarse_size = len(cells) / max(1.0, round(COARSE * np.sqrt(k_fine)))
    x = _features(cells, cols, concepts, vectors, config.size)

    def cut(features: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        fine, coarse = _cluster(features, graph, config.size, coarse_size)
        return _ranked(fine)[0], _ranked(coarse)[0]

    fine, coarse = cut(x)
    ids = concepts.ids if concepts is not None else None
    values = concepts.values if concepts is not None else None
    naming = naming or Naming()
    fine_names, used = choose_names(fine, int(fine.max()) + 1, naming, ids, values)
    if used is not None and used.labels is not None:  # the user's own labels: cut along them
        fine, coarse = cut(np.hstack([x, LABEL_WEIGHT * _one_hot(
            used.labels, hierarchical=used.source == "folders")]))
        fine_names = name_regions(fine, int(fine.max()) + 1, used, ids, values)
    coarse_names = name_regions(coarse, int(coarse.max()) + 1, used, ids, values)
    if used is None and not naming.concepts:
        coarse_names = [Name(None, 0.0, "none", None) for _ in coarse_names]
    parent_of = np.zeros(int(fine.max()) + 1, dtype=np.int64)
    parent_of[fine] = coarse
    content = x[:, :-2]  # without the cell position
    return Regions(fine.astype(np.int32),
                   _regions(cells, cols, fine, fine_names, "fine", content, parent_of),
                   coarse.astype(np.int32), _regions(cells, cols, coarse, coarse_names,
                                                     "coarse", content))
