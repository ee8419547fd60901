"""The service over real HTTP against started servers: a full run, isolation between apps,
recovery after ``kill -9`` mid-job, and two nodes sharing PostgreSQL and a blob folder."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

from PIL import Image

from service_helpers import (
    Client,
    children_of,
    create_key,
    db_url,
    demo_images,
    image_inputs,
    pid_alive,
    postgres_database,
    service_cache,
    start_server,
)

__all__ = ["db_url", "service_cache", "start_server"]  # fixtures used by name


def upload(client: Client, files: list[Path], batch: int = 32, **meta: Any) -> list[str]:
    ids = []
    for i in range(0, len(files), batch):
        r = client.post("/v2/inputs", json={"inputs": image_inputs(files[i:i + batch], **meta)})
        assert r.status_code == 200, r.text
        ids += [item["id"] for item in r.json()["inputs"]]
    return ids


def test_end_to_end_100_images(db_url: str | None, tmp_path: Path, start_server: Any) -> None:
    data = tmp_path / "data"
    key = create_key(data, "demo", db_url)
    server = start_server(data, db_url)
    client = Client(server.url, key)
    files = demo_images(100)
    ids = upload(client, files)
    assert ids == [f.stem for f in files]
    listed = client.get("/v2/inputs", params={"per_page": 1000}).json()
    assert listed["pagination"]["total"] == 100

    r = client.post("/v2/visualizations", json={"tile": 32, "format": "png"})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert out["status"]["code"] == "PENDING" and out["input_count"] == 100
    seen_running = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        out = client.get(f"/v2/visualizations/{out['id']}").json()["output"]
        seen_running |= out["status"]["code"] == "RUNNING"
        assert 0 <= out["status"]["progress"] <= 100
        if out["status"]["code"] in ("DONE", "FAILED"):
            break
        time.sleep(0.1)
    assert out["status"]["code"] == "DONE", out
    assert out["params"]["model"] == "lite0"

    img = client.get(out["data"]["image"]["url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    layout = client.get(out["data"]["layout"]["url"]).json()
    rows, cols = layout["grid"]["rows"], layout["grid"]["cols"]
    assert rows * cols >= 100
    assert Image.open(io.BytesIO(img.content)).size == (cols * 32, rows * 32)
    placed = layout["images"]
    assert sorted(p["input_id"] for p in placed) == sorted(ids)
    assert len({(p["row"], p["col"]) for p in placed}) == 100
    assert "cache_dir" not in layout["settings"]

    # a metadata filter matching nothing is refused at once
    r = client.post("/v2/visualizations", json={"metadata": {"name": "no-such"}})
    assert r.status_code == 400 and "no inputs" in r.json()["status"]["description"]
    # a second grid of the same app reuses the cached embeddings
    r = client.post("/v2/visualizations", json={"seed": 1, "reducer": "pca"})
    again = client.wait_done(r.json()["output"]["id"])
    assert again["status"]["code"] == "DONE", again
    # (the embed stage logs what it found cached: the second job computed no vector)
    reports = re.findall(r"(\d+) readable files, \d+ distinct, (\d+) cached, (\d+) to embed",
                         server.log.read_text(errors="replace"))
    assert len(reports) >= 2 and reports[-1][2] == "0" and int(reports[-1][1]) > 0, reports
    listing = client.get("/v2/visualizations").json()
    assert listing["pagination"]["total"] == 2


def test_apps_cannot_see_each_other(db_url: str | None, tmp_path: Path,
                                    start_server: Any) -> None:
    data = tmp_path / "data"
    key_a, key_b = create_key(data, "a", db_url), create_key(data, "b", db_url)
    server = start_server(data, db_url)
    a, b = Client(server.url, key_a), Client(server.url, key_b)
    ids = upload(a, demo_images(12))
    viz = a.post("/v2/visualizations", json={"model": "pixels", "reducer": "pca"}).json()
    viz_id = viz["output"]["id"]
    assert a.wait_done(viz_id)["status"]["code"] == "DONE"

    for input_id in ids[:3]:
        for path in (f"/v2/inputs/{input_id}", f"/v2/inputs/{input_id}/image"):
            r = b.get(path)
            assert r.status_code == 404 and "Traceback" not in r.text, path
        assert b.delete(f"/v2/inputs/{input_id}").status_code == 404
    assert b.request("DELETE", "/v2/inputs", json={"ids": ids}).status_code == 404
    for path in ("", "/image", "/layout"):
        assert b.get(f"/v2/visualizations/{viz_id}{path}").status_code == 404
    assert b.delete(f"/v2/visualizations/{viz_id}").status_code == 404
    assert b.post("/v2/visualizations", json={"input_ids": ids[:2]}).status_code == 404
    assert b.get("/v2/inputs").json()["pagination"]["total"] == 0
    assert b.get("/v2/visualizations").json()["pagination"]["total"] == 0
    # same ids are free in app b, and stay separate
    assert b.post("/v2/inputs", json={"inputs": image_inputs(demo_images(1))}).status_code == 200

    # nothing of a's was touched
    assert a.get("/v2/inputs").json()["pagination"]["total"] == 12
    assert a.get(f"/v2/visualizations/{viz_id}/image").status_code == 200
    for client in (Client(server.url, None), Client(server.url, "nope")):
        r = client.get(f"/v2/inputs/{ids[0]}")
        assert r.status_code == 401 and r.json()["status"]["description"]


def test_kill_9_mid_job_then_restart_finishes(db_url: str | None, tmp_path: Path,
                                              start_server: Any) -> None:
    data = tmp_path / "data"
    key = create_key(data, "crash", db_url)
    server = start_server(data, db_url)
    client = Client(server.url, key)
    files = demo_images(120, start=300)  # not yet in the shared embedding cache
    ids = upload(client, files)
    viz_id = client.post("/v2/visualizations", json={"tile": 16}).json()["output"]["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(f"/v2/visualizations/{viz_id}").json()["output"]["status"]
        if status["code"] == "RUNNING" or status["code"] in ("DONE", "FAILED"):
            break
        time.sleep(0.05)
    assert status["code"] == "RUNNING", status
    workers = children_of(server.proc.pid)
    assert workers
    server.kill9()
    deadline = time.monotonic() + 30
    while any(pid_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(p) for p in workers), "worker outlived the killed server"

    restarted = start_server(data, db_url)
    client = Client(restarted.url, key)
    out = client.wait_done(viz_id)
    assert out["status"]["code"] == "DONE", out
    assert out["attempts"] == 2
    assert client.get(out["data"]["image"]["url"]).status_code == 200
    listed = client.get("/v2/inputs", params={"per_page": 1000}).json()
    assert sorted(i["id"] for i in listed["inputs"]) == sorted(ids)


def test_job_of_a_lost_node_is_finished_by_another(tmp_path: Path, start_server: Any) -> None:
    """Two nodes share PostgreSQL and a blob folder; node A dies mid-job and stays down; node B
    leaves A's job alone while its lease lives, then takes it over and finishes it."""
    with postgres_database() as db:
        shared = {"TSNEGRID_SERVICE_BLOBS": (tmp_path / "shared-blobs").as_uri(),
                  "TSNEGRID_SERVICE_LEASE_S": "3"}
        key = create_key(tmp_path / "a", "multi", db)
        node_a = start_server(tmp_path / "a", db, **shared)
        client = Client(node_a.url, key)
        ids = upload(client, demo_images(100, start=500))  # not yet in the embedding cache
        viz_id = client.post("/v2/visualizations", json={"tile": 16}).json()["output"]["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = client.get(f"/v2/visualizations/{viz_id}").json()["output"]["status"]
            if status["code"] != "PENDING":
                break
            time.sleep(0.05)
        assert status["code"] == "RUNNING", status
        node_a.kill9()

        node_b = start_server(tmp_path / "b", db, **shared)
        client = Client(node_b.url, key)
        out = client.wait_done(viz_id)
        assert out["status"]["code"] == "DONE", out
        assert out["attempts"] == 2
        layout = client.get(out["data"]["layout"]["url"]).json()
        assert sorted(p["input_id"] for p in layout["images"]) == sorted(ids)
        assert client.get(f"/v2/inputs/{ids[0]}/image").status_code == 200
        assert not (tmp_path / "b" / "blobs").exists()
        node_b.stop()  # before its database goes
