"""The shipped WordNet table: derived again from WordNet's data.noun where Debian's wordnet-base
is installed, and the hierarchy it gives."""

from __future__ import annotations

import json

import pytest

from tsnegrid.concepts.names import class_ids, class_names
from tsnegrid.concepts.wordnet import ABSTRACT, DATA_NOUN, TABLE, derive, hierarchy


@pytest.mark.skipif(not DATA_NOUN.is_file(),
                    reason=f"{DATA_NOUN} absent (Debian's wordnet-base package)")
def test_the_shipped_table_is_what_wordnet_gives() -> None:
    shipped = json.loads(TABLE.read_text(encoding="utf-8"))
    assert derive(DATA_NOUN, class_ids()) == shipped


def test_classes_sit_on_their_hypernym_paths() -> None:
    h = hierarchy()
    index = {o: s for s, o in enumerate(h.offsets)}
    tabby = class_ids().index("n02123045")
    path = [h.names[s] for s in h.ancestors(tabby)]
    assert path[0] == "tabby" and "domestic cat" in path and path[-1] == "entity"
    assert h.display[index["02123045"]] == class_names()[tabby]  # the class's own short name
    assert h.member[index["02121808"], tabby]  # domestic cat holds the tabby
    assert h.depth[index["00001740"]] == 0 and (h.depth[1:] >= 0).all()
    assert h.member.sum(axis=0).min() >= 2  # every class under at least "entity"


def test_abstract_synsets_are_listed_by_real_offsets_and_never_the_classes() -> None:
    """Each listed abstract synset is on some class's path (a typo would silently keep one)."""
    h = hierarchy()
    index = {o: s for s, o in enumerate(h.offsets)}
    assert ABSTRACT <= set(index)
    names = {h.names[index[o]] for o in ABSTRACT}
    assert {"object", "whole", "artifact", "physical entity", "instrumentality", "matter",
            "organism"} <= names
    assert not h.abstract[h.classes].any()


def test_display_names_are_distinct_and_natural() -> None:
    h = hierarchy()
    assert len(set(h.display)) == len(h.display)
    index = {o: s for s, o in enumerate(h.offsets)}
    assert h.display[index["02084071"]] == "dog"  # "dog", not "canine"
    assert h.display[index["02958343"]] == "car"  # the automobile, not the railway car
    caps = sorted(h.display[s] for s, name in enumerate(h.names) if name == "cap")
    assert caps == ["cap", "cap (protective covering)", "cap (top)"]  # one lemma, told apart
    assert h.display[index["04530566"]] == "watercraft"  # the craft; the container: vessel
