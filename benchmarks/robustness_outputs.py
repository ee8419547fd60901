"""Robustness of the outputs: rebuilds killed at random moments, builds racing into one folder,
full disks.

Usage: python benchmarks/robustness_outputs.py [--kills 60] [--races 10] [--src PATH]

Each build is the real CLI in its own process (raw-pixel model, PCA, no refinement: the writing
is under test, not the model). The old set: 48 demo emoji at 8 px; the new one: 400 at 12 px,
with ``--html --tiles`` (viewer files, pyramid, folders). A folder is judged from its files
themselves (the mosaic's size against the grid, layout.csv's rows against layout.json's,
report.txt's seed and grid, the viewer's files and layout.js), not from what layout.json says
of them: "old", "new" or "mixed". ``--src`` runs the builds from another checkout's ``src`` (an
older tsnegrid, to compare). Writes the ``robustness-outputs`` section of benchmarks/RESULTS.md
(unless ``--src``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _results import write_section

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024" / "images"
FAST = ["--model", "pixels", "--reducer", "pca", "--refine", "off", "--quiet"]
OLD = ["--tile", "8", "--seed", "1"]
NEW = ["--tile", "12", "--seed", "2", "--html", "--tiles"]
MAIN = "from tsnegrid.cli import main; main()"


def which(out: Path) -> str:
    """"old", "new" or "mixed" (or "none": no layout.json), from the files themselves."""
    from PIL import Image

    try:
        doc = json.loads((out / "layout.json").read_text())
    except FileNotFoundError:
        return "none"
    tile, seed, html = (doc["settings"][k] for k in ("tile", "seed", "html"))
    rows, cols = doc["grid"]["rows"], doc["grid"]["cols"]
    try:
        ok = Image.open(out / "grid.jpg").size == (cols * tile, rows * tile)
        with open(out / "layout.csv", newline="") as f:
            placed = [(r["path"], int(r["row"]), int(r["col"])) for r in csv.DictReader(f)]
        ok &= placed == [(r["path"], r["row"], r["col"]) for r in doc["images"]]
        report = (out / "report.txt").read_text()
        ok &= f"seed:           {seed}\n" in report and f"{rows} x {cols}" in report
        ok &= all((out / n).exists() == html for n in ("index.html", "layout.js", "neighbors.npy",
                                                       "neighbors.js", "viewer", "grid.dzi",
                                                       "grid_files"))
        if html:
            page = json.loads((out / "layout.js").read_text().split(" = ", 1)[1].rstrip(";\n"))
            ok &= (page["rows"], page["cols"], page["tile"]) == (rows, cols, tile)
    except (OSError, ValueError, KeyError):
        ok = False
    return {8: "old", 12: "new"}[tile] if ok else "mixed"


class Bench:
    def __init__(self, work: Path, src: str | None) -> None:
        self.work = work
        self.env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
        names = sorted(os.listdir(DEMO))[::2][:400]
        for i, name in enumerate(names):
            folder = work / ("a" if i < 48 else "b")
            folder.mkdir(exist_ok=True)
            shutil.copy(DEMO / name, folder / name)
        self.cache = work / "cache"
        self.old = work / "old"
        done = self.run(self.build_args(self.old, old=True))
        assert done.returncode == 0, done.stderr

    def build_args(self, out: Path, old: bool = False, cache: Path | None = None) -> list[str]:
        sources = [str(self.work / "a")] + ([] if old else [str(self.work / "b")])
        return ["build", *sources, "--out", str(out), "--cache-dir", str(cache or self.cache),
                *FAST, *(OLD if old else NEW)]

    def popen(self, args: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", MAIN, *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", MAIN, *args], env=self.env,
                              capture_output=True, text=True, timeout=300)

    def fresh(self, name: str) -> Path:
        out = self.work / name
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(self.old, out)
        return out

    def kills(self, n: int, seed: int = 0) -> dict[str, object]:
        """Rebuilds over the old set, each killed (SIGKILL) at a random moment of its run."""
        assert self.run(self.build_args(self.fresh("timing"))).returncode == 0  # fills the cache
        t0 = time.perf_counter()
        assert self.run(self.build_args(self.fresh("timing"))).returncode == 0
        span = time.perf_counter() - t0
        rng = random.Random(seed)
        left: Counter[str] = Counter()
        after: Counter[str] = Counter()
        pending = finished = 0
        for _ in range(n):
            out = self.fresh("kill")
            proc = self.popen(self.build_args(out))
            time.sleep(rng.uniform(0.5, 1.0) * span)
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            finished += proc.returncode == 0
            left[which(out)] += 1
            if (out / ".tsnegrid-commit").exists():
                pending += 1
                from tsnegrid.publish import locked

                with locked(out):  # what the next build does first
                    pass
            after[which(out)] += 1
        return {"runs": n, "span": span, "left": left, "after": after, "pending": pending,
                "finished": finished}

    def races(self, n: int) -> dict[str, object]:
        """Two builds started together into one folder."""
        outcomes: Counter[str] = Counter()
        states: Counter[str] = Counter()
        for _ in range(n):
            out = self.fresh("race")
            procs = [self.popen(self.build_args(out)), self.popen(self.build_args(out))]
            codes = sorted(p.wait(timeout=300) for p in procs)
            errs = [p.communicate()[1] for p in procs]
            busy = sum("another tsnegrid build is writing this folder" in e for e in errs)
            outcomes[f"exit codes {codes}, {busy} refused as busy"] += 1
            states[which(out)] += 1
        return {"runs": n, "outcomes": outcomes, "states": states}

    def full_disk(self, frees_k: list[int]) -> list[dict[str, object]]:
        """A rebuild over the old set on a tmpfs with ``free`` KiB left (needs root and
        unshare); and a build whose embedding cache sits on a full tmpfs."""
        if shutil.which("unshare") is None or os.geteuid() != 0:
            return []
        rows = []
        cli = f"{sys.executable} -c '{MAIN}'"
        for free in frees_k:
            mnt = self.work / f"mnt{free}"
            mnt.mkdir()
            script = (f"mount -t tmpfs -o size=2m tmpfs {mnt} || exit 99\n"
                      f"cp -r {self.old} {mnt}/out\n"
                      f"dd if=/dev/zero of={mnt}/filler bs=1k count=$(( $(df -k "
                      f"--output=avail {mnt} | tail -1) - {free} )) 2>/dev/null\n"
                      f"{cli} {' '.join(self.build_args(mnt / 'out'))}; echo rc=$? >&2\n"
                      f"rm -rf {self.work}/after; cp -r {mnt}/out {self.work}/after\n")
            done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=self.env,
                                  capture_output=True, text=True, timeout=300)
            if done.returncode == 99:
                return rows
            after = self.work / "after"
            same = _listing(after) == _listing(self.old)
            rc = next(ln for ln in done.stderr.splitlines() if ln.startswith("rc="))[3:]
            line = next((ln for ln in done.stderr.splitlines() if ln.startswith("Error")), "")
            line = line.replace(str(mnt / "out"), "OUT")
            rows.append({"case": f"rebuild, {free} KiB free", "rc": rc, "line": line,
                         "state": "old set intact, byte for byte" if same else which(after)})
        mnt = self.work / "cachefull"
        mnt.mkdir()
        script = (f"mount -t tmpfs -o size=64k tmpfs {mnt} || exit 99\n"
                  f"dd if=/dev/zero of={mnt}/filler bs=1k count=1000 2>/dev/null\n"
                  f"{cli} {' '.join(self.build_args(self.work / 'cacheout', cache=mnt / 'c'))}; "
                  "echo rc=$? >&2\n")
        done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=self.env,
                              capture_output=True, text=True, timeout=300)
        rc = next(ln for ln in done.stderr.splitlines() if ln.startswith("rc="))[3:]
        line = next((ln for ln in done.stderr.splitlines() if ln.startswith(("WARNING",
                                                                            "Error"))), "")
        line = line.replace(str(mnt / "c"), "CACHE")
        rows.append({"case": "build, embedding cache on a full disk", "rc": rc, "line": line,
                     "state": which(self.work / "cacheout")})
        return rows


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=60)
    ap.add_argument("--races", type=int, default=10)
    ap.add_argument("--src", help="run the builds from this src folder (an older checkout)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tsnegrid-outputs-") as tmp:
        bench = Bench(Path(tmp), args.src)
        k = bench.kills(args.kills)
        print(k, flush=True)
        r = bench.races(args.races)
        print(r, flush=True)
        disks = bench.full_disk([4, 64, 256, 1024])
        for d in disks:
            print(d, flush=True)
    if args.src:
        return

    def counts(c: object) -> str:
        assert isinstance(c, Counter)
        return ", ".join(f"{v} {s}" for s, v in sorted(c.items()))

    body = [
        "## Robustness: torn outputs and full disks (`benchmarks/robustness_outputs.py`)",
        "",
        f"Rebuilds (400 images, 12 px, `--html --tiles`) over an old set (48 images, 8 px), each "
        f"killed "
        f"with SIGKILL at a random moment between 0.5 and 1.0 of an unkilled rebuild's "
        f"{k['span']:.2f} s; a folder judged from its files themselves.",
        "",
        "| case | runs | finished before the kill | as left | after the next build's lock | "
        "publish cut short |",
        "|---|---:|---:|---|---|---:|",
        f"| kill -9 at a random moment | {k['runs']} | {k['finished']} | {counts(k['left'])} | "
        f"{counts(k['after'])} | {k['pending']} |",
        "",
        "| case | runs | outcomes | folder after |",
        "|---|---:|---|---|",
        f"| two builds started together into one folder | {r['runs']} | "
        f"{counts(r['outcomes'])} | {counts(r['states'])} |",
    ]
    if disks:
        body += ["", "| case (a tmpfs under `unshare -m`) | exit | message | folder after |",
                 "|---|---:|---|---|"]
        body += [f"| {d['case']} | {d['rc']} | `{d['line']}` | {d['state']} |" for d in disks]
    write_section("robustness-outputs", "\n".join(body))


if __name__ == "__main__":
    main()
