"""Publishing outputs: no reader ever sees a file half written or a set half replaced.

One file: written under a temporary name in its own folder, flushed to disk, then renamed over
the old one (``atomic_path``, ``write_text``, ``save_npy``, ``copy_file``); on failure the
temporary file is removed and the old file stays. A build's set of files: locked, staged and
swapped in (``locked``, ``staged``):

1. ``locked(out)`` takes an exclusive, non-blocking ``flock`` on ``out/.tsnegrid.lock``; a second
   build into the same folder is refused at once. The kernel drops the lock with the process, so
   ``kill -9`` leaves none behind.
2. ``staged(out)`` gives a fresh ``out/.tsnegrid-new/``; the build writes everything there,
   ``layout.json`` last (it names every other file with its size and SHA-256). The old set in
   ``out`` is untouched, so a build that fails, fills the disk or is killed here changes nothing
   (its staging folder is removed now, or by the next build).
3. The commit point: ``.tsnegrid-new`` is renamed to ``.tsnegrid-commit`` (one atomic rename).
4. Each entry is moved into ``out`` (a rename each), old files the new set lacks are removed,
   and ``layout.json`` goes last. A build killed during these few renames leaves
   ``.tsnegrid-commit`` behind; the next ``locked(out)`` (any build or ``add``) finishes the
   moves first, and ``check(out)`` reports such a folder meanwhile.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tsnegrid.errors import InputError, TsnegridError

log = logging.getLogger(__name__)

LOCK = ".tsnegrid.lock"
STAGING = ".tsnegrid-new"
COMMIT = ".tsnegrid-commit"
RETIRED = ".tsnegrid-old"
TMP_TAG = ".tsnegrid-tmp"
INDEX = "layout.json"
"""The file that names the others: published last, so its presence means the set is whole."""
LEGACY = ("neighbors.npy", "neighbors.js", "grid-plain.jpg", "grid-plain.png", "grid-plain.webp")
"""Files an earlier build may have left whose ``layout.json`` named nothing: dropped when a new
set lacks them (as the writers themselves did before)."""
FULL = (errno.ENOSPC, errno.EDQUOT)


class OutputBusyError(InputError):
    """Another build holds the output folder's lock."""


class OutputWriteError(TsnegridError, OSError):
    """An output file could not be written (a full disk, a quota, an I/O error); the old file,
    and the old set, are left as they were."""

    def __init__(self, path: Path | str, reason: str, code: int | None = None) -> None:
        super().__init__(code, reason, str(path))
        self.reason = reason

    def __str__(self) -> str:
        return (f"{self.filename}: cannot write it: {self.reason}; nothing was replaced, the "
                "earlier outputs are as they were")

    def __reduce__(self) -> tuple[type[OutputWriteError], tuple[str, str, int | None]]:
        return type(self), (str(self.filename), self.reason, self.errno)


def _reason(exc: OSError) -> str:
    if isinstance(exc, OutputWriteError):
        return exc.reason
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "no space left (disk quota exceeded)"
    return exc.strerror or str(exc)


def write_error(path: Path, exc: OSError) -> OutputWriteError:
    """One line naming the file and why it could not be written."""
    return OutputWriteError(path, _reason(exc), exc.errno)


