"""Region names: the user's own words first (a metadata field, folders, file names), WordNet's
most specific synset with enough concept mass next, silence when the evidence is weak."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tsnegrid.cli import cli
from tsnegrid.concepts.names import class_ids
from tsnegrid.errors import InputError
from tsnegrid.regions import RegionsConfig, find_regions
from tsnegrid.regions.naming import (
    MASS_ALONE,
    Naming,
    concept_name,
    file_words,
    folder_words,
    metadata_words,
    name_regions,
    naming_for,
)

CLASS = {w: k for k, w in enumerate(class_ids())}
TABBY, TIGER_CAT, PERSIAN, EGYPTIAN = (CLASS[w] for w in (
    "n02123045", "n02123159", "n02123394", "n02124075"))
PLECTRUM = CLASS["n03929660"]
BREEDS = [CLASS[w] for w in ("n02085620", "n02085782", "n02085936", "n02086079", "n02086240",
                             "n02086646", "n02086910", "n02087046", "n02087394", "n02088094")]


def rows(ids: list[list[int]], values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array(ids, dtype=np.int16),
            np.tile(np.array(values, dtype=np.float32), (len(ids), 1)))


def test_several_classes_agreeing_name_their_common_synset() -> None:
    """Four cat classes share the mass: the most specific synset over all of them."""
    cats = [TABBY, TIGER_CAT, PERSIAN, EGYPTIAN]
    ids, values = rows([[cats[i % 4], cats[(i + 1) % 4], 0, 1, 2] for i in range(8)],
                       [0.5, 0.4, 0.04, 0.03, 0.03])
    name = concept_name(ids, values)
    assert name.text == "domestic cat" and name.score == pytest.approx(0.9)
    toy = [CLASS[w] for w in ("n02085620", "n02085782", "n02085936", "n02086079")]
    hounds = [CLASS[w] for w in ("n02088094", "n02088238", "n02088364", "n02088466")]
    ids, values = rows([[b, 0, 1, 2, 3] for b in toy + hounds], [0.8, 0.05, 0.05, 0.05, 0.05])
    assert concept_name(ids, values).text == "dog"  # neither toy dogs nor hounds have half
    ids, values = rows([[b, 0, 1, 2, 3] for b in toy * 3 + hounds], [0.8, .05, .05, .05, .05])
    assert concept_name(ids, values).text == "toy dog"  # the more specific one has enough


def test_one_class_alone_needs_near_certainty() -> None:
    """The classifier's confident mistake on images unlike ImageNet's ("plectrum" over yellow
    smileys, mass 0.87 on the emoji set) stays unnamed; near certainty names it."""
    ids, values = rows([[PLECTRUM, 0, 1, 2, 3]] * 10, [0.85, 0.05, 0.05, 0.03, 0.02])
    silent = concept_name(ids, values)
    assert silent.text is None and silent.candidate == "plectrum"
    assert silent.score == pytest.approx(0.85)
    ids, values = rows([[PLECTRUM, 0, 1, 2, 3]] * 10, [MASS_ALONE + 0.02, .02, .02, .02, .02])
    assert concept_name(ids, values).text == "plectrum"


def test_weak_or_scattered_evidence_names_nothing() -> None:
    """Ten unrelated objects at low probability: no synset (abstract ones aside) has enough
    mass; "object", "artifact" and the like never name a region."""
    ids = np.array([[398 + 50 * k + j for j in range(5)] for k in range(10)], dtype=np.int16)
    values = np.tile(np.array([0.3, 0.1, 0.1, 0.1, 0.1], np.float32), (10, 1))
    name = concept_name(ids, values)
    assert name.text is None and name.candidate not in {
        "object", "whole", "artifact", "physical entity", "instrumentality", "matter",
        "organism", "entity", "living thing"}


def test_a_metadata_field_names_by_its_majority_value() -> None:
    words = metadata_words("kind", ["cat"] * 6 + ["dog"] * 3 + [""])
    labels = np.zeros(10, dtype=np.int64)
    (name,) = name_regions(labels, 1, words, None, None)
    assert (name.text, name.score, name.source) == ("cat", 0.6, "kind")
    split = metadata_words("kind", ["cat"] * 4 + ["dog"] * 4 + ["eel"] * 2)
    (none,) = name_regions(labels, 1, split, None, None)
    assert none.text is None and none.candidate in {"cat", "dog"} and none.score == 0.4


def test_folders_name_by_the_most_specific_folder_holding_half() -> None:
    paths = ([f"/p/town/roadsigns/{i}.jpg" for i in range(4)]
             + [f"/p/town/cars/{i}.jpg" for i in range(2)]
             + [f"/p/animals/cats/{i}.jpg" for i in range(6)])
    words = folder_words(paths)
    assert words is not None and words.labels is not None
    assert words.labels[0] == "town/roadsigns"  # under the common root /p
    labels = np.array([0] * 6 + [1] * 6)
    town, cats = name_regions(labels, 2, words, None, None)
    assert (town.text, town.detail, town.score) == ("roadsigns", "town/roadsigns",
                                                    pytest.approx(4 / 6))
    assert (cats.text, cats.detail) == ("cats", "animals/cats")
    mixed = np.array([0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1])  # 0: two signs, two cars, two cats
    a, b = name_regions(mixed, 2, words, None, None)
    assert (a.text, a.detail) == ("town", "town")  # only "town" holds half of region 0
    assert (b.text, b.score) == ("cats", pytest.approx(4 / 6))
    assert folder_words(["/a/x.jpg", "/a/y.jpg"]) is None  # one folder: nothing to tell


def test_file_words_name_when_frequent_here_and_rare_elsewhere() -> None:
    """Camera prefixes, numbers and one-letter words are not words; a word must hold half the
    region and be LIFT times as frequent there as in the set."""
    names = ([f"IMG_{i:04d}_beach.jpg" for i in range(5)] + [f"DSC{i:05d}.JPG" for i in range(5)]
             + [f"snow-{i}-day.png" for i in range(5)])
    words = file_words(names)
    assert words.words is not None
    assert words.words[0] == frozenset({"beach"}) and words.words[5] == frozenset()
    assert words.words[10] == frozenset({"snow", "day"})
    beach, cams, snow = name_regions(np.repeat([0, 1, 2], 5), 3, words, None, None)
    assert beach.text == "beach" and cams.text is None and snow.text in {"snow", "day"}
    everywhere = file_words([f"holiday_{i}.jpg" for i in range(10)])
    (a, _) = name_regions(np.repeat([0, 1], 5), 2, everywhere, None, None)
    assert a.text is None  # in every image: says nothing about this region


def test_auto_takes_the_first_informative_source_else_concepts() -> None:
    cells = np.arange(16, dtype=np.int64)
    vectors = np.vstack([np.zeros((8, 3)), np.ones((8, 3))]).astype(np.float32)
    foldered = [f"/x/{'cats' if i < 8 else 'dogs'}/{i}.jpg" for i in range(16)]
    reg = find_regions(cells, 4, 4, None, RegionsConfig(size=8), vectors,
                       naming_for("auto", foldered))
    assert sorted(str(r.name) for r in reg.regions) == ["cats", "dogs"]
    assert {r.source for r in reg.regions} == {"folders"}
    flat = [f"/x/{i:03d}.jpg" for i in range(16)]  # no folders, no words: the concepts
    reg = find_regions(cells, 4, 4, None, RegionsConfig(size=8), vectors,
                       naming_for("auto", flat))
    assert {r.source for r in reg.regions} == {"none"}  # and without concepts, no name
    forced = naming_for("files", flat)
    assert forced.forced and not forced.concepts


def test_names_choices_are_checked() -> None:
    none = naming_for("none", ["a/b.jpg"])
    assert isinstance(none, Naming) and not none.words and not none.concepts
    with pytest.raises(InputError, match="folders"):
        naming_for("folders", ["/a/x.jpg", "/a/y.jpg"])
    with pytest.raises(InputError, match="no field 'kind'; its fields: other"):
        naming_for("kind", ["/a/x.jpg"], [{"other": "1"}])
    with pytest.raises(InputError, match="--metadata"):
        naming_for("kind", ["/a/x.jpg"], None)
    with pytest.raises(InputError, match="names"):
        naming_for("", ["/a/x.jpg"])


def _by_category(root: Path, n: int) -> tuple[list[Path], dict[str, str]]:
    """n demo emoji filed in folders named by their Unicode category; their categories."""
    from conftest import emoji_labels, emoji_subset

    labels = emoji_labels()
    files = []
    for f in emoji_subset(root / "flat", n):
        folder = root / "sorted" / labels[f.name].split(" ")[0].lower()
        folder.mkdir(parents=True, exist_ok=True)
        files.append(f.rename(folder / f.name))
    return files, labels


def test_build_names_regions_by_folder_and_by_a_metadata_field(tmp_path: Path,
                                                                cache_dir: Path) -> None:
    """The command as a user runs it: folders by default; ``--names category`` from a labels
    file; the names agree with the images' categories; a wrong field is one line, exit 2."""
    files, labels = _by_category(tmp_path, 160)
    runner = CliRunner()
    args = ["-q", "build", str(tmp_path / "sorted"), "--cache-dir", str(cache_dir),
            "--tile", "16", "--region-size", "16", "--format", "png"]
    res = runner.invoke(cli, [*args, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "a" / "layout.json").read_text())
    fine = [r for r in doc["regions"] if r["level"] == "fine"]
    assert {r["source"] for r in fine} == {"folders"}
    truth = {im["path"]: Path(im["path"]).parent.name for im in doc["images"]}
    right = sum(r["size"] for r in fine if r["name"] and sum(
        truth[im["path"]] == r["name"] for im in doc["images"] if im["region"] == r["id"])
        >= r["size"] / 2)
    assert right / sum(r["size"] for r in fine if r["name"]) >= 0.9
    meta = tmp_path / "labels.csv"
    meta.write_text("file,category\n" + "".join(f"{f.name},{labels[f.name]}\n" for f in files))
    res = runner.invoke(cli, [*args, "--out", str(tmp_path / "b"), "--metadata", str(meta),
                              "--names", "category"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "b" / "layout.json").read_text())
    assert {r["source"] for r in doc["regions"] if r["name"]} == {"category"}
    assert {r["name"] for r in doc["regions"] if r["name"]} <= set(labels.values())
    with open(tmp_path / "b" / "layout.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert {"region_name", "coarse_region_name"} <= set(row)
    res = runner.invoke(cli, [*args, "--out", str(tmp_path / "c"), "--metadata", str(meta),
                              "--names", "species"])
    assert res.exit_code == 2 and "'species'" in res.output and "category" in res.output
    assert not (tmp_path / "c" / "layout.json").exists()
