"""A region's name: its dominant concept, or the broader name that covers most of it.

A name's *share* in a set of images is the fraction whose top concepts include it: a class
among the top ones, or for a broader name (``tsnegrid.concepts.broader``) a class of that group.
The name is the most specific one with a share of at least ``COVER`` (a class before any group,
a narrower group before a wider one; ties by share): 60% tabby cats is "tabby cat", a mix of 40
dog breeds where no breed reaches half is "dog". When nothing reaches ``COVER``, the name with
the largest share.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

COVER = 0.5
"""Share a name must reach to be chosen over a broader one."""


@dataclass(frozen=True)
class Name:
    """A chosen name, its share of the images, and whether it is a broader (group) name."""

    text: str
    share: float
    broader: bool


@lru_cache(maxsize=1)
def _group_table() -> tuple[tuple[str, ...], NDArray[np.bool_], NDArray[np.int64]]:
    """Group names, a groups x classes membership matrix and each group's depth."""
    from tsnegrid.concepts.broader import GROUPS, broader_names

    names = tuple(g for g, _, _ in GROUPS)
    member = np.zeros((len(names), 1000), dtype=bool)
    for k, groups in enumerate(broader_names()):
        for g in groups:
            member[names.index(g), k] = True
    parent = {g: p for g, p, _ in GROUPS}
    depth = []
    for g in names:
        d, p = 0, parent[g]
        while p:
            d, p = d + 1, parent[p]
        depth.append(d)
    return names, member, np.asarray(depth, dtype=np.int64)


def shares(ids: NDArray[np.integer]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """For images' top class ids (N x k, -1 for none): each class's share (1000) and each
    group's share (in ``GROUPS`` order)."""
    n = max(len(ids), 1)
    has = np.zeros((len(ids), 1000), dtype=bool)
    rows = np.repeat(np.arange(len(ids)), ids.shape[1] if ids.ndim == 2 else 0)
    flat = ids.reshape(-1)
    ok = flat >= 0
    has[rows[ok], flat[ok]] = True
    class_share = has.sum(axis=0) / n
    _, member, _ = _group_table()
    group_share = (has.astype(np.uint8) @ member.T.astype(np.uint8) > 0).sum(axis=0) / n
    return class_share, group_share


def choose_name(ids: NDArray[np.integer], class_names: tuple[str, ...],
                cover: float = COVER, values: NDArray[np.floating] | None = None) -> Name:
    """The name of a region whose images have these top class ids (N x k); classes of equal
    share are ranked by their summed probability ``values`` (N x k) when given."""
    class_share, group_share = shares(ids)
    names, _, depth = _group_table()
    mass = np.zeros(1000)
    if values is not None:
        given = ids.reshape(-1) >= 0
        np.add.at(mass, ids.reshape(-1)[given], values.reshape(-1)[given])
    best = int(np.lexsort((-mass, -class_share))[0])
    if class_share[best] >= cover:
        return Name(class_names[best], float(class_share[best]), False)
    ok = np.flatnonzero(group_share >= cover)
    if len(ok):  # the deepest covering group; ties by share
        g = int(ok[np.lexsort((-group_share[ok], -depth[ok]))[0]])
        return Name(names[g], float(group_share[g]), True)
    g = int(np.argmax(group_share))
    if group_share[g] > class_share[best]:
        return Name(names[g], float(group_share[g]), True)
    return Name(class_names[best], float(class_share[best]), False)
