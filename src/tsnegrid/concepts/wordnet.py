"""The ImageNet-1k classes on WordNet 3.0's noun hierarchy: each class's hypernyms up to
"entity", with each synset's lemmas, as a small table shipped with the package
(``data/imagenet-wordnet.json``, WordNet's licence beside it in ``data/LICENSE-WordNet.txt``).

ImageNet's class ids are WordNet 3.0 noun offsets (``n02123045`` is offset 02123045, "tabby",
whose hypernym is 02121808 "domestic cat"). The table is derived once from WordNet's own
``data.noun`` (Debian's ``wordnet-base`` ships it as ``/usr/share/wordnet/data.noun``)::

    python -m tsnegrid.concepts.wordnet [/usr/share/wordnet/data.noun]

and ``tests/test_wordnet.py`` derives it again where that file is installed and compares.
``hierarchy()`` reads the shipped table; nothing reads WordNet at run time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DATA_NOUN = Path("/usr/share/wordnet/data.noun")
TABLE = Path(__file__).with_name("data") / "imagenet-wordnet.json"
HYPERNYMS = ("@", "@i")  # WordNet's pointer symbols for a hypernym and an instance hypernym

#: Synsets too general to name a region of images: true of nearly anything on a grid, so a
#: name from them says nothing ("object", "whole", "artifact"). Besides these, every synset
#: within ``ABSTRACT_DEPTH`` of the root is abstract. ``tests/test_wordnet.py`` checks that
#: each is on some class's path, so a typo here cannot silently keep one.
ABSTRACT: frozenset[str] = frozenset({
    "00001740",  # entity
    "00001930",  # physical entity
    "00002684",  # object, physical object
    "00003553",  # whole, unit
    "00004258",  # living thing, animate thing
    "00004475",  # organism, being
    "00007347",  # causal agent, cause, causal agency
    "00019128",  # natural object
    "00019613",  # substance
    "00020090",  # substance (a particular kind of matter)
    "00020827",  # matter
    "00021265",  # food, nutrient (beside 07555863 food, solid food, which is kept)
    "00021939",  # artifact, artefact
    "01466257",  # chordate
    "01661818",  # diapsid, diapsid reptile
    "01886756",  # placental, placental mammal, eutherian, eutherian mammal
    "03076708",  # commodity, trade good, good
    "03093574",  # consumer goods
    "03094503",  # container
    "03100490",  # conveyance, transport
    "03122748",  # covering
    "03129123",  # creation
    "03183080",  # device
    "03257877",  # durables, durable goods, consumer durables
    "03294048",  # equipment
    "03563967",  # implement
    "03575240",  # instrumentality, instrumentation
    "04014297",  # protective covering, protective cover, protection
    "04341686",  # structure, construction
    "07570720",  # nutriment, nourishment, nutrition, sustenance, aliment, alimentation
    "09287968",  # geological formation, formation
    "11675842",  # reproductive structure
    "14580897",  # material, stuff
    "15046900",  # solid
})
ABSTRACT_DEPTH = 3
"""Synsets this close to "entity" (depth 0) are abstract whatever their name."""


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """The synsets on the classes' paths: ``offsets[s]``, ``names[s]`` (first lemma, spaces for
    underscores), ``lemmas[s]``, ``depth[s]`` (longest path from "entity"), ``abstract[s]``, and
    ``member[s, k]``: class k is synset s or below it."""

    offsets: tuple[str, ...]
    names: tuple[str, ...]
    display: tuple[str, ...]  # distinct names: a class's own short name, else a lemma
    lemmas: tuple[tuple[str, ...], ...]
    depth: NDArray[np.int64]
    abstract: NDArray[np.bool_]
    member: NDArray[np.bool_]
    classes: NDArray[np.int64]  # class k's own synset

    def ancestors(self, k: int) -> NDArray[np.int64]:
        """Class k's synsets, itself included, deepest first."""
        s = np.flatnonzero(self.member[:, k])
        return s[np.argsort(-self.depth[s], kind="stable")]


