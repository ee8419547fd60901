"""Robustness fuzz: bad files of many kinds beside good ones, through ``tsnegrid build``.

Usage: python benchmarks/robustness.py [--variants 25] [--good 200] [--builds 5] [--timeout 600]
       python benchmarks/robustness.py --hostile [--against OLD/src] [--timeout 150]

Makes ``--variants`` files of each of the kinds in ``KINDS`` (corrupt, truncated, bit-flipped and
mislabelled images of every supported format, decompression bombs, special files: FIFOs, sockets,
symlinks to devices, broken and looping symlinks, folders named like images; plus list files
naming such paths) and mixes them with ``--good`` demo emoji into ``--builds`` folders. Each
folder goes through the CLI in its own child process (raw-pixel model, PCA, no refinement: the
loader is under test, not the model), with its peak RSS. Counts: crashes (an exit code other than
0, or a traceback), hangs (past ``--timeout``), good images not placed, bad files neither placed
nor listed in report.txt. Writes the ``robustness-cli`` section of benchmarks/RESULTS.md; other
parts of the robustness fuzz (the service) keep sections of their own.

``--hostile``: files small on disk that are costly to decode (``HOSTILE``: a 12000x12000 PNG
in a 256x256 ICO, a progressive JPEG of 1,000 repeated scans, 16-bit grey, 1 x N strips), each
in a child process through the build's decode (``open_image`` at the lite0 model's 224 plus
``colour_descriptor``) and the service's upload check (``check_image``, 40,000,000 pixels),
with time and peak RSS; ``--against`` runs the same on another source tree (an older commit's
``src``) for the column before. Writes the ``robustness-decode`` section.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024" / "images"
FAST = ["--model", "pixels", "--features", "semantic", "--reducer", "pca", "--refine", "off",
        "--tile", "16"]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png_header(width: int, height: int, idat: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _encoded(fmt: str, rng: random.Random, size: int = 48, **options: object) -> bytes:
    im = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    im.paste((rng.randrange(256), 0, 0), (0, 0, size // 2, size // 2))
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def _truncated(fmt: str) -> Callable[[random.Random], bytes]:
    def make(rng: random.Random) -> bytes:
        data = _encoded(fmt, rng)
        return data[: rng.randrange(8, max(9, len(data) * 3 // 4))]
    return make


def _flipped(fmt: str) -> Callable[[random.Random], bytes]:
    def make(rng: random.Random) -> bytes:
        data = bytearray(_encoded(fmt, rng))
        for _ in range(rng.randrange(1, 12)):
            data[rng.randrange(8, len(data))] ^= rng.randrange(1, 256)
        return bytes(data)
    return make


def _corrupt_avif(rng: random.Random) -> bytes:
    data = bytearray(_encoded("AVIF", rng))
    start = data.find(b"mdat") + 4 + rng.randrange(0, 4)
    data[start:] = bytes(rng.randrange(256) for _ in range(len(data) - start))
    return bytes(data)


def _bmp_huge(rng: random.Random) -> bytes:
    data = bytearray(_encoded("BMP", rng))
    struct.pack_into("<ii", data, 18, 2_000_000_000, rng.choice([1, 2_000_000_000]))
    return bytes(data)


def _tiff_bad_compression(rng: random.Random) -> bytes:
    data = bytearray(_encoded("TIFF", rng))
    tag = data.find(struct.pack("<HH", 259, 3))  # Compression, SHORT
    if tag >= 0:
        struct.pack_into("<H", data, tag + 8, rng.choice([2, 5, 7, 12345, 65000]))
    return bytes(data)


def _tiff_bad_ifd(rng: random.Random) -> bytes:
    data = bytearray(_encoded("TIFF", rng))
    struct.pack_into("<I", data, 4, rng.choice([0xFFFFFFF0, len(data) + 10, 3]))
    return bytes(data)


def _gif_garbage(rng: random.Random) -> bytes:
    return b"GIF89a" + bytes(rng.randrange(256) for _ in range(rng.randrange(7, 400)))


def _webp_garbage(rng: random.Random) -> bytes:
    body = b"WEBPVP8 " + bytes(rng.randrange(256) for _ in range(200))
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _png_palette_no_plte(rng: random.Random) -> bytes:
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 3, 0, 0, 0)
    raw = b"".join(b"\0" + bytes(16) for _ in range(16))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def _png_ztxt_bomb(rng: random.Random) -> bytes:
    text = b"k\0\0" + zlib.compress(b"A" * (64 << 20), 9)  # 64 MB of text
    good = _encoded("PNG", rng)
    return good[:33] + _png_chunk(b"zTXt", text) + good[33:]


def _jpeg_bad_exif(rng: random.Random) -> bytes:
    exif = b"Exif\0\0" + bytes(rng.randrange(256) for _ in range(rng.randrange(8, 120)))
    seg = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    data = _encoded("JPEG", rng)
    return data[:2] + seg + data[2:]


def _random(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5000)))


BYTES: dict[str, tuple[str, Callable[[random.Random], bytes]]] = {
    "empty file": (".jpg", lambda rng: b""),
    "text named .jpg": (".jpg", lambda rng: b"hello, I am not a JPEG\n" * rng.randrange(1, 9)),
    "SVG named .png": (".png", lambda rng: b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
    "gzip named .webp": (".webp", lambda rng: zlib.compress(_random(rng))),
    "random bytes": (".png", _random),
    "truncated JPEG": (".jpg", _truncated("JPEG")),
    "truncated PNG": (".png", _truncated("PNG")),
    "truncated GIF": (".gif", _truncated("GIF")),
    "truncated TIFF": (".tif", _truncated("TIFF")),
    "truncated WebP": (".webp", _truncated("WEBP")),
    "truncated AVIF": (".avif", _truncated("AVIF")),
    "bit-flipped JPEG": (".jpg", _flipped("JPEG")),
    "bit-flipped PNG": (".png", _flipped("PNG")),
    "bit-flipped BMP": (".bmp", _flipped("BMP")),
    "corrupt AVIF payload": (".avif", _corrupt_avif),
    "PNG bomb header (10^10 px)": (".png", lambda rng: _png_header(100_000, 100_000)),
    "PNG header over the limit (225 Mpx)": (".png", lambda rng: _png_header(15_000, 15_000)),
    "PNG header under the limit, no data (64 Mpx)": (".png",
                                                     lambda rng: _png_header(8_000, 8_000)),
    "BMP with 2e9-pixel sides": (".bmp", _bmp_huge),
    "TIFF unknown compression": (".tiff", _tiff_bad_compression),
    "TIFF bad IFD offset": (".tif", _tiff_bad_ifd),
    "GIF header then garbage": (".gif", _gif_garbage),
    "WebP RIFF then garbage": (".webp", _webp_garbage),
    "PNG palette without PLTE": (".png", _png_palette_no_plte),
    "PNG zTXt bomb (64 MB of text)": (".png", _png_ztxt_bomb),
    "JPEG with garbage EXIF": (".jpg", _jpeg_bad_exif),
}


def _dangling(path: Path, rng: random.Random) -> None:
    path.symlink_to(path.with_name(path.name + ".gone"))


def _loop(path: Path, rng: random.Random) -> None:
    path.symlink_to(path)


def _dev_zero(path: Path, rng: random.Random) -> None:
    path.symlink_to("/dev/zero")


def _fifo(path: Path, rng: random.Random) -> None:
    os.mkfifo(path)


def _socket(path: Path, rng: random.Random) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))


def _folder(path: Path, rng: random.Random) -> None:
    path.mkdir()


SPECIAL: dict[str, tuple[str, Callable[[Path, random.Random], None]]] = {
    "broken symlink": (".jpg", _dangling),
    "looping symlink": (".png", _loop),
    "symlink to /dev/zero": (".jpg", _dev_zero),
    "FIFO": (".png", _fifo),
    "socket": (".webp", _socket),
    "folder named .jpg": (".jpg", _folder),
}
LISTED = ("list entry: missing file", "list entry: /dev/zero", "list entry: FIFO",
          "non-UTF-8 list file")
KINDS = (*BYTES, *SPECIAL, *LISTED)


@dataclass
class Build:
    """One folder (and its list files) and what became of it."""

    folder: Path
    sources: list[str]
    good: set[str] = field(default_factory=set)
    bad: dict[str, str] = field(default_factory=dict)  # path -> kind
    code: int | None = None
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    tracebacks: int = 0
    hung: bool = False
    placed: set[str] = field(default_factory=set)
    reported: set[str] = field(default_factory=set)


def make_builds(root: Path, variants: int, good: int, builds: int, seed: int) -> list[Build]:
    """Spread ``variants`` files of every kind and ``good`` demo images over ``builds`` folders."""
    rng = random.Random(seed)
    out = [Build(root / f"b{k}", [str(root / f"b{k}")]) for k in range(builds)]
    for b in out:
        b.folder.mkdir(parents=True)
    for i, name in enumerate(sorted(os.listdir(DEMO))[:good]):
        b = out[i % builds]
        shutil.copy(DEMO / name, b.folder / name)
        b.good.add(str(b.folder / name))
    n = 0
    for kind, (suffix, make_bytes) in BYTES.items():
        for _ in range(variants):
            b, n = out[n % builds], n + 1
            path = b.folder / f"bad{n:04d}{suffix}"
            path.write_bytes(make_bytes(rng))
            b.bad[str(path)] = kind
    for kind, (suffix, make_special) in SPECIAL.items():
        for _ in range(variants):
            b, n = out[n % builds], n + 1
            path = b.folder / f"bad{n:04d}{suffix}"
            make_special(path, rng)
            b.bad[str(path)] = kind
    for kind in LISTED:
        for v in range(variants):
            b, n = out[n % builds], n + 1
            lst = root / f"{b.folder.name}-lists" / f"list{n:04d}.txt"
            lst.parent.mkdir(exist_ok=True)
            if kind == "non-UTF-8 list file":
                lst.write_bytes(b"caf\xe9.png\n")
                b.bad[str(lst)] = kind
            else:
                target = {"list entry: missing file": str(root / f"missing{n}.png"),
                          "list entry: /dev/zero": "/dev/" + "../dev/" * v + "zero",
                          "list entry: FIFO": str(root / f"fifo{n}.png")}[kind]
                if kind == "list entry: FIFO":
                    os.mkfifo(target)
                lst.write_text(f"{target}\n")
                b.bad[target] = kind
            b.sources.append(str(lst))
    return out


def run_build(b: Build, cache: Path, timeout: float) -> None:
    """The CLI on one folder in a child process: exit code, time, peak RSS, report."""
    out = b.folder.with_name(b.folder.name + "-out")
    cmd = [sys.executable, "-c", "from tsnegrid.cli import main; main()", "--quiet", "build",
           *b.sources, "--out", str(out), "--cache-dir", str(cache), *FAST]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        b.seconds = time.perf_counter() - t0
        b.hung = b.seconds >= timeout
        b.code = proc.returncode
        b.peak_rss_mib = usage.ru_maxrss / 1024
        err.seek(0)
        b.tracebacks = err.read().count("Traceback")
    if (out / "layout.csv").exists():
        with open(out / "layout.csv", newline="") as f:
            b.placed = {r["path"] for r in csv.DictReader(f)}
    report = out / "report.txt"
    if report.exists() and "skipped files:\n" in (text := report.read_text()):
        b.reported = {ln.strip().split(": ", 1)[0]
                      for ln in text.split("skipped files:\n", 1)[1].splitlines()
                      if ln.startswith("  ")}


def summarise(builds: list[Build], variants: int) -> str:
    crashes = sum(b.code != 0 or b.tracebacks > 0 for b in builds)
    hangs = sum(b.hung for b in builds)
    good = sum(len(b.good) for b in builds)
    lost = sum(len(b.good - b.placed) for b in builds)
    bad = sum(len(b.bad) for b in builds)
    unreported = [(p, k) for b in builds for p, k in b.bad.items()
                  if p not in b.placed and p not in b.reported]
    decoded = sum(p in b.placed for b in builds for p in b.bad)
    peak = max(b.peak_rss_mib for b in builds)
    rows = [
        ("builds (child processes)", f"{len(builds)}"),
        ("bad files / kinds", f"{bad} / {len(KINDS)} ({variants} of each kind)"),
        ("good images", f"{good}"),
        ("crashes (exit code not 0, or a traceback)", f"{crashes}"),
        ("hangs", f"{hangs}"),
        ("good images lost", f"{lost}"),
        ("bad files unreported", f"{len(unreported)}"),
        ("bad files that decoded after all (placed)", f"{decoded}"),
        ("peak RSS of one build", f"{peak:.0f} MiB"),
        ("wall time per build", f"{min(b.seconds for b in builds):.1f}-"
                                f"{max(b.seconds for b in builds):.1f} s"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    kinds = ", ".join(KINDS)
    text = (f"## Robustness: bad files through the CLI (`benchmarks/robustness.py`)\n\n"
            f"Each build: `tsnegrid --quiet build FOLDER LIST.txt ... {' '.join(FAST)}` in a "
            f"child process, default `--max-image-pixels` (178,956,970).\n\n"
            f"| measure | value |\n|---|---|\n{table}\n\nKinds: {kinds}.\n")
    if unreported:
        text += "\nUnreported: " + ", ".join(f"{k} ({p})" for p, k in unreported[:20]) + "\n"
    return text


sys.path.insert(0, str(ROOT / "tests"))
from hostile_images import ico_of, scan_bomb, zeros_png  # noqa: E402

HOSTILE: dict[str, tuple[str, Callable[[], bytes]]] = {
    "12000x12000 RGBA PNG in a 256x256 ICO": (
        ".jpg", lambda: ico_of(zeros_png(12_000, 12_000, colour=6))),
    "progressive JPEG 6144x6144, 1,000 scans": (".jpg", lambda: scan_bomb(6144, 1000)),
    "16-bit grey PNG 10000x10000": (".png", lambda: zeros_png(10_000, 10_000, bits=16)),
    "PNG 1 x 178,000,000": (".png", lambda: zeros_png(1, 178_000_000)),
    "PNG 1 x 20,000,000": (".png", lambda: zeros_png(1, 20_000_000)),
    "EPS named .jpg": (".jpg", lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n"),
}
_PROBE = """
import sys, time
t = time.monotonic()
try:
    if sys.argv[1] == "build":
        from tsnegrid.embed.features import colour_descriptor
        from tsnegrid.load import open_image
        im = open_image(sys.argv[2], min_side=224)
        colour_descriptor(im)
        outcome = f"decoded, {im.size[0]}x{im.size[1]}"
    else:
        from tsnegrid.service.ingest import DecodeBudget, check_image
        c = check_image(open(sys.argv[2], "rb").read(), 40_000_000, DecodeBudget(256 << 20))
        outcome = f"accepted, {c.width}x{c.height}"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {str(exc).replace(sys.argv[2] + ': ', '')[:90]}"
