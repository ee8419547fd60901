"""Metadata files: CSV and JSON shapes, the key column, joining on paths and file names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DEMO
from tsnegrid.errors import InputError
from tsnegrid.metadata import Metadata, load_metadata


def test_demo_labels_join_on_file_name() -> None:
    meta = load_metadata(DEMO / "labels.csv")
    assert meta.fields == ("name", "category", "subcategory")
    first = sorted((DEMO / "images").iterdir())[0]
    rec = meta.join([str(first.resolve()), "elsewhere/unknown.png"])
    assert rec[0]["category"] and rec[1] == {}


def test_relative_paths_and_the_path_column(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("label,path\ncat,sub/a.png\ndog,/abs/b.png\n")
    meta = load_metadata(f)
    assert meta.fields == ("label",)
    assert [r.get("label") for r in meta.join(["/data/sub/a.png", "/abs/b.png", "/x/a.png"])] \
        == ["cat", "dog", None]


def test_json_list_and_mapping(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps([{"file": "x.png", "n": 3, "tags": ["a", "b"], "empty": None}]))
    rec = load_metadata(a).join(["/p/x.png"])[0]
    assert rec == {"n": "3", "tags": '["a", "b"]'}
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"x.png": {"kind": "cat"}}))
    assert load_metadata(b).join(["x.png"])[0] == {"kind": "cat"}


def test_from_mapping() -> None:
    meta = Metadata.from_mapping({"in/a": {"k": 1}, "b": {"j": "v"}})
    assert meta.fields == ("k", "j")
    assert meta.join(["in/a", "w/b"]) == [{"k": "1"}, {"j": "v"}]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("m.json", "{not json", "invalid JSON"),
    ("m.json", "[1, 2]", "list of objects"),
    ("m.csv", "", "no rows"),
    ("m.csv", "file,label\n", "no rows"),
])
def test_rejected_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        load_metadata(tmp_path / name)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_metadata(tmp_path / "nope.csv")
