"""Ward clustering restricted to a neighbour graph, and the graph's connected parts.

The merge order of scikit-learn's ``ward_tree`` with a connectivity matrix (Ward 1963; the
variance increase (n_a n_b / (n_a + n_b)) |mean_a - mean_b|^2 of joining two touching
clusters, smallest first, ties by cluster number), stopped at k clusters, so the regions are
the same partition as ``AgglomerativeClustering(linkage="ward", connectivity=...)`` gives
(``tests/test_regions.py``). Written here because importing scikit-learn (scipy.stats among
it) cost 1.3-1.8 s, six times the whole clustering of the 1,024-image demo; like
scikit-learn's, the merge loop is Python over a heap.
"""

from __future__ import annotations

import heapq

import numpy as np
from numpy.typing import NDArray

Graph = list[list[int]]


def graph_lists(src: NDArray[np.int64], dst: NDArray[np.int64], n: int) -> Graph:
    """Undirected neighbour lists, ascending, from edges ``src[e] - dst[e]``."""
    a = np.concatenate([src, dst])
    b = np.concatenate([dst, src])
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] & (a != b)
    a, b = a[keep], b[keep]
    bounds = np.searchsorted(a, np.arange(n + 1))
    flat = b.tolist()
    return [flat[bounds[i]:bounds[i + 1]] for i in range(n)]


def connected_parts(graph: Graph) -> NDArray[np.int64]:
    """Each node's part number (parts numbered by their lowest node)."""
    part = np.full(len(graph), -1, dtype=np.int64)
    labels = part.tolist()
    count = 0
    for start in range(len(graph)):
        if labels[start] >= 0:
            continue
        labels[start] = count
        stack = [start]
        while stack:
            node = stack.pop()
            for other in graph[node]:
                if labels[other] < 0:
                    labels[other] = count
                    stack.append(other)
        count += 1
    return np.asarray(labels, dtype=np.int64)


def ward(x: NDArray[np.floating], graph: Graph, k: int) -> NDArray[np.int64]:
    """Labels of ``x``'s rows in ``k`` clusters, each connected in ``graph`` (which must be
    connected, or have at most k parts), numbered by their lowest row."""
    return ward_levels(x, graph, (k,))[0]


def _cut(parent: list[int], n: int, total: int) -> NDArray[np.int64]:
    """Each row's cluster under the merges so far, numbered by their lowest row."""
    heads = np.arange(n)
    for i in range(n):
        h = i
        while parent[h] != h:
            h = parent[h]
        heads[i] = h
    _, first = np.unique(heads, return_index=True)
    rank = np.empty(total, dtype=np.int64)
    rank[heads[np.sort(first)]] = np.arange(len(first))
    return rank[heads]


def ward_levels(x: NDArray[np.floating], graph: Graph,
                ks: tuple[int, ...]) -> list[NDArray[np.int64]]:
    """``ward`` cut at each of ``ks`` clusters from one merge tree, so a cut with fewer
    clusters is a union of the clusters of each cut with more (nested levels)."""
    n = len(x)
    wanted = [max(1, min(k, n)) for k in ks]
    k = min(wanted)
    cuts: dict[int, NDArray[np.int64]] = {}
    total = 2 * n - k
    means = np.zeros((total, x.shape[1]), dtype=np.float64)
    means[:n] = x
    counts = np.zeros(total, dtype=np.float64)
    counts[:n] = 1.0
    parent = list(range(total))
    alive = [True] * total
    neighbours: Graph = [list(row) for row in graph]

    def cost(a: NDArray[np.int64] | int, b: NDArray[np.int64]) -> list[float]:
        gap = means[a] - means[b]
        return ((counts[a] * counts[b] / (counts[a] + counts[b]))
                * np.einsum("ij,ij->i", gap, gap)).tolist()

    row = np.repeat(np.arange(n, dtype=np.int64), [len(r) for r in graph])
    col = np.array([j for r in graph for j in r], dtype=np.int64)
    lower = col < row
    row, col = row[lower], col[lower]
    heap = list(zip(cost(row, col), row.tolist(), col.tolist(), strict=True))
    heapq.heapify(heap)
    for node in range(n, total):
        if total - node + k in wanted and total - node + k not in cuts:  # clusters now
            cuts[total - node + k] = _cut(parent, n, total)
        while heap:
            _, i, j = heapq.heappop(heap)
            if alive[i] and alive[j]:
                break
        else:  # fewer merges possible than asked: the graph has more than k parts
            break
        parent[i] = parent[j] = node
        alive[i] = alive[j] = False
        counts[node] = counts[i] + counts[j]
        means[node] = (counts[i] * means[i] + counts[j] * means[j]) / counts[node]
        seen = {node}
        joined: list[int] = []
        for other in neighbours[i] + neighbours[j]:
            while parent[other] != other:
                other = parent[other]
            if other not in seen:
                seen.add(other)
                joined.append(other)
        for other in joined:
            neighbours[other].append(node)
        neighbours.append(joined)
        if joined:
            for c, other in zip(cost(node, np.array(joined, dtype=np.int64)), joined,
                                strict=True):
                heapq.heappush(heap, (c, node, other))
    last = _cut(parent, n, total)  # k clusters, or more where the graph has more parts
    return [cuts.get(w, last) for w in wanted]