def temp_name(path: Path) -> Path:
    """A name in ``path``'s folder that no other writer picks and ``clean`` recognises."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_TAG}")


def fsync_path(path: Path, folder: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk; a file system that cannot is let be."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EBADF):  # no fsync here (some pseudo file systems)
            return
        raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary name to write ``path``'s new content to; on leaving, flush it and
    rename it over ``path``. On any failure the temporary file is removed and ``path`` is as it
    was; an ``OSError`` becomes an ``OutputWriteError`` naming ``path``."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputWriteError):
            raise write_error(path, exc) from exc
        raise
    fsync_path(path.parent, folder=True)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: Path, text: str) -> None:
    """``Path.write_text`` (UTF-8), published."""
    write_bytes(path, text.encode("utf-8"))


def copy_file(src: Path, dst: Path) -> None:
    """``shutil.copyfile``, published."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def save_npy(path: Path, array: Any) -> None:
    """``np.save`` to exactly ``path`` (no ``.npy`` added), published."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


# ---- one build at a time ---------------------------------------------------------------------

@contextmanager
def locked(out: Path) -> Iterator[Path]:
    """Hold ``out``'s lock (making the folder), finishing or clearing what a killed build left;
    refuse at once when another build holds it. On leaving, the lock file goes, and so does the
    folder if it was made here and is still empty (a build that failed leaves no trace)."""
    out = Path(out)
    made = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK
    fd = _lock(out, lock)
    try:
        recover(out)
        yield out
    finally:
        lock.unlink(missing_ok=True)  # still held: a build that opened it retries on the new one
        os.close(fd)
        for p in made:  # innermost first
            try:
                p.rmdir()
            except OSError:
                break


def _lock(out: Path, lock: Path) -> int:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the staging still keeps each set whole
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusyError(f"{out}: another tsnegrid build is writing this folder; wait "
                                  "for it to finish, or give another output folder") from None
        try:
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)  # the holder removed the file as we locked it: lock the new one


def recover(out: Path) -> None:
    """Finish a publish that a killed build left half done, drop its staging folder and
    temporary files. Call with the lock held."""
    if (out / COMMIT).is_dir():
        log.warning("%s: finishing the publishing of a build that was stopped midway", out)
        _move_in(out)
    for name in (STAGING, RETIRED):
        if (out / name).exists():
            shutil.rmtree(out / name, ignore_errors=True)
    for tmp in out.glob(f".*{TMP_TAG}"):
        tmp.unlink(missing_ok=True)


# ---- a set at a time -------------------------------------------------------------------------

@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yield an empty staging folder inside ``out`` to write a whole set into (``layout.json``
    last); on leaving without error, publish it into ``out``, else remove it. Call with the
    lock held."""
    stage = out / STAGING
    if stage.exists():
        shutil.rmtree(stage)
    try:
        stage.mkdir()
        yield stage
        if not (stage / INDEX).is_file():
            raise RuntimeError(f"{stage}: no {INDEX} written; nothing published")
        for entry in stage.iterdir():  # the renamed-in files were flushed by their writers
            if entry.is_dir():
                fsync_path(entry, folder=True)
        fsync_path(stage, folder=True)
        os.rename(stage, out / COMMIT)  # the commit point
    except BaseException as exc:
        shutil.rmtree(stage, ignore_errors=True)
        if isinstance(exc, OSError):  # named as the file it would have become
            name = Path(str(exc.filename or stage))
            final = out / name.relative_to(stage) if name.is_relative_to(stage) else name
            raise write_error(final, exc) from exc
        raise
    fsync_path(out, folder=True)
    try:
        _move_in(out)
    except KeyboardInterrupt:  # the set is committed: finish it rather than leave a mix
        _move_in(out)
        raise


def _named(index: Path) -> set[str]:
    """The files an existing ``layout.json`` names (none for one from before it named them)."""
    try:
        files = json.loads(index.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {n for n in files if isinstance(n, str) and "/" not in n and not n.startswith(".")}


def _move_in(out: Path) -> None:
    """Move a committed set into ``out``, ``layout.json`` last; safe to repeat after a kill."""
    commit, retired = out / COMMIT, out / RETIRED
    if not (commit / INDEX).is_file():  # killed after the last move: only the clearing is left
        shutil.rmtree(commit, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
        return
    retired.mkdir(exist_ok=True)
    new = {e.name for e in commit.iterdir()} | _named(commit / INDEX)
    old = _named(out / INDEX) | set(LEGACY)
    for entry in sorted(commit.iterdir()):
        if entry.name == INDEX:
            continue
        target = out / entry.name
        if entry.is_dir() or target.is_dir():  # a folder cannot be renamed over: retire it first
            if target.exists() or target.is_symlink():
                os.rename(target, retired / f"{entry.name}.{secrets.token_hex(4)}")
            os.rename(entry, target)
        else:
            os.replace(entry, target)
    for name in sorted(old - new):  # the earlier set's files this one does not have
        stale = out / name
        if stale.is_dir() and not stale.is_symlink():
            os.rename(stale, retired / f"{name}.{secrets.token_hex(4)}")
        else:
            stale.unlink(missing_ok=True)
    fsync_path(out, folder=True)
    os.replace(commit / INDEX, out / INDEX)
    fsync_path(out, folder=True)
    shutil.rmtree(commit, ignore_errors=True)
    shutil.rmtree(retired, ignore_errors=True)


# ---- what layout.json says about the others --------------------------------------------------

def describe(folder: Path) -> dict[str, dict[str, Any]]:
    """Every entry of ``folder`` but ``layout.json`` and hidden ones: a file's size and SHA-256,
    a folder's file count and total size."""
    out: dict[str, dict[str, Any]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name == INDEX or entry.name.startswith("."):
            continue
        if entry.is_dir():
            sizes = [p.stat().st_size for p in entry.rglob("*") if p.is_file()]
            out[entry.name] = {"files": len(sizes), "bytes": sum(sizes)}
        else:
            out[entry.name] = {"bytes": entry.stat().st_size, "sha256": sha256(entry)}
    return out


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check(out: Path) -> list[str]:
    """What keeps ``out`` from being one build's whole set (empty: it is one): a publish left
    half done, or a file that is missing or differs from what ``layout.json`` says of it."""
    problems = []
    if (out / COMMIT).exists():
        problems.append(f"{out / COMMIT}: a build was stopped while publishing; the next build "
                        "or add into this folder finishes it")
    try:
        files = json.loads((out / INDEX).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [*problems, f"{out / INDEX}: cannot read the list of files ({exc})"]
    now = describe(out)
    for name, said in files.items():
        if name not in now:
            problems.append(f"{out / name}: missing")
        elif now[name] != said:
            problems.append(f"{out / name}: not the file {INDEX} names ({now[name]} != {said})")
    return problems
