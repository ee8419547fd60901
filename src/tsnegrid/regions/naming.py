"""A region's name, from the user's own words when they tell regions apart, else from the
concepts on WordNet's hierarchy, and no name when the evidence is weak.

Sources (``NAME_SOURCES``), each giving per region a name or silence, a score and the best
candidate:

- a metadata field (``--names FIELD``): the value most of the region has, named when it is at
  least ``MAJORITY`` of the region's images;
- ``folders``: the images' folders under their common root; a region is named by the most
  specific folder (path prefix) holding at least ``MAJORITY`` of its images;
- ``files``: words of the file names (split on non-letters; numbers, one-letter words and
  camera prefixes such as IMG or DSC dropped); a word names a region when at least
  ``MAJORITY`` of its images have it and it is at least ``LIFT`` times as frequent there as in
  the whole set;
- ``concepts``: each image's top class probabilities summed up WordNet's hypernyms
  (``tsnegrid.concepts.wordnet``); the region's mass of a synset is the mean over its images
  of the probability of the classes at or below it. The name is the most specific synset
  (deepest) that holds at least ``MAJORITY`` of the region's concept mass and whose mass
  reaches ``MASS`` (``MASS_ALONE`` when one class holds most of it), never an abstract one
  ("object", "artifact"); none qualifying, the region has no name.

``auto`` takes the first of folders, files that is *informative* for the set (its names cover
at least ``INFORMATIVE`` of the images), else concepts. ``MASS`` is calibrated on labelled sets
(benchmarks/regions.py, RESULTS.md "Region names"): the lowest value at which named regions
were right on every set.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError

MAJORITY = 0.5
"""Share of a region's images a user's word (value, folder, file word) must cover."""
LIFT = 3.0
"""How many times more frequent in the region than in the set a file-name word must be."""
MASS = 0.3
"""Mean probability mass a concept synset needs over a region to name it, when several classes
under it share that mass."""
DOMINANT = 0.5
"""Largest share of a synset's mass one class may hold for ``MASS`` to suffice: agreement of
several classes on a synset corroborates it; one class alone is the classifier's typical
confident mistake on images unlike ImageNet's ("plectrum" over yellow smileys)."""
MASS_ALONE = 0.9
"""Mass a synset needs when one class holds most of it."""
INFORMATIVE = 0.25
"""Share of the images that a source's names must cover for ``auto`` to take it (160 demo
emoji filed by category: 0.38 at region size 16; camera file names: 0)."""
NAME_SOURCES = ("auto", "concepts", "folders", "files", "none")
"""``--names`` choices besides a metadata field's name."""
CAMERA = frozenset({"img", "dsc", "dscn", "dscf", "dcim", "pxl", "mvimg", "vid", "gopr", "gp",
                    "sam", "imgp", "pict", "pic", "photo", "image", "screenshot", "scan",
                    "jpg", "jpeg", "png", "webp", "gif", "tif", "tiff", "bmp", "heic", "copy",
                    "edited", "final", "small", "large", "thumb", "ios", "android", "whatsapp"})
"""Words of file names that say how a file was made or saved, not what it shows."""


@dataclass(frozen=True)
class Name:
    """A region's name (None: not sure enough), its score (the share of the region that has
    it, or the concept mass), its source, the best candidate (the name when named) and, for
    folders, the full path under the root."""

    text: str | None
    score: float
    source: str
    candidate: str | None
    detail: str | None = None


@dataclass(frozen=True, eq=False)
class Words:
    """The user's words for a set of images, row for row: one label per image (a metadata
    value or a folder path; None for none) or a set of words per image (file names)."""

    source: str
    labels: tuple[str | None, ...] | None = None
    words: tuple[frozenset[str], ...] | None = None


def _check(source: str) -> None:
    if not source:
        raise InputError("names: give auto, concepts, folders, files, none or a metadata "
                         "field's name")