def noun_synsets(lines: Iterable[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Every synset of data.noun's lines (``offset lex_filenum ss_type w_cnt word lex_id ...
    p_cnt ptrs | gloss``): its lemmas (spaces for underscores) and hypernym offsets."""
    entries: dict[str, tuple[list[str], list[str]]] = {}
    for line in lines:
        if line.startswith(" "):  # the licence header
            continue
        fields = line.split(" | ", 1)[0].split()
        n_words = int(fields[3], 16)
        words = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        at = 4 + 2 * n_words
        n_ptrs = int(fields[at])
        ptrs = [fields[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(n_ptrs)]
        entries[fields[0]] = (words, [p[1] for p in ptrs if p[0] in HYPERNYMS and p[2] == "n"])
    return entries


def _above(entries: dict[str, tuple[list[str], list[str]]],
           wanted: Iterable[str]) -> dict[str, tuple[list[str], list[str]]]:
    """``wanted`` and every synset above them."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    todo = list(wanted)
    while todo:
        offset = todo.pop()
        if offset in out:
            continue
        if offset not in entries:
            raise ValueError(f"WordNet has no noun synset {offset}")
        out[offset] = entries[offset]
        todo.extend(entries[offset][1])
    return out


def derive(data_noun: Path, wnids: Sequence[str]) -> dict[str, object]:
    """The table for classes of these WordNet ids (``n02123045``), from ``data_noun``."""
    offsets = [w.lstrip("n") for w in wnids]
    with open(data_noun, encoding="utf-8") as f:
        synsets = _above(noun_synsets(f), offsets)
    return {"source": "WordNet 3.0 data.noun (Princeton University; see LICENSE-WordNet.txt)",
            "classes": offsets,
            "synsets": {o: {"lemmas": synsets[o][0], "hypernyms": synsets[o][1]}
                        for o in sorted(synsets)}}


def _depths(parents: dict[str, list[str]]) -> dict[str, int]:
    depth: dict[str, int] = {}

    def of(o: str) -> int:
        if o not in depth:
            depth[o] = 1 + max((of(p) for p in parents[o]), default=-1)
        return depth[o]

    for o in parents:
        of(o)
    return depth


@lru_cache(maxsize=1)
def hierarchy() -> Hierarchy:
    """The shipped table, as arrays."""
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    synsets: dict[str, dict[str, list[str]]] = table["synsets"]
    offsets = tuple(synsets)
    index = {o: i for i, o in enumerate(offsets)}
    parents = {o: s["hypernyms"] for o, s in synsets.items()}
    depth = _depths(parents)
    classes = np.asarray([index[o] for o in table["classes"]], dtype=np.int64)
    member = np.zeros((len(offsets), len(classes)), dtype=bool)
    for k, o in enumerate(table["classes"]):
        todo = [o]
        while todo:
            s = todo.pop()
            if not member[index[s], k]:
                member[index[s], k] = True
                todo.extend(parents[s])
    depths = np.asarray([depth[o] for o in offsets], dtype=np.int64)
    abstract = np.asarray([o in ABSTRACT for o in offsets]) | (depths <= ABSTRACT_DEPTH)
    lemmas = tuple(tuple(synsets[o]["lemmas"]) for o in offsets)
    size = member.sum(axis=1)
    order = sorted(range(len(offsets)), key=lambda s: (bool(abstract[s]), -size[s], depths[s]))
    display = _display([offsets[s] for s in order], [lemmas[s] for s in order], parents,
                       table["classes"])
    return Hierarchy(offsets, tuple(lem[0] for lem in lemmas),
                     tuple(display[o] for o in offsets), lemmas, depths, abstract, member,
                     classes)


def _display(offsets: Sequence[str], lemmas: Sequence[Sequence[str]],
             parents: dict[str, list[str]], class_offsets: Sequence[str]) -> dict[str, str]:
    """A distinct name per synset: a class's own (curated, distinct) short name; else, in the
    order given (kept before abstract, then by how many classes they hold), its first lemma
    that no class and no synset before it uses, else "lemma (parent's lemma)". Two synsets of
    one name (the vessels: a craft and a container) are thus told apart. A class folded into
    another of its name (``names.MERGED``) is never a concept; it is named as an inner
    synset."""
    from tsnegrid.concepts.names import MERGED, class_names

    folded = {away.lstrip("n") for away, _, _ in MERGED}
    own = {o: n for o, n in zip(class_offsets, class_names(), strict=True) if o not in folded}
    taken = {n.lower() for n in own.values()}
    first = {o: lem[0] for o, lem in zip(offsets, lemmas, strict=True)}
    out: dict[str, str] = {}
    for o, lem in zip(offsets, lemmas, strict=True):
        if o in own:
            out[o] = own[o]
            continue
        name = next((x for x in lem if x.lower() not in taken), None)
        if name is None:
            name = f"{lem[0]} ({first[parents[o][0]]})" if parents[o] else lem[0]
        taken.add(name.lower())
        out[o] = name
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Write the table from WordNet's data.noun (first argument, else Debian's path)."""
    from tsnegrid.concepts.names import class_ids

    args = list(sys.argv[1:] if argv is None else argv)
    source = Path(args[0]) if args else DATA_NOUN
    table = derive(source, class_ids())
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text(json.dumps(table, separators=(",", ":"), ensure_ascii=False) + "\n",
                     encoding="utf-8")
    synsets = table["synsets"]
    assert isinstance(synsets, dict)
    print(f"wrote {TABLE} ({len(synsets)} synsets)")  # noqa: T201


if __name__ == "__main__":
    main()
