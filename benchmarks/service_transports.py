"""REST beside gRPC on one ``tsnegrid serve``: upload throughput and PostModelOutputs latency.

Run through ``python benchmarks/service.py --transports``; see that script's docstring.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

DEMO = Path(__file__).resolve().parents[1] / "demo" / "emoji-1024" / "images"
SDK_PYTHON = Path(__file__).resolve().parents[1] / ".venv-clarifai-sdk" / "bin" / "python"
OUTPUT_CALLS = 40

SDK_UPLOAD = """
import json, sys, time
from clarifai.client.dataset import Dataset
spec = json.load(sys.stdin)
t0 = time.perf_counter()
Dataset(dataset_id="bench", user_id="me", app_id=spec["app"], pat=spec["key"],
        base_url=spec["base"]).upload_from_folder(spec["folder"], input_type="image",
                                                  batch_size=spec["batch"])
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _rest_upload(url: str, key: str, files: list[Path], batch: int) -> list[float]:
    took = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Key {key}"},
                      timeout=120) as c:
        for i in range(0, len(files), batch):
            body = {"inputs": [{"id": f"r{i + j:05d}", "data": {"image": {
                "base64": base64.b64encode(f.read_bytes()).decode()}}}
                for j, f in enumerate(files[i:i + batch])]}
            t0 = time.perf_counter()
            r = c.post("/v2/inputs", json=body)
            took.append(time.perf_counter() - t0)
            assert r.status_code == 200 and r.json()["status"]["code"] == 10000, r.text[:300]
    return took


def _stub(port: int) -> tuple[Any, Any]:
    from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
    from clarifai_grpc.grpc.api import service_pb2_grpc

    channel = ClarifaiChannel.get_insecure_grpc_channel("127.0.0.1", port)
    return service_pb2_grpc.V2Stub(channel), channel


def _grpc_upload(port: int, key: str, files: list[Path], batch: int) -> list[float]:
    from clarifai_grpc.grpc.api import resources_pb2, service_pb2

    stub, channel = _stub(port)
    meta = (("authorization", f"Key {key}"),)
    took = []
    with channel:
        for i in range(0, len(files), batch):
            inputs = [resources_pb2.Input(id=f"g{i + j:05d}", data=resources_pb2.Data(
                image=resources_pb2.Image(base64=f.read_bytes())))
                for j, f in enumerate(files[i:i + batch])]
            t0 = time.perf_counter()
            r = stub.PostInputs(service_pb2.PostInputsRequest(inputs=inputs), metadata=meta)
            took.append(time.perf_counter() - t0)
            assert r.status.code == 10000, r.status
    return took


def _outputs(url: str, port: int, key: str, images: list[bytes]) -> dict[str, list[float]]:
    """Each call a new image (none is in the embedding cache), alternating transports."""
    from clarifai_grpc.grpc.api import resources_pb2, service_pb2

    rest, rpc = [], []
    stub, channel = _stub(port)
    meta = (("authorization", f"Key {key}"),)
    with httpx.Client(base_url=url, headers={"Authorization": f"Key {key}"},
                      timeout=120) as c, channel:
        for n in range(OUTPUT_CALLS + 2):  # the first two warm the model; not counted
            body = {"inputs": [{"data": {"image": {
                "base64": base64.b64encode(images[2 * n]).decode()}}}]}
            request = service_pb2.PostModelOutputsRequest(model_id="lite0", inputs=[
                resources_pb2.Input(data=resources_pb2.Data(
                    image=resources_pb2.Image(base64=images[2 * n + 1])))])
            t0 = time.perf_counter()
            r = c.post("/v2/models/lite0/outputs", json=body)
            t1 = time.perf_counter()
            g = stub.PostModelOutputs(request, metadata=meta)
            t2 = time.perf_counter()
            assert r.json()["status"]["code"] == 10000 and g.status.code == 10000
            if n >= 2:
                rest.append(t1 - t0)
                rpc.append(t2 - t1)
    return {"REST": rest, "gRPC": rpc}


def _sdk_upload(port: int, key: str, files: list[Path], batch: int,
                tmp: Path) -> float | None:
    if not SDK_PYTHON.exists():
        return None
    folder = tmp / "sdk-folder"
    folder.mkdir()
    for i, f in enumerate(files):
        shutil.copyfile(f, folder / f"s{i:05d}.png")
    spec = {"app": "sdk", "key": key, "base": f"http://127.0.0.1:{port}",
            "folder": str(folder), "batch": batch}
    out = subprocess.run([str(SDK_PYTHON), "-c", SDK_UPLOAD], input=json.dumps(spec),
                         capture_output=True, text=True, timeout=900, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def compare(n_images: int, batch: int, start_server: Callable[..., Any],
            create_key: Callable[..., str], free_port: Callable[[], int]) -> str:
    """Run both transports against one server (started by service.py's helpers); the
    RESULTS.md section's body."""
    files = [sorted(DEMO.glob("*.png"))[i % 1024] for i in range(n_images)]
    tmp = Path(tempfile.mkdtemp(prefix="tsnegrid-bench-transports-"))
    data, cache = tmp / "data", tmp / "cache"
    keys = {name: create_key(data, name) for name in ("rest", "grpc", "sdk", "models")}
    port = free_port()
    proc, url = start_server(data, cache, tmp / "server.log", grpc_port=port)
    try:
        t0 = time.perf_counter()
        rest = _rest_upload(url, keys["rest"], files, batch)
        rest_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        rpc = _grpc_upload(port, keys["grpc"], files, batch)
        rpc_wall = time.perf_counter() - t0
        sdk = _sdk_upload(port, keys["sdk"], files, batch, tmp)
        outputs = _outputs(url, port, keys["models"],
                           [f.read_bytes() for f in sorted(DEMO.glob("*.png"))[-200:]])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    mb = sum(f.stat().st_size for f in files) / 2**20
    rows = [
        f"| REST (httpx, base64 JSON) | {rest_wall:.2f} | {n_images / rest_wall:.0f} | "
        f"{pct(rest, .5) * 1000:.0f} / {pct(rest, .99) * 1000:.0f} | 1.00 |",
        f"| gRPC (clarifai-grpc stub, raw bytes) | {rpc_wall:.2f} | {n_images / rpc_wall:.0f} "
        f"| {pct(rpc, .5) * 1000:.0f} / {pct(rpc, .99) * 1000:.0f} | "
        f"{rest_wall / rpc_wall:.2f} |",
    ]
    if sdk is not None:
        rows.append(f"| gRPC (clarifai 12.5.0 `Dataset.upload_from_folder`, whole call) | "
                    f"{sdk:.2f} | {n_images / sdk:.0f} | - | {rest_wall / sdk:.2f} |")
    out_rows = [f"| {name} | {pct(v, .5) * 1000:.1f} | {pct(v, .9) * 1000:.1f} | "
                f"{pct(v, .99) * 1000:.1f} |" for name, v in outputs.items()]
    return "\n".join([
        "## REST beside gRPC (`benchmarks/service.py --transports`)",
        "",
        f"One server, one client at a time: {n_images:,} PNG images (64x64, {mb:.1f} MB) "
        f"uploaded in batches of {batch}, each transport into its own app, then "
        f"{OUTPUT_CALLS} PostModelOutputs calls of one image on lite0 each (after two warm-up "
        f"calls), alternating, each with an image not seen before (no cached vector).",
        "",
        "| upload | wall s | images/s | request p50 / p99 ms | speed vs REST |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        "| PostModelOutputs, lite0, 1 image | p50 ms | p90 ms | p99 ms |",
        "|---|---:|---:|---:|",
        *out_rows,
    ])