def check_choice(choice: str, fields: Sequence[str] | None) -> None:
    """A names choice against the metadata's ``fields`` (None: no metadata), before any work:
    a field's name must be one of them."""
    _check(choice)
    if choice in NAME_SOURCES:
        return
    if fields is None:
        raise InputError(f"names {choice!r}: names from a metadata field need metadata (the "
                         f"CLI's --metadata FILE), or one of {', '.join(NAME_SOURCES)}")
    if choice not in fields:
        raise InputError(f"names {choice!r}: the metadata has no field {choice!r}; its fields: "
                         f"{', '.join(fields) or 'none'}")


def folder_words(paths: Sequence[str | PurePath]) -> Words | None:
    """The images' folders under their common root ("town/roadsigns"), or None when all are
    in one folder."""
    parents = [PurePath(p).parent for p in paths]
    if len(set(parents)) < 2:
        return None
    parts = [p.parts for p in parents]
    common = 0
    while all(len(p) > common and p[common] == parts[0][common] for p in parts):
        common += 1
    return Words("folders", labels=tuple("/".join(p[common:]) or None for p in parts))


def _split(stem: str) -> frozenset[str]:
    return frozenset(w for w in re.split(r"[^a-z]+", stem.lower())
                     if len(w) > 1 and w not in CAMERA)


def file_words(paths: Sequence[str | PurePath]) -> Words:
    """The words of each file's name (without its extension)."""
    return Words("files", words=tuple(_split(PurePath(p).stem) for p in paths))


def metadata_words(field: str, values: Sequence[object]) -> Words:
    """One metadata field's values as labels (empty and missing values: none)."""
    _check(field)
    return Words(field, labels=tuple(None if v is None or str(v).strip() == "" else
                                     str(v).strip() for v in values))


def _label_name(labels: Sequence[str | None], source: str, hierarchical: bool) -> Name:
    """The label (or, for folder paths, the deepest path prefix) most of ``labels`` have."""
    n = max(len(labels), 1)
    counts: Counter[str] = Counter()
    for label in labels:
        if label is None:
            continue
        if hierarchical:
            parts = label.split("/")
            counts.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        else:
            counts[label] += 1
    if not counts:
        return Name(None, 0.0, source, None)
    depth = (lambda s: s.count("/")) if hierarchical else (lambda s: 0)
    ok = [s for s, c in counts.items() if c / n >= MAJORITY]
    best = max(ok or counts, key=lambda s: (depth(s) if ok else 0, counts[s], s))
    short = best.rsplit("/", 1)[-1] if hierarchical else best
    return Name(short if ok else None, counts[best] / n, source, short,
                best if hierarchical else None)


def _word_name(words: Sequence[frozenset[str]], overall: Counter[str], n_all: int,
               source: str) -> Name:
    n = max(len(words), 1)
    counts: Counter[str] = Counter(w for ws in words for w in ws)
    if not counts:
        return Name(None, 0.0, source, None)

    def lift(w: str) -> float:
        return (counts[w] / n) / max(overall[w] / max(n_all, 1), 1e-12)

    ok = [w for w in counts if counts[w] / n >= MAJORITY and lift(w) >= LIFT]
    best = max(ok or counts, key=lambda w: (counts[w], lift(w), w))
    return Name(best if ok else None, counts[best] / n, source, best)


def concept_name(ids: NDArray[np.integer], values: NDArray[np.floating]) -> Name:
    """A region's concept name from its images' top class ids and probabilities (N x k)."""
    from tsnegrid.concepts.wordnet import hierarchy

    h = hierarchy()
    n = max(len(ids), 1)
    flat, vals = ids.reshape(-1), values.reshape(-1).astype(np.float64)
    ok = flat >= 0
    per_class = np.bincount(flat[ok], weights=vals[ok], minlength=h.member.shape[1]) / n
    used = np.flatnonzero(per_class)  # the few classes the region's top concepts name
    member = h.member[:, used].astype(np.float64)
    mass = member @ per_class[used]
    mass[h.abstract] = 0.0
    if not mass.any():
        return Name(None, 0.0, "concepts", None)
    top = (member * per_class[None, used]).max(axis=1) / np.maximum(mass, 1e-12)
    names = h.display
    strong = ((mass >= MASS) & (top <= DOMINANT)) | (mass >= MASS_ALONE)
    enough = np.flatnonzero(strong & (mass >= MAJORITY * per_class[used].sum()))
    if len(enough):
        s = int(enough[np.lexsort((-mass[enough], -h.depth[enough]))[0]])
        return Name(names[s], float(mass[s]), "concepts", names[s])
    best = np.flatnonzero(mass >= mass.max() - 1e-12)
    s = int(best[np.argmax(h.depth[best])])
    return Name(None, float(mass[s]), "concepts", names[s])


