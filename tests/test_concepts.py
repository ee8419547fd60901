"""Concepts: Lite0's own ImageNet head on the cached vectors, class names, broader names."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import emoji_subset, solid
from tsnegrid import Settings, build
from tsnegrid.concepts import classify, load_head, top_concepts
from tsnegrid.concepts.broader import broader_names
from tsnegrid.concepts.head import head_path
from tsnegrid.concepts.names import MERGED, class_ids, class_names, class_synonyms, distinct_classes
from tsnegrid.embed import embed_images, make_embedder
from tsnegrid.embed.cache import EmbeddingCache
from tsnegrid.embed.lite0 import MODEL_ID
from tsnegrid.errors import InputError


def _photos(dest: Path) -> dict[str, Path]:
    """scikit-image's photographs of known content, as files."""
    data = pytest.importorskip("skimage.data")
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("chelsea", "coffee", "astronaut"):
        out[name] = dest / f"{name}.png"
        Image.fromarray(getattr(data, name)()).convert("RGB").save(out[name])
    return out


def _top_names(records: list[dict[str, object]]) -> list[str]:
    return [str(r["name"]) for r in records]


def test_head_gives_the_torch_models_probabilities(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    from tsnegrid.embed.export import weights_path
    from tsnegrid.embed.lite0 import load_lite0

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    net.eval()
    lite0 = load_lite0(threads=1)
    photos = _photos(tmp_path)
    batch = np.stack([lite0.preprocess(Image.open(p).convert("RGB")) for p in photos.values()])
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(batch)), dim=1).numpy()
    head = load_head(MODEL_ID)
    assert head is not None
    ours = head.probabilities(lite0.embed_batch(batch))
    assert np.abs(ours - ref).max() < 1e-3  # float16 weights, ONNX Runtime vs torch
    np.testing.assert_array_equal(np.argsort(-ours, axis=1)[:, :5],
                                  np.argsort(-ref, axis=1)[:, :5])


