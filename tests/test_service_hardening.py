"""Service hardening: delete-all collects its blobs, metadata is bounded in depth and size, a
full disk or database is answered as such (and what was written is collected), failed keys
are throttled per address, jobs are capped server-wide, viewer links can be withdrawn, slow
clients time out, urls follow the public url, and acknowledged writes are durable."""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import event, select, text

from service_helpers import b64, create_key, db_url, service_cache, sqlite_only, start_server
from tsnegrid.service import gc, jobs
from tsnegrid.service.app import create_app
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import App, Database, Input
from tsnegrid.service.storage import BlobStore

__all__ = ["db_url", "service_cache", "start_server"]  # fixtures used by name


def png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 256, (i * 7) % 256, 99)).save(buf, "PNG")
    return buf.getvalue()


def make_api(tmp_path: Path, db: str | None = None, **settings: Any) -> Iterator[Any]:
    config = ServiceConfig(data_dir=tmp_path / "data", db=db, workers=0,
                           cache_dir=tmp_path / "cache", **settings)
    key = create_key(config.data_dir, "app", db)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Key {key}"}, client.app.state.service  # type: ignore[attr-defined]


@pytest.fixture
def api(tmp_path: Path, db_url: str | None) -> Iterator[Any]:
    yield from make_api(tmp_path, db_url)


def inputs(n: int, start: int = 0, **metadata: Any) -> dict[str, Any]:
    return {"inputs": [{"id": f"i{start + i}", "data": {"image": {"base64": b64(png(start + i))},
                                                       "metadata": metadata}}
                       for i in range(n)]}


def blob_keys(state: Any) -> list[str]:
    with state.db.session() as s:
        return list(s.scalars(select(Input.blob_key)))


# ---- item 8: delete_all ---------------------------------------------------------------------


def test_delete_all_marks_every_blob_for_collection(api: Any) -> None:
    client, headers, state = api
    assert client.post("/v2/inputs", json=inputs(12), headers=headers).status_code == 200
    keys = blob_keys(state)
    assert len(set(keys)) == 12
    r = client.request("DELETE", "/v2/inputs", json={"delete_all": True}, headers=headers)
    assert r.status_code == 200, r.text
    assert gc.sweep(state.db, state.store, 0) == 12
    assert not any(state.store.exists(k) for k in keys)


# ---- item 5 and 4: metadata depth and size --------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[no-any-return]


@sqlite_only
@pytest.mark.parametrize("depth", [33, 300, 900])
def test_metadata_too_deep_to_serve_is_refused_at_upload(api: Any, depth: int) -> None:
    client, headers, _state = api
    body = {"inputs": [{"id": "deep", "data": {"image": {"base64": b64(png(1))},
                                               "metadata": nested(depth)}}]}
    r = client.post("/v2/inputs", json=body, headers=headers)
    assert r.status_code == 400, r.text
    out = r.json()["inputs"][0]["status"]
    assert out["code"] == 30104 and "nested too deeply" in out["description"]
    assert client.get("/v2/inputs/deep", headers=headers).status_code == 404
    assert client.get("/v2/inputs", headers=headers).status_code == 200


@sqlite_only
def test_metadata_as_deep_as_allowed_is_served_by_both_listings(api: Any) -> None:
    client, headers, _state = api
    body = {"inputs": [{"id": "deep", "data": {"image": {"base64": b64(png(1))},
                                               "metadata": nested(32)}}]}
    assert client.post("/v2/inputs", json=body, headers=headers).status_code == 200
    assert client.get("/v2/inputs/deep", headers=headers).json()["input"]["data"][
        "metadata"] == nested(32)
    assert client.get("/v2/inputs", headers=headers).status_code == 200


def test_metadata_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    for client, headers, _state in make_api(tmp_path, max_metadata_bytes=1000):
        fits = {"note": "x" * (1000 - len('{"note":""}'))}
        over = {"note": "x" * 1000}
        body = {"inputs": [{"id": "fits", "data": {"image": {"base64": b64(png(1))},
                                                   "metadata": fits}},
                           {"id": "over", "data": {"image": {"base64": b64(png(2))},
                                                   "metadata": over}}]}
        r = client.post("/v2/inputs", json=body, headers=headers)
        ok, refused = r.json()["inputs"]
        assert ok["status"]["code"] == 30000
        assert refused["status"]["code"] == 30105
        assert "the limit is 1,000 bytes" in refused["status"]["description"]


@sqlite_only
def test_starting_a_visualization_reads_no_metadata_unless_it_filters_by_it(api: Any) -> None:
    client, headers, state = api
    assert client.post("/v2/inputs", json=inputs(4, big="x" * 5000),
                       headers=headers).status_code == 200
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(state.db.engine, "before_cursor_execute", seen)
    try:
        r = client.post("/v2/visualizations", json={"grid": "2x2"}, headers=headers)
        assert r.status_code == 200, r.text
        assert not any("inputs.meta" in s for s in statements), statements
        r = client.post("/v2/visualizations", json={"grid": "2x2", "metadata": {"big": "y"}},
                        headers=headers)
        assert r.status_code == 400 and "none match" in r.text
    finally:
        event.remove(state.db.engine, "before_cursor_execute", seen)


