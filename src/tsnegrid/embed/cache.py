"""On-disk embedding cache: one SQLite file, rows keyed by (model id, file content hash)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


class EmbeddingCache:
    """Vectors stored as float32 blobs; a re-run embeds only files it has not seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=60)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, "
                          "digest TEXT NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, digest))")

    def get_many(self, model: str, digests: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        """Cached vectors for those digests that have one."""
        wanted = list(dict.fromkeys(digests))
        out: dict[str, NDArray[np.float32]] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(f"SELECT digest, vec FROM vectors WHERE model = ? AND "
                                     f"digest IN ({marks})", [model, *chunk])
            for digest, blob in rows:
                out[digest] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, model: str, vectors: Mapping[str, NDArray[np.float32]]) -> None:
        """Store vectors (one transaction)."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO vectors (model, digest, vec) VALUES (?, ?, ?)",
                [(model, d, np.asarray(v, dtype=np.float32).tobytes())
                 for d, v in vectors.items()])

    def close(self) -> None:
        self.conn.close()