def name_regions(labels: NDArray[np.integer], k: int, words: Words | None,
                 concepts_ids: NDArray[np.integer] | None,
                 concepts_values: NDArray[np.floating] | None) -> list[Name]:
    """The name of each of ``k`` regions (``labels[i]``: image i's region) from ``words``, or
    from the concepts when ``words`` is None (no name at all without concepts)."""
    members = [np.flatnonzero(labels == r) for r in range(k)]
    if words is not None and words.labels is not None:
        hierarchical = words.source == "folders"
        return [_label_name([words.labels[i] for i in m], words.source, hierarchical)
                for m in members]
    if words is not None and words.words is not None:
        overall = Counter(w for ws in words.words for w in ws)
        return [_word_name([words.words[i] for i in m], overall, len(words.words),
                           words.source) for m in members]
    if concepts_ids is None or concepts_values is None:
        return [Name(None, 0.0, "none", None) for _ in members]
    return [concept_name(concepts_ids[m], concepts_values[m]) for m in members]


@dataclass(frozen=True, eq=False)
class Naming:
    """Where the names come from: the user's word sources in order (``forced``: the first is
    used whatever its coverage; else the first informative one), then the concepts unless
    ``concepts`` is False."""

    words: tuple[Words, ...] = ()
    forced: bool = False
    concepts: bool = True


def naming_for(choice: str, paths: Sequence[str | PurePath],
               metadata: Sequence[Mapping[str, str]] | None = None) -> Naming:
    """The ``--names`` choice (auto, concepts, folders, files, none, or a metadata field) for
    these images (``metadata``: each image's record, when there is a metadata file)."""
    _check(choice)
    if choice == "none":
        return Naming(concepts=False)
    if choice == "concepts":
        return Naming()
    folders = folder_words(paths)
    if choice == "auto":
        return Naming(tuple(w for w in (folders, file_words(paths)) if w is not None))
    if choice == "folders":
        if folders is None:
            raise InputError("--names folders: all the images are in one folder")
        return Naming((folders,), forced=True, concepts=False)
    if choice == "files":
        return Naming((file_words(paths),), forced=True, concepts=False)
    check_choice(choice, None if metadata is None else
                 sorted({f for rec in metadata for f in rec}))
    assert metadata is not None
    return Naming((metadata_words(choice, [rec.get(choice) for rec in metadata]),),
                  forced=True, concepts=False)


def choose_names(labels: NDArray[np.integer], k: int, naming: Naming,
                 concepts_ids: NDArray[np.integer] | None,
                 concepts_values: NDArray[np.floating] | None) -> tuple[list[Name], Words | None]:
    """The names of ``k`` regions by ``naming`` and the word source used (None: concepts)."""
    sizes = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k).tolist()
    for words in naming.words:
        names = name_regions(labels, k, words, None, None)
        if naming.forced or coverage(names, sizes) >= INFORMATIVE:
            return names, words
    if naming.concepts:
        return name_regions(labels, k, None, concepts_ids, concepts_values), None
    return [Name(None, 0.0, "none", None) for _ in range(k)], None


def coverage(names: Sequence[Name], sizes: Sequence[int]) -> float:
    """Share of the images in regions that got a name."""
    total = sum(sizes)
    return sum(s for n, s in zip(names, sizes, strict=True) if n.text) / max(total, 1)