# ---- item 7: a full disk or database --------------------------------------------------------


def test_a_full_blob_store_answers_507_and_collects_what_was_written(
        api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, headers, state = api
    real, calls = tempfile.mkstemp, []

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    r = client.post("/v2/inputs", json=inputs(3), headers=headers)
    monkeypatch.setattr(tempfile, "mkstemp", real)
    assert r.status_code == 507, r.text
    assert r.json()["status"]["code"] == 98014
    assert "storage is full" in r.json()["status"]["description"]
    assert client.get("/v2/inputs", headers=headers).json()["inputs"] == []
    written = [p for p in state.store.root.rglob("*") if p.is_file()]
    assert len(written) == 1  # the one blob that was written before the disk filled
    assert gc.sweep(state.db, state.store, 0) == 1
    assert not any(p.exists() for p in written)


def fill_database(db: Database) -> Any:
    """Make every new connection's SQLite file as full as it is now (SQLITE_FULL beyond)."""
    with db.engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar()

    def cap(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

    event.listen(db.engine, "connect", cap)
    db.engine.dispose()
    return cap


@sqlite_only
def test_a_full_database_answers_507_and_the_blobs_are_collected_later(api: Any) -> None:
    client, headers, state = api
    assert client.post("/v2/inputs", json=inputs(1, start=90), headers=headers).status_code == 200
    cap = fill_database(state.db)
    r = client.post("/v2/inputs", json=inputs(6, big="x" * 6000), headers=headers)
    assert r.status_code == 507, r.text
    assert r.json()["status"]["code"] == 98014
    assert "full" in r.json()["status"]["description"]
    v = client.post("/v2/visualizations", json={"grid": "1x1", "format": "png"},
                    headers=headers)
    assert v.status_code in (200, 507), v.text  # a small row may still fit a free page
    event.remove(state.db.engine, "connect", cap)
    state.db.engine.dispose()
    state.orphans.flush(state.db)
    assert len(state.orphans) == 0
    assert gc.sweep(state.db, state.store, 0) == 6
    assert len(blob_keys(state)) == 1


@sqlite_only
def test_a_job_that_runs_out_of_disk_says_so_and_its_outputs_are_collected(
        api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tsnegrid.service import worker as worker_mod

    client, headers, state = api
    assert client.post("/v2/inputs", json=inputs(2), headers=headers).status_code == 200
    r = client.post("/v2/visualizations", json={"grid": "1x2"}, headers=headers)
    viz_id = r.json()["output"]["id"]

    def build(self: Any, job: Any, work: Path, lease: Any) -> Any:
        self._put(b"a grid image written before the disk filled")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(worker_mod.Worker, "_build", build)
    worker_mod.Worker(state.config, state.db).drain()
    out = client.get(f"/v2/visualizations/{viz_id}", headers=headers).json()["output"]
    assert out["status"]["code"] == "FAILED"
    assert "storage is full (no space left on device)" in out["status"]["description"]
    assert "internal error" not in out["status"]["description"]
    assert gc.sweep(state.db, state.store, 0) == 1


# ---- weaknesses: failed keys, job cap, viewer links, public url -----------------------------


def test_repeated_failed_keys_meet_429_per_address(tmp_path: Path) -> None:
    for client, headers, _state in make_api(tmp_path, auth_failures_per_min=5):
        wrong = {"Authorization": "Key " + "0" * 40}
        codes = [client.get("/v2/inputs", headers=wrong).status_code for _ in range(5)]
        assert codes == [401] * 5
        r = client.get("/v2/inputs", headers=wrong)
        assert r.status_code == 429 and r.json()["status"]["code"] == 11005
        assert int(r.headers["Retry-After"]) >= 1
        assert client.get("/v2/inputs", headers=headers).status_code == 429  # same address


def test_repeated_failed_keys_meet_the_limit_over_grpc(tmp_path: Path) -> None:
    from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
    from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc

    from service_helpers import free_port

    port = free_port()
    for _client, headers, _state in make_api(tmp_path, auth_failures_per_min=3,
                                             grpc_port=port):
        with ClarifaiChannel.get_insecure_grpc_channel("127.0.0.1", port) as channel:
            stub = service_pb2_grpc.V2Stub(channel)

            def call(key: str, stub: Any = stub) -> int:
                return int(stub.ListInputs(service_pb2.ListInputsRequest(),
                                           metadata=(("authorization", key),)).status.code)

            assert [call("Key " + "1" * 40) for _ in range(3)] == [11009] * 3
            assert call("Key " + "1" * 40) == 11005
            assert call(headers["Authorization"]) == 11005


def test_jobs_are_capped_across_apps(tmp_path: Path) -> None:
    for client, headers, state in make_api(tmp_path, max_jobs=2):
        other = {"Authorization": f"Key {create_key(state.config.data_dir, 'other')}"}
        third = {"Authorization": f"Key {create_key(state.config.data_dir, 'third')}"}
        for h in (headers, other, third):
            assert client.post("/v2/inputs", json=inputs(2), headers=h).status_code == 200
        assert client.post("/v2/visualizations", json={}, headers=headers).status_code == 200
        assert client.post("/v2/visualizations", json={}, headers=other).status_code == 200
        r = client.post("/v2/visualizations", json={}, headers=third)
        assert r.status_code == 429 and "the server already has 2" in r.text


def finished(state: Any, app_name: str = "app") -> str:
    """A done visualization of ``app_name`` with an image, a layout and a one-page viewer."""
    store = state.store
    image, layout = store.put(b"grid"), store.put(b"{}")
    manifest = store.put(json.dumps({"index.html": store.put(b"<html>")}).encode())
    with state.db.session() as s:
        app_id = s.scalar(select(App.id).where(App.name == app_name))
        job = jobs.enqueue(s, app_id, {}, [])
        s.commit()
        claimed = jobs.claim_next(s, 3, "test")
        assert claimed is not None
        jobs.finish(s, job.pk, image, layout, claimed.attempts, manifest)
        return job.viz_id


@sqlite_only
def test_a_viewer_link_can_be_replaced_or_withdrawn_and_dies_with_the_key(api: Any) -> None:
    from tsnegrid.service.apps import revoke_app

    client, headers, state = api
    viz_id = finished(state)
    out = client.get(f"/v2/visualizations/{viz_id}", headers=headers).json()["output"]
    old = out["data"]["viewer"]["url"]
    assert client.get(old).status_code == 200
    r = client.post(f"/v2/visualizations/{viz_id}/viewer", headers=headers)
    assert r.status_code == 200, r.text
    new = r.json()["output"]["data"]["viewer"]["url"]
    assert new != old and client.get(old).status_code == 404
    assert client.get(new).status_code == 200
    assert client.delete(f"/v2/visualizations/{viz_id}/viewer",
                         headers=headers).status_code == 200
    assert client.get(new).status_code == 404
    out = client.get(f"/v2/visualizations/{viz_id}", headers=headers).json()["output"]
    assert "viewer" not in out["data"]
    newest = client.post(f"/v2/visualizations/{viz_id}/viewer",
                         headers=headers).json()["output"]["data"]["viewer"]["url"]
    assert client.get(newest).status_code == 200
    with state.db.session() as s:
        revoke_app(s, "app")
    assert client.get(newest).status_code == 404


def test_every_url_in_answers_follows_the_public_url(tmp_path: Path) -> None:
    base = "https://images.example.org/grid"
    for client, headers, state in make_api(tmp_path, public_url=base):
        posted = client.post("/v2/inputs", json=inputs(1), headers=headers).json()
        assert posted["inputs"][0]["data"]["image"]["url"].startswith(base + "/v2/inputs/")
        viz_id = finished(state)
        for path in (f"/v2/visualizations/{viz_id}", "/v2/visualizations",
                     "/v2/visualizations/app"):
            text_ = client.get(path, headers=headers).text
            urls = [u for u in text_.split('"') if "://" in u]
            assert len(urls) >= 3 and all(u.startswith(base + "/v2/") for u in urls), urls


# ---- slow clients (a real server) ------------------------------------------------------------


def test_slow_headers_and_bodies_time_out(start_server: Any) -> None:
    server = start_server(TSNEGRID_SERVICE_WORKERS="0", TSNEGRID_SERVICE_HEADER_TIMEOUT_S="1",
                          TSNEGRID_SERVICE_BODY_TIMEOUT_S="1")
    stalls = [b"GET /v2/inputs HTTP/1.1\r\nHost: x\r\n",  # headers never end
              b"POST /v2/inputs HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\n{\"in"]
    for stall in stalls:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(stall)
            t0 = time.monotonic()
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert time.monotonic() - t0 < 5
            assert answer.startswith(b"HTTP/1.1 408"), answer
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.settimeout(10)  # a connection that says nothing is closed too
        t0 = time.monotonic()
        sock.recv(4096)
        assert time.monotonic() - t0 < 5


# ---- durability --------------------------------------------------------------------------------


def test_sqlite_commits_are_synchronous_full(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    db.close()


def test_a_stored_blob_and_its_folder_entries_are_synced(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tsnegrid.service import storage

    store = BlobStore(tmp_path / "blobs")
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    store.put(b"first")  # new folders: the blob's, its parent's and the root's entries
    assert synced == ["file", "dir", "dir", "dir"]
    synced.clear()
    key = store.put(b"second")
    assert synced[0] == "file" and "dir" in synced[1:]
    assert store.read(key) == b"second"
