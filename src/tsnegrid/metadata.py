"""Per-image metadata from a CSV or JSON file, joined to the layout's image paths.

The key column is the first of ``KEY_COLUMNS`` present (else the first column). A key matches an
image when it equals the image's path or a trailing part of it (``sub/a.png`` or ``a.png`` match
``/data/sub/a.png``), so a labels file with bare file names joins onto absolute paths.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from tsnegrid.errors import InputError

KEY_COLUMNS = ("path", "file", "filename", "file_name", "image", "image_path")


@dataclass(frozen=True)
class Metadata:
    """Records keyed by path or file name; ``fields`` in file order, the key column excluded."""

    fields: tuple[str, ...]
    records: Mapping[str, Mapping[str, str]]

    @classmethod
    def from_mapping(cls, records: Mapping[str, Mapping[str, Any]]) -> Metadata:
        """From ``{path_or_name: {field: value}}`` (e.g. the service's input metadata)."""
        fields: dict[str, None] = {}
        clean: dict[str, dict[str, str]] = {}
        for key, rec in records.items():
            if not isinstance(rec, Mapping):
                raise InputError(f"metadata for {key!r} must be an object of fields")
            clean[str(key)] = {str(k): _text(v) for k, v in rec.items() if _text(v)}
            fields.update(dict.fromkeys(map(str, rec)))
        return cls(tuple(fields), clean)

    def join(self, paths: Sequence[str]) -> list[Mapping[str, str]]:
        """The record of each path (empty when none matches)."""
        return [self._lookup(p) for p in paths]

    def _lookup(self, path: str) -> Mapping[str, str]:
        if path in self.records:
            return self.records[path]
        for key in _suffixes(path):
            rec = self.records.get(key)
            if rec is not None:
                return rec
        return {}


def _suffixes(path: str) -> list[str]:
    """The path's trailing parts, longest first, ``/``-joined, without its root: what a
    metadata key may name it by (``/a/b/c.jpg``: ``a/b/c.jpg``, ``b/c.jpg``, ``c.jpg``). On
    POSIX by splitting the string (as ``PurePath.parts`` would, 10x faster); elsewhere by
    ``PurePath``."""
    if os.name != "posix":
        parts = PurePath(path).parts
        return ["/".join(parts[k:]) for k in range(1, len(parts))]
    segs = [s for s in path.split("/") if s not in ("", ".")]
    first = 0 if path.startswith("/") else 1
    return ["/".join(segs[k:]) for k in range(first, len(segs))]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value).strip()


def _key_column(columns: Sequence[str], source: Path) -> str:
    if not columns:
        raise InputError(f"metadata {source}: no columns")
    lower = {c.lower().strip(): c for c in columns}
    return next((lower[k] for k in KEY_COLUMNS if k in lower), columns[0])


def _from_rows(rows: Sequence[Mapping[str, Any]], source: Path) -> Metadata:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    key = _key_column(columns, source)
    records: dict[str, dict[str, Any]] = {}
    for r in rows:
        name = _text(r.get(key)).replace("\\", "/")
        if name:
            records[name] = {k: v for k, v in r.items() if k != key and k is not None}
    meta = Metadata.from_mapping(records)
    return Metadata(tuple(c for c in columns if c != key), meta.records)


def load_metadata(path: str | Path) -> Metadata:
    """Read a CSV (header row) or JSON file (a list of objects, or an object keyed by path)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"metadata {source}: cannot read ({exc})") from exc
    if source.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"metadata {source}: invalid JSON ({exc})") from exc
        if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
            return _from_rows(doc, source)
        if isinstance(doc, dict) and all(isinstance(r, dict) for r in doc.values()):
            return Metadata.from_mapping(doc)
        raise InputError(f"metadata {source}: expected a list of objects or an object of "
                         "objects keyed by path")
    try:
        rows = list(csv.DictReader(text.splitlines()))
    except csv.Error as exc:
        raise InputError(f"metadata {source}: invalid CSV ({exc})") from exc
    if not rows:
        raise InputError(f"metadata {source}: no rows (a header line and one row per image)")
    return _from_rows(rows, source)
