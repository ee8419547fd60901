"""On-disk embedding cache: one SQLite file, rows keyed by (model id, file content hash).

Beside the vectors it keeps each image's tiles (``tiles``: keyed by the tile spec's key, which
carries ``tsnegrid.tiles.TILE_VERSION``, and the content hash), so a later render never decodes
the originals, and each file's content hash by its ``stat`` (``files``: path, device, inode,
size, modification and change times in ns), so a file that has not changed is not hashed again;
any write to a file changes its change time. ``SCHEMA`` is the file's format version.

The cache only saves time: when it cannot be opened, read or written (a full disk, a quota, a
read-only or broken file), it says so in one warning and the build goes on without it."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.tiles import Thumb

log = logging.getLogger(__name__)

SCHEMA = 2
"""1: vectors only; 2: with tiles and the files' hashes (the tables are added to a version 1
file, whose vectors stay valid)."""
_TABLES = (
    "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, digest TEXT NOT NULL, "
    "vec BLOB NOT NULL, PRIMARY KEY (model, digest))",
    "CREATE TABLE IF NOT EXISTS tiles (spec TEXT NOT NULL, digest TEXT NOT NULL, "
    "tile BLOB NOT NULL, transparent INTEGER NOT NULL, faint INTEGER NOT NULL, "
    "luma REAL NOT NULL, PRIMARY KEY (spec, digest))",
    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY NOT NULL, stat TEXT NOT NULL, "
    "digest TEXT NOT NULL)",
)


MAX_FILES = 2_000_000
"""Most files whose digests are recorded (about 300 MB); a replaced record is the newest."""


def stat_key(st: os.stat_result) -> str:
    """What identifies a file's version without reading it: device, inode, size, modification
    and change times (any write changes the change time, which no program can set back)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    return (items[i:i + size] for i in range(0, len(items), size))


class EmbeddingCache:
    """Vectors stored as float32 blobs; a re-run embeds only files it has not seen."""

    def __init__(self, path: Path, *, quiet: bool = False) -> None:
        """``quiet``: a cache that cannot be used is logged at info level, not warned about
        (the render's second look into a cache the embed stage has already warned about)."""
        self.path, self.quiet = path, quiet
        self.conn: sqlite3.Connection | None = None
        self.writable = True
        self.lock = threading.Lock()
        self.problem = ""
        """Why the cache is not used (or, with ``conn`` set, not written); empty while it is."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # one connection, used under ``lock`` by the render's tile threads too
            self.conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA:
                raise sqlite3.DatabaseError(f"written by a newer tsnegrid (format {version}, "
                                            f"this one reads {SCHEMA})")
            for table in _TABLES:
                self.conn.execute(table)
            if version < SCHEMA:
                self.conn.execute(f"PRAGMA user_version = {SCHEMA}")
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc, read=True)

    def _give_up(self, exc: BaseException, read: bool) -> None:
        """Stop writing (and with ``read``, reading) the cache; warn once."""
        if not self.problem:
            reason = getattr(exc, "strerror", None) or str(exc)
            self.problem = reason
            log.log(logging.INFO if self.quiet else logging.WARNING,
                    "the embedding cache %s cannot be %s (%s); going on without caching: "
                    "this run's vectors are not kept", self.path,
                    "used" if read else "written", reason)
        self.writable = False
        if read and self.conn is not None:
            self.conn.close()
            self.conn = None

    def get_many(self, model: str, digests: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        """Cached vectors for those digests that have one (none when the cache is unusable)."""
        out: dict[str, NDArray[np.float32]] = {}
        for chunk in _chunks(list(dict.fromkeys(digests))):
            marks = ",".join("?" * len(chunk))
            rows = self._select(f"SELECT digest, vec FROM vectors WHERE model = ? AND "
                                f"digest IN ({marks})", [model, *chunk])
            if self.conn is None:  # unreadable: none of it
                return {}
            for digest, blob in rows:
                out[str(digest)] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, model: str, vectors: Mapping[str, NDArray[np.float32]]) -> None:
        """Store vectors (one transaction; rolled back, and the cache left alone from then on,
        when it cannot be written)."""
        self._put("INSERT OR REPLACE INTO vectors (model, digest, vec) VALUES (?, ?, ?)",
                  [(model, d, np.asarray(v, dtype=np.float32).tobytes())
                   for d, v in vectors.items()])

    def _put(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        if self.conn is None or not self.writable or not rows:
            return
        try:
            with self.lock, self.conn:
                self.conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            self._give_up(exc, read=False)

    def _select(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        if self.conn is None:
            return []
        try:
            with self.lock:
                return list(self.conn.execute(sql, args))
        except sqlite3.Error as exc:
            self._give_up(exc, read=True)
            return []

    def tiles_present(self, spec: str, digests: Iterable[str]) -> set[str]:
        """Those digests that have a tile of ``spec``."""
        out: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(digests))):
            marks = ",".join("?" * len(chunk))
            out.update(str(r[0]) for r in self._select(
                f"SELECT digest FROM tiles WHERE spec = ? AND digest IN ({marks})",
                [spec, *chunk]))
        return out

    def get_tile(self, spec: str, digest: str) -> Thumb | None:
        """The tile of ``spec`` for that content, if kept."""
        rows = self._select("SELECT tile, transparent, faint, luma FROM tiles WHERE spec = ? "
                            "AND digest = ?", [spec, digest])
        if not rows:
            return None
        data, transparent, faint, luma = rows[0]
        return Thumb(bytes(data), bool(transparent), bool(faint), float(luma))

    def put_tiles(self, spec: str, tiles: Mapping[str, Thumb]) -> None:
        """Store tiles of ``spec`` by content digest (one transaction)."""
        self._put("INSERT OR REPLACE INTO tiles (spec, digest, tile, transparent, faint, luma) "
                  "VALUES (?, ?, ?, ?, ?, ?)",
                  [(spec, d, t.data, int(t.transparent), int(t.faint), t.luma)
                   for d, t in tiles.items()])

    def known_digests(self, stats: Mapping[str, str]) -> dict[str, str]:
        """The content digests of the files (absolute path -> stat key) whose stat is the one
        recorded with their digest."""
        out: dict[str, str] = {}
        for chunk in _chunks(list(stats)):
            marks = ",".join("?" * len(chunk))
            for path, stat, digest in self._select(
                    f"SELECT path, stat, digest FROM files WHERE path IN ({marks})", chunk):
                if stats.get(str(path)) == stat:
                    out[str(path)] = str(digest)
        return out

    def put_digests(self, rows: Mapping[str, tuple[str, str]]) -> None:
        """Record files' digests: absolute path -> (stat key, digest). Past ``MAX_FILES``
        records, the oldest quarter goes (a folder built once and deleted leaves its rows)."""
        self._put("INSERT OR REPLACE INTO files (path, stat, digest) VALUES (?, ?, ?)",
                  [(p, st, d) for p, (st, d) in rows.items()])
        span = self._select("SELECT max(rowid) - min(rowid), max(rowid) FROM files", [])
        if span and span[0][0] is not None and span[0][0] >= MAX_FILES:
            self._put("DELETE FROM files WHERE rowid <= ?", [(span[0][1] - MAX_FILES * 3 // 4,)])

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:  # a checkpoint on close that cannot be written
                pass
