"""Loader robustness: no decoder failure, special file or oversized limit takes a build down.

Each test reproduces one way a single bad file (or a bad folder entry) used to stop a whole build
or hang it, or to vanish without a word in report.txt.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageFile, features

from conftest import solid
from test_load import png_header_only
from tsnegrid.cli import cli
from tsnegrid.embed import content_digest
from tsnegrid.errors import ImageError
from tsnegrid.load import Discovery, discover, file_problem, open_image
from tsnegrid.settings import Settings


def corrupt_avif(path: Path) -> Path:
    """A valid AVIF container whose AV1 payload is garbage: Pillow raises RuntimeError."""
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path, format="AVIF")
    data = bytearray(path.read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = b"\xff" * (len(data) - start)
    path.write_bytes(bytes(data))
    return path


# Small builds: raw pixels, PCA, no refinement (its JIT compile would dominate the test's time).
FAST = ("--model", "pixels", "--reducer", "pca", "--refine", "off", "--tile", "8")


def build_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--quiet", "build", *args, *FAST], catch_exceptions=False)
    return result.exit_code, result.output


needs_avif = pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")


@needs_avif
def test_corrupt_avif_is_an_image_error(tmp_path: Path) -> None:
    path = corrupt_avif(tmp_path / "bad.avif")
    with pytest.raises(ImageError, match=r"bad.avif: cannot decode \(RuntimeError: "):
        open_image(path)


@pytest.mark.parametrize("exc", [RuntimeError("codec"), struct.error("unpack"),
                                 IndexError("index"), KeyError("tag"), TypeError("type"),
                                 ZeroDivisionError("zero"), OverflowError("big"),
                                 MemoryError("alloc")])
def test_any_decoder_exception_is_an_image_error(tmp_path: Path, exc: Exception,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    solid(tmp_path / "x.png", (1, 2, 3))

    def broken_load(self: ImageFile.ImageFile) -> None:
        raise exc

    monkeypatch.setattr(ImageFile.ImageFile, "load", broken_load)
    with pytest.raises(ImageError, match=f"x.png: cannot decode \\({type(exc).__name__}"):
        open_image(tmp_path / "x.png")


@needs_avif
def test_build_skips_corrupt_avif_and_places_the_rest(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        solid(src / f"g{i}.png", (40 * i, 10, 200 - 30 * i))
    corrupt_avif(src / "bad.avif")
    code, text = build_cli(str(src), "--out", str(tmp_path / "o"), "--cache-dir", str(cache_dir))
    assert code == 0, text
    report = (tmp_path / "o" / "report.txt").read_text()
    assert "images placed:  6" in report
    assert f"{src / 'bad.avif'}: cannot decode (RuntimeError: " in report


def _in_thread(fn: Callable[[], object], seconds: float = 10) -> object:
    """fn's result, or fail if it is still running after ``seconds`` (e.g. blocked on a FIFO)."""
    box: list[object] = []
    worker = threading.Thread(target=lambda: box.append(_catch(fn)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert box, f"still running after {seconds} s"
    return box[0]


def _catch(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except Exception as exc:  # the test inspects it
        return exc


def _release(fifo: Path) -> None:
    """Unblock a reader stuck opening ``fifo`` (no-op when none is)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    yield path
    _release(path)


def test_file_problem_names_each_kind(tmp_path: Path, fifo: Path) -> None:
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    (tmp_path / "ok.png").write_bytes(b"x")
    assert file_problem(tmp_path / "ok.png") is None
    assert file_problem(fifo) == "not a regular file (a FIFO (named pipe))"
    assert file_problem("/dev/zero") == "not a regular file (a character device)"
    assert file_problem(tmp_path) == "not a regular file (a folder)"
    assert file_problem(tmp_path / "dangling.png") == (
        f"broken symlink (its target {tmp_path / 'gone.png'} does not exist)")
    assert str(file_problem(tmp_path / "loop.png")).startswith("symlink loop")
    assert file_problem(tmp_path / "nope.png") == "no such file"


def test_fifo_is_refused_at_once(fifo: Path) -> None:
    for fn in (lambda: open_image(fifo), lambda: content_digest(fifo)):
        result = _in_thread(fn)
        assert isinstance(result, ImageError) and "FIFO" in str(result)


def test_dev_zero_is_never_read() -> None:
    for fn in (lambda: open_image("/dev/zero"), lambda: content_digest(Path("/dev/zero"))):
        result = _in_thread(fn)
        assert isinstance(result, ImageError) and "character device" in str(result)


def test_list_file_naming_devices_and_fifos(tmp_path: Path, fifo: Path) -> None:
    solid(tmp_path / "good.png", (1, 2, 3))
    lst = tmp_path / "list.txt"
    lst.write_text(f"good.png\n/dev/zero\n{fifo}\nmissing.png\n")
    found = discover([lst])
    assert found.paths == (tmp_path / "good.png",)
    assert [(s.path, s.reason) for s in found.skipped] == [
        ("/dev/zero", "not a regular file (a character device)"),
        (str(fifo), "not a regular file (a FIFO (named pipe))"),
        (str(tmp_path / "missing.png"), "no such file")]


def test_special_sources_and_list_files_are_skipped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "list.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9.png\n".encode("latin-1"))
    try:
        found = _in_thread(lambda: discover([tmp_path / "list.txt", "/dev/zero",
                                             tmp_path / "latin1.txt"]))
    finally:
        _release(tmp_path / "list.txt")
    assert isinstance(found, Discovery) and found.paths == ()
    assert [s.reason for s in found.skipped] == [
        "not a regular file (a FIFO (named pipe))", "not a regular file (a character device)",
        "list file is not UTF-8 text (invalid continuation byte at byte 3)"]


def test_build_through_a_list_of_special_files_finishes(tmp_path: Path, cache_dir: Path) -> None:
    """The whole CLI in a child process, bounded in time and memory: before, it read /dev/zero
    until MemoryError and then blocked on the FIFO."""
    for i in range(4):
        solid(tmp_path / f"g{i}.png", (60 * i, 20, 30))
    os.mkfifo(tmp_path / "f.png")
    (tmp_path / "list.txt").write_text("g0.png\ng1.png\n/dev/zero\nf.png\ng2.png\ng3.png\n")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29)); "
            "from tsnegrid.cli import main; sys.argv[0] = 'tsnegrid'; main()")
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, "--quiet", "build", str(tmp_path / "list.txt"),
             "--out", str(tmp_path / "o"), "--cache-dir", str(cache_dir), *FAST],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    finally:
        _release(tmp_path / "f.png")
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "o" / "report.txt").read_text()
    assert "images placed:  4" in report
    assert "/dev/zero: not a regular file (a character device)" in report
    assert f"{tmp_path / 'f.png'}: not a regular file (a FIFO (named pipe))" in report


def test_every_image_named_folder_entry_is_placed_or_reported(tmp_path: Path,
                                                             cache_dir: Path) -> None:
    src = tmp_path / "src"
    (src / "sub.jpg").mkdir(parents=True)  # a folder named like an image; its image is placed
    (src / "empty.jpeg").mkdir()
    for name in ("a.png", "b.jpg", "sub.jpg/c.png"):
        solid(src / name, (len(name) * 20, 90, 10))
    (src / "dangling.jpg").symlink_to(src / "gone.jpg")
    (src / "loop.png").symlink_to(src / "loop.png")
    (src / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(src / "pipe.webp")
    (src / "notes.txt").write_text("not an image, not reported")
    try:
        code, text = build_cli(str(src), "--out", str(tmp_path / "o"), "--cache-dir",
                               str(cache_dir))
    finally:
        _release(src / "pipe.webp")
    assert code == 0, text
    report = (tmp_path / "o" / "report.txt").read_text()
    assert "images placed:  3" in report and "images skipped: 6" in report
    for name, reason in [("dangling.jpg", f"broken symlink (its target {src / 'gone.jpg'} "
                                          "does not exist)"),
                         ("empty.jpeg", "not a regular file (a folder)"),
                         ("loop.png", "symlink loop"),
                         ("pipe.webp", "not a regular file (a FIFO (named pipe))"),
                         ("sub.jpg", "not a regular file (a folder)"),
                         ("zero.jpg", "not a regular file (a character device)")]:
        assert f"  {src / name}: {reason}" in report, name
    assert "notes.txt" not in report


def test_glob_reports_image_named_entries_it_cannot_read(tmp_path: Path) -> None:
    solid(tmp_path / "a.png", (1, 2, 3))
    (tmp_path / "b.png").mkdir()
    (tmp_path / "c.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "plain").mkdir()
    found = discover([str(tmp_path / "*")])
    assert found.paths == (tmp_path / "a.png",)
    assert [(Path(s.path).name, s.reason.split(" (")[0]) for s in found.skipped] == [
        ("b.png", "not a regular file"), ("c.png", "broken symlink")]


PILLOW_LIMIT = 89_478_485  # Pillow's own default: a warning above it, an error above twice it


@pytest.fixture
def pillow_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from Pillow's default process-wide limit, restored afterwards."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PILLOW_LIMIT)


def test_limit_above_pillows_own_is_honoured(tmp_path: Path, pillow_limit: None) -> None:
    """A 100-megapixel PNG (1-bit, so the test stays light) loads under the default limit
    (178,956,970) and under 300,000,000; before, Pillow's 89,478,485 refused it."""
    path = tmp_path / "big.png"
    Image.new("1", (10_000, 10_000), 1).save(path)
    for limit in (Settings.max_image_pixels, 300_000_000):
        im = open_image(path, max_pixels=limit)
        assert im.size == (10_000, 10_000) and im.getpixel((5, 5)) == (255, 255, 255)
        del im


def test_own_limit_still_refuses_by_header(tmp_path: Path, pillow_limit: None) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(20_000, 10_000))  # 200 M pixels, no pixel data
    with pytest.raises(ImageError, match="200,000,000 pixels exceeds the limit of 178,956,970"):
        open_image(path)
    path.write_bytes(png_header_only(20_000, 20_000))  # 400 M: above Pillow's raised error line
    with pytest.raises(ImageError, match="400,000,000 pixels exceeds the limit of 300,000,000"):
        open_image(path, max_pixels=300_000_000)


def test_pillow_limit_only_ever_rises(tmp_path: Path, pillow_limit: None) -> None:
    """Pillow's limit is process-wide: a call with a low limit must not lower it under another
    thread asking for a high one; each call's own limit is applied by its own check."""
    solid(tmp_path / "w.png", (0, 0, 0), size=(200, 100))
    open_image(tmp_path / "w.png", max_pixels=300_000_000)
    assert Image.MAX_IMAGE_PIXELS == 300_000_000
    with pytest.raises(ImageError, match="20,000 pixels exceeds the limit of 10,000"):
        open_image(tmp_path / "w.png", max_pixels=10_000)
    assert Image.MAX_IMAGE_PIXELS == 300_000_000
    assert open_image(tmp_path / "w.png", max_pixels=20_000).size == (200, 100)


def test_cli_max_image_pixels_above_pillows_limit(tmp_path: Path, cache_dir: Path,
                                                  pillow_limit: None) -> None:
    src = tmp_path / "src"
    src.mkdir()
    Image.new("1", (10_000, 10_000), 1).save(src / "big.png")
    for i in range(3):
        solid(src / f"s{i}.png", (70 * i, 0, 0))
    code, text = build_cli(str(src), "--out", str(tmp_path / "o"), "--cache-dir",
                           str(cache_dir), "--max-image-pixels", "300000000")
    assert code == 0, text
    report = (tmp_path / "o" / "report.txt").read_text()
    assert "images placed:  4" in report and "images skipped: 0" in report


def test_build_with_long_strips_skips_or_places_them_in_bounded_memory(
        tmp_path: Path, cache_dir: Path) -> None:
    """A 1 x 178,000,000 PNG (within --max-image-pixels; 346 KB) is refused from its header: its
    rows alone need 1.4 GB. A 1 x 20,000,000 one is placed. Before, the first took 4.3 GB and
    the build exited 70 (MemoryError in colour_descriptor's resize); under this 1.5 GB address
    space it was a MemoryError in the decoder, found only by trying."""
    from hostile_images import zeros_png

    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        solid(src / f"g{i}.png", (60 * i, 20, 30))
    (src / "long.png").write_bytes(zeros_png(1, 178_000_000))
    (src / "strip.png").write_bytes(zeros_png(1, 20_000_000))
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29)); "
            "from tsnegrid.cli import main; sys.argv[0] = 'tsnegrid'; main()")
    done = subprocess.run(
        [sys.executable, "-c", code, "--quiet", "build", str(src), "--out", str(tmp_path / "o"),
         "--cache-dir", str(cache_dir), "--model", "pixels", "--features", "both",
         "--reducer", "pca", "--refine", "off", "--tile", "8"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "o" / "report.txt").read_text()
    assert "images placed:  5" in report and "images skipped: 1" in report
    assert (f"{src / 'long.png'}: 1x178000000 L needs about 3,565 MiB to decode, over the "
            "budget of 1,365 MiB") in report
