"""Service robustness under a mixed fuzz: bad files of many kinds beside good ones, bad requests,
refused and slow urls, racing duplicate ids, and a burst of huge-but-valid PNGs.

Starts ``python -m tsnegrid.service`` on 127.0.0.1 (no job workers: only the upload path is
under test) and a loopback peer on 127.0.0.2 whose urls answer one byte at a time. Every file's
truth comes from decoding it here, in full, with the server's pixel limit. Counts crashes (the
server died), hangs (a request past its timeout), 5xx answers, good inputs lost (a good file not
stored), bad files unreported (a bad file stored, or answered without its own status) and the
server's peak RSS; writes the "robustness-service" section of benchmarks/RESULTS.md.

    python benchmarks/robustness_service.py [--per-kind 25] [--clients 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "demo" / "emoji-1024" / "images"
MAX_PIXELS = 40_000_000  # the server's default
DECODE_BUDGET = 256 * 2**20  # the server's default
TIMEOUT_S = 60.0


def _png(w: int, h: int, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = random.Random(seed)
    im = Image.new(mode, (w, h), tuple(rng.randrange(256) for _ in mode))  # type: ignore[arg-type]
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _encoded(fmt: str, seed: int) -> bytes:
    rng = random.Random(seed)
    im = Image.effect_noise((64, 48), 40 + rng.randrange(60)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (len(data).to_bytes(4, "big") + kind + data
            + zlib.crc32(kind + data).to_bytes(4, "big"))


def _png_claiming(w: int, h: int) -> bytes:
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b""))


def _jpeg_claiming(w: int, h: int, seed: int) -> bytes:
    data = bytearray(_encoded("JPEG", seed))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = h.to_bytes(2, "big") + w.to_bytes(2, "big")
    return bytes(data)


def _cut(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(8, max(9, len(data) // 2))]


def _flip(data: bytes, rng: random.Random, start: int) -> bytes:
    out = bytearray(data)
    for _ in range(8):
        i = rng.randrange(start, len(out))
        out[i] ^= 0xFF
    return bytes(out)


def _zip(rng: random.Random) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "x" * rng.randrange(1, 500))
    return buf.getvalue()


Maker = Callable[[random.Random, int], bytes]
BAD_KINDS: dict[str, Maker] = {
    "empty": lambda r, s: b"",
    "random bytes": lambda r, s: r.randbytes(r.randrange(1, 4000)),
    "text": lambda r, s: ("hello " * r.randrange(1, 200)).encode(),
    "html": lambda r, s: b"<!doctype html><html><body>" + r.randbytes(50).hex().encode(),
    "svg": lambda r, s: b'<svg xmlns="http://www.w3.org/2000/svg" width="9"/>',
    "json": lambda r, s: json.dumps({"n": r.random()}).encode(),
    "pdf": lambda r, s: b"%PDF-1.4\n" + r.randbytes(300),
    "zip": lambda r, s: _zip(r),
    "gzip": lambda r, s: zlib.compress(r.randbytes(300)),
    "elf": lambda r, s: Path(sys.executable).read_bytes()[:2048 + r.randrange(2048)],
    "png truncated": lambda r, s: _cut(_encoded("PNG", s), r),
    "png header only": lambda r, s: _png_claiming(64, 64)[:33],
    "png corrupt data": lambda r, s: _flip(_encoded("PNG", s), r, 40),
    "png bomb (huge IHDR)": lambda r, s: _png_claiming(20000 + r.randrange(30000), 20000),
    "jpeg truncated": lambda r, s: _cut(_encoded("JPEG", s), r),
    "jpeg header only": lambda r, s: _encoded("JPEG", s)[:20],
    "jpeg bomb (huge SOF)": lambda r, s: _jpeg_claiming(60000, 50000 + r.randrange(1000), s),
    "gif truncated": lambda r, s: _cut(_encoded("GIF", s), r),
    "gif bomb (huge screen)": lambda r, s: (b"GIF89a\xff\xff\xff\xff\x00\x00\x00,\x00\x00\x00"
                                            b"\x00\xff\xff\xff\xff\x00\x02\x02D\x01\x00;"),
    "bmp truncated": lambda r, s: _cut(_encoded("BMP", s), r),
    "tiff truncated": lambda r, s: _cut(_encoded("TIFF", s), r),
    "tiff garbage IFD": lambda r, s: b"II*\x00\x08\x00\x00\x00" + r.randbytes(200),
    "webp truncated": lambda r, s: _cut(_encoded("WEBP", s), r),
    "ico garbage": lambda r, s: b"\x00\x00\x01\x00\x01\x00" + r.randbytes(100),
    "psd header": lambda r, s: b"8BPS\x00\x01" + r.randbytes(100),
    "png signature + noise": lambda r, s: b"\x89PNG\r\n\x1a\n" + r.randbytes(500),
    "jpeg SOI + noise": lambda r, s: b"\xff\xd8\xff" + r.randbytes(500),
}


def decodes(data: bytes) -> bool:
    """The truth: a full decode, here, with the server's pixel limit."""
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as im:
            warnings.simplefilter("ignore")  # corrupt files make Pillow warn; expected here
            if im.width * im.height > MAX_PIXELS:
                return False
            im.load()
            return True
    except Exception:
        return False


