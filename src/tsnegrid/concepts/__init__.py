"""Concepts: the ImageNet-1k classes an image most likely shows, with their probabilities.

``classify(vectors, model_id)`` applies the model's own classifier head (``head``) to its
vectors, cached or new, so concepts cost one small matrix product and no inference. Only models
that ship a head have concepts (the default ``lite0``); for others it returns None. Classes of
one name count as one concept (``names.MERGED``): their probabilities are summed before the top
ones are taken, so an image lists each name once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.concepts.head import Head, load_head
from tsnegrid.concepts.names import distinct_classes, merge_same_names
from tsnegrid.errors import InputError

__all__ = ["TOP", "Concepts", "Head", "classify", "load_head", "top_concepts"]

TOP = 5
"""Concepts kept per image."""
CHUNK = 8192
"""Rows per matrix product (bounds the N x 1000 probability block)."""


@dataclass(frozen=True, eq=False)
class Concepts:
    """Row i: image i's ``top`` most probable concepts (``ids``, indices into ``class_names()``,
    never of a class folded into another), most probable first, and their probabilities
    (``values``)."""

    ids: NDArray[np.int16]
    values: NDArray[np.float32]
    model_id: str

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: NDArray[np.integer] | NDArray[np.bool_]) -> Concepts:
        """The concepts of some images (an index array or a mask)."""
        return Concepts(self.ids[rows], self.values[rows], self.model_id)

    def records(self, i: int) -> list[dict[str, Any]]:
        """Image i's concepts as Clarifai writes them: ``{id, name, value}``, value desc."""
        from tsnegrid.concepts.names import class_ids, class_names

        names, wnids = class_names(), class_ids()
        return [{"id": wnids[k], "name": names[k], "value": round(float(v), 4)}
                for k, v in zip(self.ids[i].tolist(), self.values[i].tolist(), strict=True)]


def top_k(probs: NDArray[np.float32], k: int) -> tuple[NDArray[np.int16], NDArray[np.float32]]:
    """The k largest probabilities per row and their class indices, largest first."""
    k = min(k, probs.shape[1])
    part = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(probs, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return (np.take_along_axis(part, order, axis=1).astype(np.int16),
            np.take_along_axis(vals, order, axis=1).astype(np.float32))


def top_concepts(probs: NDArray[np.float32],
                 top: int) -> tuple[NDArray[np.int16], NDArray[np.float32]]:
    """The ``top`` most probable concepts of N x 1000 class probabilities: same-named classes
    summed (``merge_same_names``), then the largest, as class indices and probabilities."""
    at, values = top_k(merge_same_names(probs), top)
    return distinct_classes()[at].astype(np.int16), values


def classify(vectors: NDArray[np.floating], model_id: str, top: int = TOP) -> Concepts | None:
    """The ``top`` concepts of each row of ``vectors`` (that model's own, unnormalised vectors);
    None when ``model_id`` ships no classifier head or ``top`` is 0. At most as many as there
    are distinct names (998)."""
    if top < 0:
        raise InputError(f"concepts must be a number of classes >= 0, got {top}")
    head = load_head(model_id) if top else None
    if head is None:
        return None
    n = len(vectors)
    ids = np.zeros((n, min(top, len(distinct_classes()))), dtype=np.int16)
    values = np.zeros(ids.shape, dtype=np.float32)
    for s in range(0, n, CHUNK):
        ids[s:s + CHUNK], values[s:s + CHUNK] = top_concepts(
            head.probabilities(vectors[s:s + CHUNK]), top)
    return Concepts(ids, values, model_id)
