"""Broader names for the ImageNet-1k classes ("dog" for the 118 breeds), so that a region of
many breeds, or a search for "dog", finds them all.

No registry package ships the WordNet hierarchy offline (nltk's corpus is a download), so this is
a small hand-made map from class-index ranges to group names. It leans on how ImageNet-1k is
ordered: by WordNet id, so the animals, foods and landscapes of one WordNet subtree are
contiguous runs (151-268 are the domestic dogs, 281-285 the domestic cats). The 526 man-made
objects (398-923) are in alphabetical order of their ids, not by kind, and get only "object".
``tests/test_concepts.py`` checks every group against the class names it should cover.
"""

from __future__ import annotations

from functools import lru_cache

Span = tuple[int, int]
"""Inclusive range of class indices."""

#: (group, its parent group or "", the class ranges it covers). Parents are listed here too, so
#: each class's broader names are its groups from the narrowest up.
GROUPS: tuple[tuple[str, str, tuple[Span, ...]], ...] = (
    ("animal", "", ((0, 397),)),
    ("fish", "animal", ((0, 6), (389, 397))),
    ("shark", "fish", ((2, 4),)),
    ("bird", "animal", ((7, 24), (80, 100), (127, 146))),
    ("parrot", "bird", ((87, 90),)),
    ("amphibian", "animal", ((25, 32),)),
    ("salamander", "amphibian", ((25, 29),)),
    ("frog", "amphibian", ((30, 32),)),
    ("reptile", "animal", ((33, 68),)),
    ("turtle", "reptile", ((33, 37),)),
    ("lizard", "reptile", ((38, 48),)),
    ("crocodilian", "reptile", ((49, 50),)),
    ("snake", "reptile", ((52, 68),)),
    ("invertebrate", "animal", ((69, 79), (107, 126), (300, 329))),
    ("spider", "invertebrate", ((72, 77),)),
    ("crustacean", "invertebrate", ((118, 126),)),
    ("crab", "crustacean", ((118, 121), (125, 125))),
    ("mollusc", "invertebrate", ((112, 117),)),
    ("insect", "invertebrate", ((300, 326),)),
    ("beetle", "insect", ((300, 307),)),
    ("butterfly", "insect", ((321, 326),)),
    ("mammal", "animal", ((101, 106), (147, 150), (151, 299), (330, 388))),
    ("marsupial", "mammal", ((104, 106),)),
    ("whale", "mammal", ((147, 148),)),
    ("canine", "mammal", ((151, 275), (277, 280))),
    ("dog", "canine", ((151, 268),)),
    ("terrier", "dog", ((179, 203),)),
    ("wolf", "canine", ((269, 272),)),
    ("fox", "canine", ((277, 280),)),
    ("feline", "mammal", ((281, 293),)),
    ("cat", "feline", ((281, 285),)),
    ("big cat", "feline", ((286, 293),)),
    ("bear", "mammal", ((294, 297),)),
    ("rabbit", "mammal", ((330, 332),)),
    ("rodent", "mammal", ((333, 338),)),
    ("hoofed mammal", "mammal", ((339, 355),)),
    ("horse", "hoofed mammal", ((339, 340),)),
    ("pig", "hoofed mammal", ((341, 343),)),
    ("cattle", "hoofed mammal", ((345, 347),)),
    ("sheep", "hoofed mammal", ((348, 350),)),
    ("antelope", "hoofed mammal", ((351, 353),)),
    ("weasel", "mammal", ((356, 362),)),
    ("primate", "mammal", ((365, 384),)),
    ("ape", "primate", ((365, 369),)),
    ("monkey", "primate", ((370, 382),)),
    ("elephant", "mammal", ((101, 101), (385, 386))),
    ("object", "", ((398, 923), (999, 999))),
    ("food", "", ((924, 969),)),
    ("dish", "food", ((924, 935), (959, 965))),
    ("vegetable", "food", ((936, 946),)),
    ("fruit", "food", ((948, 957),)),
    ("drink", "food", ((966, 969),)),
    ("landscape", "", ((970, 980),)),
    ("person", "", ((981, 983),)),
    ("plant", "", ((984, 990), (998, 998))),
    ("fungus", "", ((947, 947), (991, 997))),
)


@lru_cache(maxsize=1)
def broader_names() -> tuple[tuple[str, ...], ...]:
    """For each of the 1,000 classes, its groups from the narrowest to the broadest."""
    out: list[list[tuple[int, str]]] = [[] for _ in range(1000)]
    depth: dict[str, int] = {}
    for name, parent, _ in GROUPS:
        depth[name] = depth[parent] + 1 if parent else 0
    for name, _, spans in GROUPS:
        for lo, hi in spans:
            for k in range(lo, hi + 1):
                out[k].append((depth[name], name))
    return tuple(tuple(n for _, n in sorted(groups, reverse=True)) for groups in out)
