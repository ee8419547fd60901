"""Content-addressed blob store: bytes are filed under their sha256, in a local (or shared)
folder or on any fsspec filesystem (``s3://bucket/prefix``, ``gs://...``, ``memory://...``).

Image uploads and job outputs both live here; the database refers to them by key. Local writes
are atomic (a temporary file renamed into place, also on NFS) and durable once ``put`` returns:
the file and the folder entries naming it are fsynced, so a blob whose row was committed
survives a power loss. Object stores write whole objects. A full disk is a
``StorageFullError``, not an ``OSError``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tsnegrid.errors import InputError, MissingDependencyError
from tsnegrid.publish import fsync_path
from tsnegrid.service.errors import BackendError, StorageFullError, storage_exhausted

_KEY = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


def _check(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"not a blob key: {key!r}")
    return key


def _relative(key: str) -> str:
    return f"{key[:2]}/{key[2:4]}/{_check(key)}"


def local_root(url: str | Path) -> Path | None:
    """The folder of a local store (a path or ``file://`` URL); None for other filesystems."""
    if isinstance(url, Path):
        return url
    if "://" not in url:
        return Path(url)
    parts = urlsplit(url)
    if parts.scheme in ("file", "local"):
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"a file:// blob URL names no host: {url!r}")
        return Path(unquote(parts.path))
    return None


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and root path of ``url``; a clear error if its package is absent."""
    try:
        import fsspec
    except ImportError as exc:
        raise MissingDependencyError("fsspec") from exc
    scheme = urlsplit(url).scheme
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        extra = "s3" if scheme in ("s3", "s3a") else None
        package = "s3fs" if extra else f"the fsspec backend for {scheme}://"
        raise MissingDependencyError(package, extra=extra) from exc
    except ValueError as exc:
        raise InputError(f"not a usable blob store URL {url!r}: {exc}") from exc


class BlobStore:
    """Immutable blobs keyed by the sha256 of their bytes."""

    def __init__(self, url: str | Path) -> None:
        self.url = str(url)
        self.root = local_root(url)
        self._fs: Any = None
        self._base = ""
        self._made: set[str] = set()
        try:
            if self.root is not None:
                self.root.mkdir(parents=True, exist_ok=True)
            else:
                self._fs, self._base = _filesystem(self.url)
                self._base = self._base.rstrip("/")
        except OSError as exc:
            raise BackendError(f"cannot use the blob store {self.url}: {exc}") from exc

    @property
    def local(self) -> bool:
        """True when blobs are files of this machine (or of a mounted shared folder)."""
        return self.root is not None

    def path(self, key: str) -> Path:
        """Where the blob lives on a local store (whether or not it exists)."""
        if self.root is None:
            raise ValueError(f"blobs in {self.url} are not local files")
        return self.root / _relative(key)

    def _remote(self, key: str) -> str:
        return f"{self._base}/{_relative(key)}"

    def exists(self, key: str) -> bool:
        if self.root is not None:
            return self.path(key).is_file()
        return bool(self._fs.exists(self._remote(key)))

    def put(self, data: bytes) -> str:
        """Store ``data`` (no-op if already there) and return its key."""
        key = hashlib.sha256(data).hexdigest()
        if self.exists(key):
            self._touch(key)
            return key
        if self.root is None:
            dest = self._remote(key)
            parent = dest.rsplit("/", 1)[0]
            if parent not in self._made:
                self._fs.makedirs(parent, exist_ok=True)
                self._made.add(parent)
            self._fs.pipe_file(dest, data)
            return key
        try:
            self._write_local(self.path(key), data)
        except OSError as exc:
            full = storage_exhausted(exc)
            if full:
                raise StorageFullError(f"{full} in the blob store") from exc
            raise
        return key

    def _write_local(self, path: Path, data: bytes) -> None:
        """Write ``path`` atomically and durably: a temporary file, fsynced, renamed into
        place, then the folders whose entries changed fsynced (new folders' parents too)."""
        assert self.root is not None
        made = [d for d in (path.parent.parent, path.parent) if not d.is_dir()]
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_path(path.parent, folder=True)
        for folder in reversed(made):
            fsync_path(folder.parent, folder=True)

    def _touch(self, key: str) -> None:
        """Mark a local blob as just written (the collector spares recently written blobs, so
        a row about to refer to it is never left without it)."""
        if self.root is not None:
            try:
                os.utime(self.path(key))
            except OSError:
                pass

    def modified(self, key: str) -> float | None:
        """When a local blob was last written (seconds since the epoch); None when unknown."""
        if self.root is None:
            return None
        try:
            return self.path(key).stat().st_mtime
        except OSError:
            return None

    def temporary_files(self) -> Iterator[Path]:
        """Leftovers of writes that never finished (``.tmp-`` files of a killed process)."""
        if self.root is not None:
            yield from self.root.glob("*/*/.tmp-*")

    def put_file(self, path: Path) -> str:
        """Store a file's bytes and return the key."""
        return self.put(path.read_bytes())

    def read(self, key: str) -> bytes:
        if self.root is not None:
            return self.path(key).read_bytes()
        return bytes(self._fs.cat_file(self._remote(key)))

    def chunks(self, key: str) -> Iterator[bytes]:
        """The blob's bytes in pieces (for streaming a large blob without holding it)."""
        opener = (open(self.path(key), "rb") if self.root is not None  # noqa: SIM115
                  else self._fs.open(self._remote(key), "rb"))
        with opener as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        if self.root is not None:
            self.path(key).unlink(missing_ok=True)
        elif self._fs.exists(self._remote(key)):
            self._fs.rm_file(self._remote(key))

    def link(self, key: str, dest: Path) -> None:
        """Make ``dest`` hold the blob: a hard link where possible, else a copy or download."""
        if self.root is None:
            self._fs.get_file(self._remote(key), str(dest))
            return
        try:
            os.link(self.path(key), dest)
        except OSError:
            shutil.copyfile(self.path(key), dest)