class Trickle(BaseHTTPRequestHandler):
    """A url that answers one header byte every 0.25 s (about 10 s in all)."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        try:
            for b in b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nX-Pad: xxxxxxxxxx\r\n\r\n":
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.25)
        except OSError:
            pass


def bad_requests(slow: str) -> list[tuple[str, Any]]:
    """(kind, body: bytes of JSON text or a dict) of malformed or hostile requests."""
    img = base64.b64encode(_encoded("PNG", 1)).decode()

    def item(**kw: Any) -> dict[str, Any]:
        return {"inputs": [kw]}

    raw = ('{"inputs": [{"data": {"image": {"base64": "IMG"}, "metadata": META}}]}'
           .replace("IMG", img))
    deep = '{"d": ' + "[" * 3000 + "1" + "]" * 3000 + "}"
    return [
        ("malformed json", b'{"inputs": [ {'),
        ("json array", b"[1, 2]"),
        ("no inputs", {"inputs": []}),
        ("inputs not a list", {"inputs": "x"}),
        ("NaN metadata", raw.replace("META", '{"x": NaN}').encode()),
        ("Infinity metadata", raw.replace("META", '{"x": [-Infinity]}').encode()),
        ("deep metadata", raw.replace("META", deep).encode()),
        ("id .", item(id=".", data={"image": {"base64": img}})),
        ("id ..", item(id="..", data={"image": {"base64": img}})),
        ("id too long", item(id="x" * 500, data={"image": {"base64": img}})),
        ("id with slash", item(id="a/b", data={"image": {"base64": img}})),
        ("base64 and url", item(data={"image": {"base64": img, "url": slow}})),
        ("no image", item(data={"image": {}})),
        ("bad base64", item(data={"image": {"base64": "@@@"}})),
        ("file url", item(data={"image": {"url": "file:///etc/passwd"}})),
        ("private url", item(data={"image": {"url": "http://10.0.0.1/a.png"}})),
        ("metadata url", item(data={"image": {"url": "http://169.254.169.254/latest/"}})),
        ("mapped loopback url", item(data={"image": {"url": "http://[::ffff:127.0.0.1]/"}})),
        ("NAT64 metadata url", item(data={"image": {"url": "http://[64:ff9b::a9fe:a9fe]/"}})),
        ("6to4 loopback url", item(data={"image": {"url": "http://[2002:7f00:1::]/"}})),
        ("slow url", item(data={"image": {"url": slow}})),
    ]


class Run:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=TIMEOUT_S,
                                 headers={"Authorization": f"Key {key}"})
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stored: set[str] = set()
        self.answers: dict[str, int] = {}

    def post(self, body: Any) -> httpx.Response | None:
        try:
            if isinstance(body, bytes):
                r = self.http.post("/v2/inputs", content=body,
                                   headers={"Content-Type": "application/json"})
            else:
                r = self.http.post("/v2/inputs", json=body)
        except httpx.TimeoutException:
            with self.lock:
                self.counts["hangs"] += 1
            return None
        except httpx.HTTPError:
            with self.lock:
                self.counts["connection errors"] += 1
            return None
        with self.lock:
            self.counts["requests"] += 1
            if r.status_code >= 500:
                self.counts["5xx"] += 1
        return r

    def batch(self, items: list[tuple[str, bytes]]) -> None:
        body = {"inputs": [{"id": i, "data": {"image": {"base64": base64.b64encode(d).decode()}}}
                           for i, d in items]}
        r = self.post(body)
        if r is None or r.status_code >= 500:
            return
        outs = r.json().get("inputs", [])
        with self.lock:
            for (i, _d), out in zip(items, outs, strict=False):
                self.answers[i] = int(out.get("status", {}).get("code", 0))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-kind", type=int, default=25, help="bad files of each kind")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    files: list[tuple[str, str, bytes]] = []  # (id, kind, bytes)
    for kind, make in BAD_KINDS.items():
        for _n in range(args.per_kind):
            files.append((f"bad-{len(files):05d}", kind, make(rng, rng.randrange(10**6))))
    good = sorted(DEMO.glob("*.png"))[:400]
    files += [(f"good-{n:05d}", "good", f.read_bytes()) for n, f in enumerate(good)]
    truth = {i: decodes(d) for i, _k, d in files}
    n_bad = sum(not t for t in truth.values())
    n_kinds = len({k for i, k, _d in files if not truth[i]})
    rng.shuffle(files)

    peer = ThreadingHTTPServer(("127.0.0.2", 0), Trickle)
    peer.daemon_threads = True
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    slow = f"http://127.0.0.2:{peer.server_address[1]}/slow.png"

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        key = subprocess.run([sys.executable, "-c", "from tsnegrid.cli import main; main()",
                              "apps", "create", "fuzz",
                              "--data", str(data)], capture_output=True, text=True,
                             check=True, timeout=120).stdout.strip()
        port = free_port()
        env = {**os.environ, "TSNEGRID_SERVICE_WORKERS": "0",
               "TSNEGRID_SERVICE_URL_ALLOW": "127.0.0.2/32",
               "TSNEGRID_SERVICE_URL_TIMEOUT_S": "2"}
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "tsnegrid.service", "--data", str(data),
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                env=env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        baseline = peak_rss_mib(proc.pid)
        run = Run(url, key)
        started = time.monotonic()

        batches = [files[i:i + 16] for i in range(0, len(files), 16)]
        requests = bad_requests(slow) * 3
        dup_body = {"inputs": [{"id": "raced", "data": {"image": {
            "base64": base64.b64encode(_encoded("PNG", 7)).decode()}}}]}
        with ThreadPoolExecutor(args.clients) as pool:
            jobs = [pool.submit(run.batch, [(i, d) for i, _k, d in b]) for b in batches]
            jobs += [pool.submit(run.post, body) for _kind, body in requests]
            jobs += [pool.submit(run.post, dup_body) for _ in range(8)]
            for j in jobs:
                j.result()
        fuzz_s = time.monotonic() - started
        fuzz_peak = peak_rss_mib(proc.pid)

        huge = _png(6000, 6000, "RGBA", 3)  # ~150 KB encoded, 144 MB decoded
        burst = [{"inputs": [{"id": f"huge-{r}-{n}", "data": {"image": {
            "base64": base64.b64encode(huge).decode()}}} for n in range(4)]} for r in range(2)]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(run.post, burst))
        huge_ok = sum(o["status"]["code"] == 30000 for r in answers if r is not None
                      for o in r.json()["inputs"])
        burst_peak = peak_rss_mib(proc.pid)

        listed: set[str] = set()
        page = 1
        while True:
            r = run.http.get("/v2/inputs", params={"page": page, "per_page": 1000})
            ids = [i["id"] for i in r.json()["inputs"]]
            listed.update(ids)
            if len(ids) < 1000:
                break
            page += 1
        alive = proc.poll() is None
        proc.terminate()
        proc.wait(30)
        log.close()
        tracebacks = (Path(tmp) / "server.log").read_text(errors="replace").count("Traceback")
    peer.shutdown()

    good_ids = [i for i, t in truth.items() if t]
    bad_ids = [i for i, t in truth.items() if not t]
    lost = sum(i not in listed for i in good_ids)
    unreported = sum(i in listed or i not in run.answers or run.answers[i] == 30000
                     for i in bad_ids)
    raced = sum(i == "raced" for i in listed)
    bound = baseline + DECODE_BUDGET / 2**20 + 2 * 32
    rows = [
        ("files sent", f"{len(files):,} ({n_bad:,} bad of {n_kinds} kinds, "
                       f"{len(good_ids):,} good)"),
        ("hostile requests", f"{len(requests)} ({len(requests) // 3} kinds x 3) + 8 racing "
                             "uploads of one id"),
        ("requests answered", f"{run.counts['requests']:,} in {fuzz_s:.1f} s"),
        ("crashes (server died)", str(int(not alive))),
        ("hangs (no answer in 60 s)", str(run.counts["hangs"])),
        ("5xx answers", str(run.counts["5xx"])),
        ("tracebacks in the server log", str(tracebacks)),
        ("good inputs lost", str(lost)),
        ("bad files unreported", str(unreported)),
        ("racing id stored", f"{raced} time(s)"),
        ("burst: 2 requests x 4 PNGs 6000x6000 RGBA stored", f"{huge_ok} of 8"),
        ("peak RSS: at start / after fuzz / after burst", f"{baseline:.0f} / {fuzz_peak:.0f} / "
                                                          f"{burst_peak:.0f} MiB"),
        ("documented bound (start + decode budget + 2 request bodies)", f"{bound:.0f} MiB"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    body = ("## Robustness: the service\n\nA mixed fuzz through `POST /v2/inputs` (4 clients, "
            "batches of 16, no job workers), then a burst of huge valid PNGs. Target: zero "
            "crashes, hangs, 5xx, lost and unreported; peak RSS under the bound.\n\n"
            f"| measure | value |\n|---|---|\n{table}")
    print(body)
    write_section("robustness-service", body)


if __name__ == "__main__":
    main()
