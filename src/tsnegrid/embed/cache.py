"""On-disk embedding cache: one SQLite file, rows keyed by (model id, file content hash).

The cache only saves time: when it cannot be opened, read or written (a full disk, a quota, a
read-only or broken file), it says so in one warning and the build goes on without it."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)


class EmbeddingCache:
    """Vectors stored as float32 blobs; a re-run embeds only files it has not seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.writable = True
        self.problem = ""
        """Why the cache is not used (or, with ``conn`` set, not written); empty while it is."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=60)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, "
                              "digest TEXT NOT NULL, vec BLOB NOT NULL, "
                              "PRIMARY KEY (model, digest))")
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc, read=True)

    def _give_up(self, exc: BaseException, read: bool) -> None:
        """Stop writing (and with ``read``, reading) the cache; warn once."""
        if not self.problem:
            reason = getattr(exc, "strerror", None) or str(exc)
            self.problem = reason
            log.warning("the embedding cache %s cannot be %s (%s); going on without caching: "
                        "this run's vectors are not kept", self.path,
                        "used" if read else "written", reason)
        self.writable = False
        if read and self.conn is not None:
            self.conn.close()
            self.conn = None

    def get_many(self, model: str, digests: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        """Cached vectors for those digests that have one (none when the cache is unusable)."""
        wanted = list(dict.fromkeys(digests))
        out: dict[str, NDArray[np.float32]] = {}
        if self.conn is None:
            return out
        try:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.conn.execute(f"SELECT digest, vec FROM vectors WHERE model = ? AND "
                                         f"digest IN ({marks})", [model, *chunk])
                for digest, blob in rows:
                    out[digest] = np.frombuffer(blob, dtype=np.float32)
        except sqlite3.Error as exc:
            self._give_up(exc, read=True)
            return {}
        return out

    def put_many(self, model: str, vectors: Mapping[str, NDArray[np.float32]]) -> None:
        """Store vectors (one transaction; rolled back, and the cache left alone from then on,
        when it cannot be written)."""
        if self.conn is None or not self.writable:
            return
        try:
            with self.conn:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO vectors (model, digest, vec) VALUES (?, ?, ?)",
                    [(model, d, np.asarray(v, dtype=np.float32).tobytes())
                     for d, v in vectors.items()])
        except sqlite3.Error as exc:
            self._give_up(exc, read=False)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:  # a checkpoint on close that cannot be written
                pass
