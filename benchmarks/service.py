"""Service under load: concurrent clients upload images in batches while a visualization runs.

Starts ``python -m tsnegrid.service`` on a free 127.0.0.1 port with a fresh data folder and
cache, uploads a base set and starts a Lite0 visualization of it, then (once the job is running)
has ``--clients`` threads upload ``--images`` new images in batches of ``--batch`` while polling
the job. Reports throughput, p50/p99 latency and whether every accepted input and the grid came
back; writes the "service" section of benchmarks/RESULTS.md.

With ``--transports``: the same server's REST and gRPC sides side by side, uploading
``--images`` 64-px PNGs in batches of ``--batch`` (REST: base64 JSON with httpx; gRPC:
clarifai-grpc's stub with raw bytes; and, where ``.venv-clarifai-sdk`` exists, today's SDK's
``Dataset.upload_from_folder``), then PostModelOutputs latency for one image; writes the
"service-transports" section.

    python benchmarks/service.py [--clients 50] [--images 1000] [--batch 32] [--base 256]
    python benchmarks/service.py --transports [--images 1000] [--batch 32]
"""

from __future__ import annotations

import argparse
import base64
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "demo" / "emoji-1024" / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_key(data: Path, name: str = "bench") -> str:
    out = subprocess.run([sys.executable, "-c", "from tsnegrid.cli import main; main()",
                          "apps", "create", name, "--data", str(data)],
                         capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip()


def start_server(data: Path, cache: Path, log: Path,
                 grpc_port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "TSNEGRID_SERVICE_CACHE_DIR": str(cache),
           "TSNEGRID_SERVICE_POLL_INTERVAL_S": "0.2"}
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "tsnegrid.service", "--data", str(data),
                                 "--port", str(port), "--grpc-port", str(grpc_port)],
                                stdout=f, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).json()["workers"] >= 1:
                return proc, url
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start; see {log}")


def inputs(files: list[Path], prefix: str, start: int) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{start + i:05d}",
             "data": {"image": {"base64": base64.b64encode(f.read_bytes()).decode()}}}
            for i, f in enumerate(files)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--base", type=int, default=256, help="images in the running grid")
    ap.add_argument("--transports", action="store_true",
                    help="REST beside gRPC: uploads and model outputs, one client each")
    args = ap.parse_args()
    if args.transports:
        from service_transports import compare

        write_section("service-transports", compare(args.images, args.batch, start_server,
                                                    create_key, free_port))
        return
    files = sorted(DEMO.glob("*.png"))
    tmp = Path(tempfile.mkdtemp(prefix="tsnegrid-bench-service-"))
    data, cache = tmp / "data", tmp / "cache"
    key = create_key(data)
    proc, url = start_server(data, cache, tmp / "server.log")
    auth = {"Authorization": f"Key {key}"}
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=120) as c:
            for i in range(0, args.base, 64):
                chunk = files[i:min(i + 64, args.base)]
                c.post("/v2/inputs", json={"inputs": inputs(chunk, "base", i)}).raise_for_status()
            viz = c.post("/v2/visualizations", json={}).json()["output"]["id"]
            while c.get(f"/v2/visualizations/{viz}").json()["output"]["status"]["code"] \
                    == "PENDING":
                time.sleep(0.1)

        batches: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        for i in range(0, args.images, args.batch):
            chunk = [files[j % len(files)] for j in range(i, min(i + args.batch, args.images))]
            batches.put(inputs(chunk, "up", i))
        up_lat: list[float] = []
        poll_lat: list[float] = []
        accepted: list[str] = []
        errors: list[str] = []
        statuses: list[str] = []
        lock = threading.Lock()

        def client() -> None:
            with httpx.Client(base_url=url, headers=auth, timeout=120) as c:
                while True:
                    try:
                        batch = batches.get_nowait()
                    except queue.Empty:
                        return
                    t0 = time.perf_counter()
                    r = c.post("/v2/inputs", json={"inputs": batch})
                    t1 = time.perf_counter()
                    s = c.get(f"/v2/visualizations/{viz}")
                    t2 = time.perf_counter()
                    with lock:
                        up_lat.append(t1 - t0)
                        poll_lat.append(t2 - t1)
                        statuses.append(s.json()["output"]["status"]["code"])
                        if r.status_code != 200:
                            errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                        else:
                            accepted.extend(i["id"] for i in r.json()["inputs"]
                                            if i["status"]["code"] == 30000)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        wall = time.perf_counter() - t_start

        with httpx.Client(base_url=url, headers=auth, timeout=120) as c:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                out = c.get(f"/v2/visualizations/{viz}").json()["output"]
                if out["status"]["code"] in ("DONE", "FAILED"):
                    break
                time.sleep(0.5)
            stored: set[str] = set()
            page = 1
            while True:
                r = c.get("/v2/inputs", params={"page": page, "per_page": 1000}).json()
                stored |= {i["id"] for i in r["inputs"]}
                if len(r["inputs"]) < 1000:
                    break
                page += 1
            layout = c.get(out["data"]["layout"]["url"]).json() if out["status"][
                "code"] == "DONE" else {"images": []}
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    expected = {f"up-{i:05d}" for i in range(args.images)}
    lost = sorted(expected - stored)
    running = sum(s == "RUNNING" for s in statuses)
    body = "\n".join([
        f"{args.clients} concurrent clients uploaded {args.images:,} PNG images (64x64, "
        f"base64 JSON) in batches of {args.batch} while a Lite0 visualization of "
        f"{args.base} images ran in the worker process (1 worker).",
        "",
        "| measure | value |", "|---|---|",
        f"| upload wall time | {wall:.2f} s |",
        f"| upload throughput | {len(accepted) / wall:.0f} images/s, "
        f"{len(up_lat) / wall:.1f} requests/s |",
        f"| POST /v2/inputs latency p50 / p99 | {pct(up_lat, .5) * 1000:.0f} / "
        f"{pct(up_lat, .99) * 1000:.0f} ms ({len(up_lat)} requests) |",
        f"| GET /v2/visualizations/{{id}} latency p50 / p99 | "
        f"{pct(poll_lat, .5) * 1000:.0f} / {pct(poll_lat, .99) * 1000:.0f} ms |",
        f"| polls that saw the job RUNNING | {running} of {len(statuses)} |",
        f"| request errors | {len(errors)} |",
        f"| inputs accepted / stored / lost | {len(accepted)} / "
        f"{len(expected & stored)} / {len(lost)} |",
        f"| visualization | {out['status']['code']}, {len(layout['images'])} of {args.base} "
        f"placed |",
    ])
    print(body)
    if errors:
        print("\n".join(errors[:5]), file=sys.stderr)
    write_section("service", body)


if __name__ == "__main__":
    main()
