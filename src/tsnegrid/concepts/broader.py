"""Broader names for the ImageNet-1k classes, from WordNet's hypernyms
(``tsnegrid.concepts.wordnet``): "retriever", "dog", "mammal" for a golden retriever, so that a
search for "dog" finds all 118 breeds. Abstract synsets ("object", "artifact") are left out.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def broader_names() -> tuple[tuple[str, ...], ...]:
    """For each of the 1,000 classes, the names of the synsets above it, narrowest first
    (deepest; ties by name), abstract ones left out."""
    from tsnegrid.concepts.wordnet import hierarchy

    h = hierarchy()
    out = []
    for k in range(len(h.classes)):
        above = [int(s) for s in h.ancestors(k) if s != h.classes[k] and not h.abstract[s]]
        out.append(tuple(h.display[s] for s in sorted(above, key=lambda s: (-h.depth[s],
                                                                            h.display[s]))))
    return tuple(out)
