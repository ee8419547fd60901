"""Content-addressed blob store: bytes are filed under their sha256, written atomically.

Image uploads and job outputs both live here; the database refers to them by key.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    """A folder of immutable blobs keyed by the sha256 of their bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where the blob with this key lives (whether or not it exists)."""
        if not _KEY.match(key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` (no-op if already there) and return its key."""
        key = hashlib.sha256(data).hexdigest()
        dest = self.path(key)
        if dest.is_file():
            return key
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def put_file(self, path: Path) -> str:
        """Store a file's bytes and return the key."""
        return self.put(path.read_bytes())

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def link(self, key: str, dest: Path) -> None:
        """Make ``dest`` a hard link to the blob (a copy where links are not possible)."""
        try:
            os.link(self.path(key), dest)
        except OSError:
            shutil.copyfile(self.path(key), dest)