# VmHWM, not ru_maxrss: that one keeps the forking parent's peak across exec
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
rss = int(hwm.split()[1]) / 1024
print(f"{time.monotonic() - t:.1f}|{rss:.0f}|{outcome}")
"""


def _probe(path: Path, where: str, src: str | None, timeout: float) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if src:
        env["PYTHONPATH"] = src
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, where, str(path)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s | - | still decoding: killed"
    if done.returncode:
        return f"- | - | exit {done.returncode}: {done.stderr.strip().splitlines()[-1][:90]}"
    seconds, rss, outcome = done.stdout.strip().splitlines()[-1].split("|", 2)
    return f"{seconds} s | {rss} MiB | {outcome.replace('|', '/')}"


def hostile(against: str | None, timeout: float) -> str:
    """The hostile files through the build's decode and the upload check, now and before."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="tsnegrid-hostile-") as tmp:
        for name, (suffix, make) in HOSTILE.items():
            path = Path(tmp) / f"hostile{suffix}"
            path.write_bytes(make())
            size = f"{path.stat().st_size / 1024:,.0f} KB"
            for where in ("build", "upload"):
                cells = [_probe(path, where, str(ROOT / "src"), timeout)]
                if against:
                    cells.insert(0, _probe(path, where, against, timeout))
                rows.append(f"| {name} ({size}) | {where} | " + " | ".join(cells) + " |")
                print(rows[-1], file=sys.stderr)
    cols = ["time | peak RSS | outcome"] * (2 if against else 1)
    head = ("| file | path | " + (" before: " if against else " ") + " | now: ".join(cols)
            + " |\n|---|---|" + "---|---|---|" * len(cols))
    return ("## Robustness: hostile files through the decoders (`benchmarks/robustness.py "
            "--hostile`)\n\nEach file in its own child process: `build` is the build's decode "
            "(`open_image` at min_side 224, then `colour_descriptor`; --max-image-pixels "
            "178,956,970), `upload` the service's check (`check_image`, 40,000,000 pixels, "
            "256 MiB decode budget). Peak RSS (VmHWM) includes the interpreter and imports "
            "(about 40 MiB)." + (f" Before: `{against}`." if against else "") + "\n\n" + head + "\n"
            + "\n".join(rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hostile", action="store_true", help="costly files, not the fuzz")
    parser.add_argument("--against", help="with --hostile: another tree's src, for 'before'")
    parser.add_argument("--variants", type=int, default=25, help="files of each bad kind")
    parser.add_argument("--good", type=int, default=200, help="good demo images")
    parser.add_argument("--builds", type=int, default=5, help="folders, one build each")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per build")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.hostile:
        text = hostile(args.against, args.timeout)
        print(text)
        write_section("robustness-decode", text)
        return
    with tempfile.TemporaryDirectory(prefix="tsnegrid-fuzz-") as tmp:
        root = Path(tmp)
        builds = make_builds(root, args.variants, args.good, args.builds, args.seed)
        for b in builds:
            run_build(b, root / "cache", args.timeout)
            print(f"{b.folder.name}: exit {b.code}, {b.seconds:.1f} s, "
                  f"{b.peak_rss_mib:.0f} MiB, {len(b.placed)} placed, "
                  f"{len(b.reported)} reported", file=sys.stderr)
        text = summarise(builds, args.variants)
    print(text)
    write_section("robustness-cli", text)


if __name__ == "__main__":
    main()
