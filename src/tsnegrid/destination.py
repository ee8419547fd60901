"""Output destinations, checked before any work: a build that cannot write its folder, or a
command that cannot write its file, says so at once, not after embedding and assignment."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tsnegrid.errors import InputError


def _probe(folder: Path) -> None:
    """Write and remove a file in ``folder``: ``os.access`` does not see every reason a write
    fails (a read-only mount, a full disk, quotas, ACLs, a pseudo file system)."""
    with tempfile.TemporaryFile(dir=folder, prefix=".tsnegrid-check-"):
        pass


def check_out_dir(out: Path, what: str = "the output folder") -> None:
    """Refuse, before any work, an output folder that cannot be used: an existing file, or a
    folder that cannot be made or written. A folder made to find out is removed again (the
    build makes it when it writes)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; the output (grid image, layout "
                         "files) goes into a folder: give a new or existing folder")
    made = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        _probe(out)
    except OSError as exc:
        verb = "write into" if not made else "make"
        raise InputError(f"{out}: cannot {verb} {what} ({exc.strerror or exc})") from exc
    finally:
        for p in made:  # innermost first
            try:
                p.rmdir()
            except OSError:
                break


def check_out_file(path: Path) -> None:
    """Refuse, before any work, an output file that cannot be written: a folder by that name,
    or a folder to hold it that cannot be made or written (the writer makes a missing one)."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the name of the file to write")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{path}: {folder} is not a folder")
    try:
        check_out_dir(folder, f"the folder {folder}")
    except InputError as exc:
        raise InputError(f"{path}: {str(exc).split(': ', 1)[1]}") from exc
