"""Named regions: the grid cut into contiguous areas of like content, each named by its
dominant concept (or a broader name covering most of it), like place names on a map.

A stage of its own between arrange and render: it needs the placed cells and the concepts, and
its output is data (``layout.json``'s ``regions``) that the viewer and the mosaic draw. The cut
is Ward clustering restricted to grid neighbours, so every region is a 4-connected set of cells,
of the images' vectors (their first ``PCS`` principal components) plus a little of their cell
position, which keeps regions compact; without vectors, of their concept profiles (class
probabilities and broader-name masses). Measured (benchmarks/RESULTS.md, "Named regions"), the
vectors give purer regions than the profiles, and merging touching regions of the same name
made them less pure, so regions are not merged (the viewer and the mosaic write a repeated name
once where the copies are close).
``find_regions`` is the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.concepts import Concepts
from tsnegrid.errors import InputError
from tsnegrid.regions.naming import COVER, choose_name
from tsnegrid.regions.ward import Graph, connected_parts, graph_lists, ward
from tsnegrid.settings import Settings

__all__ = ["Region", "Regions", "RegionsConfig", "find_regions"]

GROUP_WEIGHT = 0.5
"""Weight of the broader-name masses beside the class probabilities in a concept profile."""
PCS = 32
"""Principal components of the vectors that the clustering sees."""
_PLACEMENT_ROWS = 512  # region cells per block of the distance computation
SPATIAL = 0.3
"""Weight of the cell position (in units of a region's side) beside the content features,
which have unit mean square norm."""


@dataclass(frozen=True)
class RegionsConfig:
    """Mean images per region before same-named neighbours merge, and the share a name needs."""

    size: int = Settings.region_size
    cover: float = COVER

    def __post_init__(self) -> None:
        if self.size < 1:
            raise InputError(f"region_size must be a positive number of images, got {self.size}")

    @classmethod
    def from_settings(cls, s: Settings) -> RegionsConfig:
        return cls(size=s.region_size)


@dataclass(frozen=True)
class Region:
    """One named region: its images' count, the name's share of them, where to write the name
    (``anchor``: the cell farthest inside, ``radius`` cells from the region's edge) and its
    bounding box of cells (inclusive)."""

    name: str
    size: int
    share: float
    broader: bool
    anchor: tuple[int, int]
    radius: float
    bbox: tuple[int, int, int, int]

    def to_dict(self, index: int) -> dict[str, Any]:
        return {"id": index, "name": self.name, "size": self.size,
                "share": round(self.share, 4), "broader": self.broader,
                "anchor": list(self.anchor), "radius": round(self.radius, 2),
                "bbox": list(self.bbox)}


@dataclass(frozen=True, eq=False)
class Regions:
    """``labels[i]``: the region of image i (an index into ``regions``, largest first)."""

    labels: NDArray[np.int32]
    regions: tuple[Region, ...]


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
    """Per image: its top class probabilities over the classes in use, then the probability
    mass of each broader name."""
    from tsnegrid.regions.naming import _group_table

    ids, values = concepts.ids.astype(np.int64), concepts.values
    used, inverse = np.unique(ids, return_inverse=True)
    n = len(ids)
    classes = np.zeros((n, len(used)), dtype=np.float32)
    np.add.at(classes, (np.repeat(np.arange(n), ids.shape[1]), inverse.reshape(-1)),
              values.reshape(-1))
    _, member, _ = _group_table()
    groups = classes @ member[:, used].T.astype(np.float32)
    return np.hstack([classes, GROUP_WEIGHT * groups])


def _cluster(x: NDArray[np.float32], graph: Graph, size: int) -> NDArray[np.int64]:
    """Ward clusters of about ``size`` images, each connected in ``graph``, per connected part
    of the grid (holes can cut it)."""
    part = connected_parts(graph)
    local = np.empty(len(x), dtype=np.int64)
    labels = np.zeros(len(x), dtype=np.int64)
    next_label = 0
    for p in range(int(part.max()) + 1 if len(part) else 0):
        members = np.flatnonzero(part == p)
        k = max(1, round(len(members) / size))
        if k == 1 or len(members) < 3:
            labels[members] = next_label
            next_label += 1
            continue
        local[members] = np.arange(len(members))
        sub = [local[graph[m]].tolist() for m in members.tolist()]
        labels[members] = next_label + ward(x[members], sub, k)
        next_label += k
    return labels


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


def _features(cells: NDArray[np.int64], cols: int, concepts: Concepts,
              vectors: NDArray[np.floating] | None, size: int) -> NDArray[np.float32]:
    """What the clustering compares: content (vector components or concept profiles) at unit
    mean square norm, then the cell position scaled to a region's side times ``SPATIAL``."""
    if vectors is not None and vectors.shape[1] > PCS and len(vectors) > PCS:
        from tsnegrid.reduce.pca import pca

        content = pca(np.asarray(vectors, dtype=np.float32), PCS, seed=0)
    elif vectors is not None:
        content = np.asarray(vectors, dtype=np.float64) - np.mean(vectors, axis=0)
    else:
        content = _profiles(concepts).astype(np.float64)
    content = content / max(float(np.sqrt((content ** 2).sum(axis=1).mean())), 1e-12)
    r, c = np.divmod(cells, cols)
    where = np.stack([r, c], axis=1) / np.sqrt(size)
    return np.hstack([content, SPATIAL * where]).astype(np.float32)


def find_regions(cells: NDArray[np.int64], rows: int, cols: int, concepts: Concepts,
                 config: RegionsConfig | None = None,
                 vectors: NDArray[np.floating] | None = None) -> Regions:
    """Cut the grid into contiguous named regions (``cells[i]`` is image i's cell; ``vectors``
    the images' embedding, row for row, or None to cut by the concepts alone)."""
    from tsnegrid.concepts.names import class_names

    config = config or RegionsConfig()
    cells = np.asarray(cells, dtype=np.int64)
    if len(cells) != len(concepts) or (vectors is not None and len(vectors) != len(cells)):
        raise InputError(f"regions: {len(cells)} cells for {len(concepts)} images' concepts"
                         + ("" if vectors is None else f" and {len(vectors)} vectors"))
    if not len(cells):
        return Regions(np.zeros(0, np.int32), ())
    names_table = class_names()
    graph = _adjacency(cells, rows, cols)
    labels = _cluster(_features(cells, cols, concepts, vectors, config.size), graph, config.size)
    names = [choose_name(concepts.ids[labels == k], names_table, config.cover,
                         concepts.values[labels == k]) for k in range(int(labels.max()) + 1)]
    sizes = np.bincount(labels)
    order = np.lexsort((np.arange(len(sizes)), -sizes))  # largest first
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    regions = []
    for k in order:
        anchor, radius, bbox = _placement(cells[labels == k], cols)
        n = names[k]
        regions.append(Region(n.text, int(sizes[k]), n.share, n.broader, anchor, radius, bbox))
    return Regions(rank[labels].astype(np.int32), tuple(regions))