def test_fresh_head_export_matches_the_shipped_file(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tsnegrid.embed.export import export_head, weights_path

    fresh = tmp_path / "head.npz"
    export_head(weights_path(), fresh)
    with np.load(fresh) as a, np.load(head_path(MODEL_ID)) as b:
        assert str(a["model_id"]) == str(b["model_id"]) == MODEL_ID
        assert a["weight"].shape == (1000, 1280) and a["weight"].dtype == np.float16
        np.testing.assert_array_equal(a["weight"], b["weight"])
        np.testing.assert_array_equal(a["bias"], b["bias"])


def test_known_photos_get_their_classes(tmp_path: Path, cache_dir: Path) -> None:
    photos = _photos(tmp_path / "p")
    emb = embed_images(list(photos.values()), make_embedder("lite0", cache_dir,
                                                            features="semantic"))
    assert emb.concepts is not None and emb.concepts.ids.shape == (3, 5)
    broad = broader_names()
    cat = [broad[k] for k in emb.concepts.ids[0]]
    assert any("cat" in b for b in cat), _top_names(emb.concepts.records(0))
    coffee = " ".join(_top_names(emb.concepts.records(1)))
    assert "espresso" in coffee or "cup" in coffee or "mug" in coffee
    values = emb.concepts.values
    assert (np.diff(values, axis=1) <= 0).all() and (values > 0).all()
    assert (values.sum(axis=1) <= 1 + 1e-6).all()


def test_concepts_come_from_cached_vectors_and_any_feature_mix(tmp_path: Path) -> None:
    paths = list(_photos(tmp_path / "p").values()) + emoji_subset(tmp_path / "e", 3)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    try:
        sem = embed_images(paths, make_embedder("lite0", tmp_path, features="semantic"), cache)
        both = make_embedder("lite0", tmp_path, features="both")
        first = embed_images(paths, both, cache)
        again = embed_images(paths, both, cache)
    finally:
        cache.close()
    assert again.n_computed == 0  # the concepts of a cached image cost no inference
    for e in (first, again):
        assert e.concepts is not None and sem.concepts is not None
        np.testing.assert_array_equal(e.concepts.ids, sem.concepts.ids)
        np.testing.assert_allclose(e.concepts.values, sem.concepts.values, atol=1e-5)
    np.testing.assert_allclose(first.vectors, again.vectors, atol=1e-6)


@pytest.mark.parametrize("model,features", [("pixels", "semantic"), ("lite0", "colour")])
def test_models_without_a_head_have_no_concepts(tmp_path: Path, model: str,
                                                features: str) -> None:
    paths = emoji_subset(tmp_path / "e", 4)
    emb = embed_images(paths, make_embedder(model, tmp_path, features=features))
    assert emb.concepts is None
    assert classify(np.zeros((2, 1280), np.float32), "pixels-16") is None


def test_layout_files_carry_the_concepts(tmp_path: Path, cache_dir: Path) -> None:
    photos = _photos(tmp_path / "p")
    out = tmp_path / "out"
    build([tmp_path / "p"], out, Settings(cache_dir=cache_dir, concepts=3))
    doc = json.loads((out / "layout.json").read_text())
    assert doc["concepts"]["top"] == 3 and doc["concepts"]["model"] == MODEL_ID
    by_path = {im["path"]: im["concepts"] for im in doc["images"]}
    coffee = by_path[str(photos["coffee"])]
    assert len(coffee) == 3 and set(coffee[0]) == {"id", "name", "value"}
    assert coffee[0]["id"] in class_ids() and coffee[0]["name"] in class_names()
    with open(out / "layout.csv", newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    first = rows[str(photos["coffee"])]["concepts"].split("; ")[0]
    assert first == f"{coffee[0]['name']}:{coffee[0]['value']:.4f}"


def test_no_concepts_without_a_head(tmp_path: Path, cache_dir: Path) -> None:
    paths = [solid(tmp_path / f"s{i}.png", (40 * i, 90, 200 - 30 * i)) for i in range(5)]
    out = tmp_path / "out"
    build(paths, out, Settings(cache_dir=cache_dir, model="pixels"))
    doc = json.loads((out / "layout.json").read_text())
    assert "concepts" not in doc and "concepts" not in doc["images"][0]
    assert (out / "layout.csv").read_text().splitlines()[0] == "path,row,col,x,y"


def test_zero_concepts_turns_them_off(tmp_path: Path, cache_dir: Path) -> None:
    paths = emoji_subset(tmp_path / "e", 4)
    assert build(paths, None, Settings(cache_dir=cache_dir, concepts=0)).concepts is None


def test_bad_concept_count_rejected() -> None:
    with pytest.raises(InputError, match="concepts must be"):
        Settings(concepts=-1)


def test_class_tables_line_up() -> None:
    names, ids, syn = class_names(), class_ids(), class_synonyms()
    assert len(names) == len(ids) == len(syn) == 1000 == len(set(ids))
    assert ids[281] == "n02123045" and "tabby" in syn[281]


KEYWORDS = {"dog": ("terrier", "retriever", "spaniel", "hound", "setter", "poodle", "sheepdog",
                    "collie", "schnauzer", "mastiff", "corgi"),
            "snake": ("snake", "viper", "rattlesnake", "python", "cobra", "mamba"),
            "butterfly": ("butterfly",), "beetle": ("beetle",), "crab": ("crab",),
            "monkey": ("monkey",), "shark": ("shark",), "spider": ("spider",),
            "lizard": ("lizard", "gecko", "iguana"), "fungus": ("fungus", "mushroom")}


@pytest.mark.parametrize("group", sorted(KEYWORDS))
def test_broader_groups_cover_their_classes(group: str) -> None:
    """Every animal or fungus class one of whose names ends in a word of the group ("tiger
    shark", not "spider monkey") has that broader name, and the group is mostly such classes
    (breed names need not say "dog")."""
    syn, broad = class_synonyms(), broader_names()
    said = {k for k, s in enumerate(syn)
            if any(n.strip().lower().split()[-1] in KEYWORDS[group] for n in s.split(","))}
    said = {k for k in said if {"animal", "fungus"} & set(broad[k])  # not the man-made ones
            and class_names()[k] != "hermit crab"}  # in WordNet a decapod, not a true crab
    has = {k for k, b in enumerate(broad) if group in b}
    assert said <= has, [syn[k] for k in said - has]
    assert len(has) <= 3 * len(said) or group in ("dog", "fungus")  # bolete, agaric, ...


def test_broader_names_are_wordnets_hypernyms_narrowest_first() -> None:
    from tsnegrid.concepts.wordnet import hierarchy

    h = hierarchy()
    index = {name: s for s, name in enumerate(h.display)}
    for k, groups in enumerate(broader_names()):
        depths = [h.depth[index[g]] for g in groups]
        assert depths == sorted(depths, reverse=True)
        assert all(h.member[index[g], k] and not h.abstract[index[g]] for g in groups)
    assert broader_names()[207][:4] == ("retriever", "sporting dog", "hunting dog", "dog")
    assert "object" not in {g for groups in broader_names() for g in groups}


def _name_key(name: str) -> str:
    return " ".join(name.lower().split())


def test_every_concept_name_is_distinct_after_the_merges() -> None:
    names, ids = class_names(), class_ids()
    at = {w: k for k, w in enumerate(ids)}
    for gone, kept, name in MERGED:  # the table names classes of that one name
        assert names[at[gone]] == names[at[kept]] == name
    shown = [_name_key(names[k]) for k in distinct_classes()]
    assert len(shown) == len(set(shown)) == 1000 - len(MERGED)
    by_name: dict[str, set[int]] = {}
    for k, name in enumerate(names):
        by_name.setdefault(_name_key(name), set()).add(k)
    same = {frozenset(ks) for ks in by_name.values() if len(ks) > 1}
    assert same == {frozenset((at[gone], at[kept])) for gone, kept, _ in MERGED}
    assert names[at["n02012849"]] != names[at["n03126707"]]  # the crane bird, the machine


def test_a_merged_class_is_searchable_by_both_synsets_words() -> None:
    syn, at = class_synonyms(), {w: k for k, w in enumerate(class_ids())}
    missile = [s.strip() for s in syn[at["n03773504"]].split(",")]
    assert missile[0] == "missile" and "projectile" in missile
    assert len(missile) == len(set(missile))
    assert "shades" in syn[at["n04356056"]] and "sunglass" in syn[at["n04356056"]]


def _probabilities(peaks: dict[str, float]) -> np.ndarray:
    """1,000 class probabilities: these WordNet ids at these values, the rest shared evenly."""
    at = {w: k for k, w in enumerate(class_ids())}
    p = np.full(1000, (1 - sum(peaks.values())) / (1000 - len(peaks)), dtype=np.float32)
    for wnid, v in peaks.items():
        p[at[wnid]] = v
    return p


# a photo of a missile: both missile classes and both sunglasses classes among the top 5
MISSILE_PHOTO = {"n03773504": 0.27, "n04008634": 0.14, "n04355933": 0.12, "n04356056": 0.10,
                 "n04266014": 0.09, "n02687172": 0.08, "n04552348": 0.07}


def test_same_named_classes_are_one_concept_with_the_summed_value() -> None:
    probs = np.stack([_probabilities(MISSILE_PHOTO),
                      _probabilities({"n04008634": 0.4, "n03773504": 0.3})])
    ids, values = top_concepts(probs, 5)
    names = [[class_names()[k] for k in row] for row in ids.tolist()]
    assert names[0][:2] == ["missile", "sunglasses"] and len(set(names[0])) == 5
    assert names[1][0] == "missile" and len(set(names[1])) == 5
    np.testing.assert_allclose(values[0, :2], [0.41, 0.22], rtol=1e-5)
    np.testing.assert_allclose(values[1, 0], 0.7, rtol=1e-5)
    # the id kept is the synset the name means; the top 5 is taken over distinct names
    assert [class_ids()[k] for k in ids[0, :2]] == ["n03773504", "n04356056"]
    assert {class_ids()[k] for k in ids[0, 2:]} == {"n04266014", "n02687172", "n04552348"}
    assert (np.diff(values, axis=1) <= 0).all()
    every, _ = top_concepts(probs[:1], 1000)  # all of them: each name once
    assert every.shape == (1, 998) and len({class_names()[k] for k in every[0]}) == 998


def _fixed_head(monkeypatch: pytest.MonkeyPatch, probs: np.ndarray) -> None:
    """Make every image's lite0 class probabilities ``probs`` (a head of zero weights)."""
    import tsnegrid.concepts as concepts

    bias = np.log(probs).astype(np.float32)
    head = concepts.Head(MODEL_ID, np.zeros((1000, 1280), np.float32), bias)
    monkeypatch.setattr(concepts, "load_head", lambda model_id: head)


def test_classify_lists_each_name_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_head(monkeypatch, _probabilities(MISSILE_PHOTO))
    c = classify(np.ones((3, 1280), np.float32), MODEL_ID)
    assert c is not None and c.ids.shape == (3, 5)
    records = c.records(0)
    assert [r["name"] for r in records][:2] == ["missile", "sunglasses"]
    assert len({r["name"] for r in records}) == len({r["id"] for r in records}) == 5
    assert abs(float(records[0]["value"]) - 0.41) < 1e-3
    full = classify(np.ones((1, 1280), np.float32), MODEL_ID, top=1000)
    assert full is not None and full.ids.shape == (1, 998)


def test_layout_files_name_each_concept_once(tmp_path: Path, cache_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_head(monkeypatch, _probabilities(MISSILE_PHOTO))
    out = tmp_path / "out"
    build(emoji_subset(tmp_path / "e", 4), out, Settings(cache_dir=cache_dir))
    doc = json.loads((out / "layout.json").read_text())
    for im in doc["images"]:
        names = [c["name"] for c in im["concepts"]]
        assert names[:2] == ["missile", "sunglasses"] and len(set(names)) == 5
        assert im["concepts"][0]["id"] == "n03773504"
    with open(out / "layout.csv", newline="") as f:
        for row in csv.DictReader(f):
            listed = [c.rsplit(":", 1) for c in row["concepts"].split("; ")]
            assert [n for n, _ in listed][:2] == ["missile", "sunglasses"]
            assert len({n for n, _ in listed}) == 5
            assert abs(float(listed[0][1]) - 0.41) < 1e-3
