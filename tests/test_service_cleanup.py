"""What a killed server leaves behind is removed at start-up, and the blobs of deleted inputs
and visualizations are collected, never one that another row still uses."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service_helpers import b64, create_key, db_url
from tsnegrid.service import gc, jobs
from tsnegrid.service.app import create_app
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import App, BlobCandidate
from tsnegrid.service.storage import BlobStore

__all__ = ["db_url"]  # fixture used by name


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, "PNG")
    return buf.getvalue()


def test_startup_removes_work_folders_and_unfinished_blob_writes(tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data", workers=0, cache_dir=tmp_path / "cache")
    store = BlobStore(config.blob_url)
    kept = store.put(b"a finished blob")
    tmp = store.path(kept).parent / ".tmp-abc123"
    tmp.write_bytes(b"half of a blob")
    work = config.work_dir / "0123456789abcdef" / "in"
    work.mkdir(parents=True)
    (work / "000000").write_bytes(b"a job's copy of an input")
    create_key(config.data_dir, "app")
    with TestClient(create_app(config)):
        assert not tmp.exists()
        assert not any(config.work_dir.iterdir())
        assert store.read(kept) == b"a finished blob"


def test_a_shared_store_keeps_fresh_temporary_files(tmp_path: Path) -> None:
    """Another server may be writing into a store outside this data folder right now."""
    shared = tmp_path / "shared-blobs"
    config = ServiceConfig(data_dir=tmp_path / "data", blobs=str(shared), workers=0)
    store = BlobStore(config.blob_url)
    key = store.put(b"x")
    fresh, old = store.path(key).parent / ".tmp-fresh", store.path(key).parent / ".tmp-old"
    fresh.write_bytes(b"1")
    old.write_bytes(b"2")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert gc.clean_at_startup(config, store) == (0, 1)
    assert fresh.exists() and not old.exists()


@pytest.fixture
def api(tmp_path: Path, db_url: str | None) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    config = ServiceConfig(data_dir=tmp_path / "data", db=db_url, workers=0,
                           cache_dir=tmp_path / "cache", blob_grace_s=0)
    key = create_key(config.data_dir, "app", db_url)
    with TestClient(create_app(config)) as client:
        yield client, {"Authorization": f"Key {key}"}, client.app.state.service  # type: ignore[attr-defined]


def upload(client: TestClient, headers: dict[str, str], **images: bytes) -> dict[str, str]:
    body = {"inputs": [{"id": i, "data": {"image": {"base64": b64(d)}}}
                       for i, d in images.items()]}
    r = client.post("/v2/inputs", json=body, headers=headers)
    assert r.status_code == 200, r.text
    keys = {}
    with client.app.state.service.db.session() as s:  # type: ignore[attr-defined]
        from tsnegrid.service.db import Input

        for i in images:
            keys[i] = s.query(Input.blob_key).filter(Input.input_id == i).scalar()
    return keys


def test_deleted_inputs_blobs_are_collected_unless_still_used(api: Any) -> None:
    client, headers, state = api
    red, blue, green = png((255, 0, 0)), png((0, 0, 255)), png((0, 255, 0))
    keys = upload(client, headers, a=red, b=red, c=blue, d=green)
    assert keys["a"] == keys["b"]
    with state.db.session() as s:  # a job that was given d keeps its copy
        app_id = s.query(App.id).scalar()
        job = jobs.enqueue(s, app_id, {}, [["d", keys["d"]]])
        s.commit()
        viz_id = job.viz_id
    assert client.delete("/v2/inputs/a", headers=headers).status_code == 200
    r = client.request("DELETE", "/v2/inputs", json={"ids": ["c", "d"]}, headers=headers)
    assert r.status_code == 200, r.text
    assert gc.sweep(state.db, state.store, 0) == 1
    assert state.store.exists(keys["b"])  # b has the same bytes as a
    assert not state.store.exists(keys["c"])
    assert state.store.exists(keys["d"])  # the job still uses it
    assert client.delete(f"/v2/visualizations/{viz_id}", headers=headers).status_code == 200
    assert gc.sweep(state.db, state.store, 0) == 1
    assert not state.store.exists(keys["d"])
    with state.db.session() as s:
        assert s.query(BlobCandidate).count() == 0


def finished(state: Any, app_id: int, shared_js: str, name: str) -> tuple[str, list[str]]:
    """A done visualization row with its own outputs and a viewer sharing ``shared_js``."""
    store = state.store
    own = [store.put(f"{name} grid".encode()), store.put(f"{name} layout".encode())]
    page = store.put(f"{name} index.html".encode())
    manifest = store.put(json.dumps({"index.html": page, "viewer.js": shared_js}).encode())
    with state.db.session() as s:
        job = jobs.enqueue(s, app_id, {}, [])
        s.commit()
        claimed = jobs.claim_next(s, 3, "test")
        assert claimed is not None
        jobs.finish(s, job.pk, own[0], own[1], claimed.attempts, manifest)
        return job.viz_id, [*own, page, manifest]


def test_deleted_visualizations_blobs_are_collected_but_shared_viewer_files_kept(
        api: Any) -> None:
    client, headers, state = api
    with state.db.session() as s:
        app_id = s.query(App.id).scalar()
    shared = state.store.put(b"the viewer's script, the same in every visualization")
    first, first_keys = finished(state, app_id, shared, "first")
    second, second_keys = finished(state, app_id, shared, "second")
    assert client.delete(f"/v2/visualizations/{first}", headers=headers).status_code == 200
    assert gc.sweep(state.db, state.store, 0) == len(first_keys)
    assert not any(state.store.exists(k) for k in first_keys)
    assert state.store.exists(shared) and all(state.store.exists(k) for k in second_keys)
    assert client.get(f"/v2/visualizations/{second}/image", headers=headers).status_code == 200
    assert client.delete(f"/v2/visualizations/{second}", headers=headers).status_code == 200
    assert gc.sweep(state.db, state.store, 0) == len(second_keys) + 1
    assert not state.store.exists(shared)


def test_a_blob_written_again_within_the_grace_period_is_spared(api: Any) -> None:
    """An upload storing the same bytes right now refreshes the blob before its row exists."""
    client, headers, state = api
    keys = upload(client, headers, a=png((1, 2, 3)))
    assert client.delete("/v2/inputs/a", headers=headers).status_code == 200
    state.store.put(png((1, 2, 3)))  # the concurrent upload, its row not yet written
    long_ago = time.time() - 3600
    with state.db.session() as s:  # the candidate is old, the write is not
        s.query(BlobCandidate).update({BlobCandidate.since: jobs.utcnow()
                                       - jobs.dt.timedelta(hours=1)})
    assert gc.sweep(state.db, state.store, 600) == 0
    assert state.store.exists(keys["a"])
    os.utime(state.store.path(keys["a"]), (long_ago, long_ago))
    assert gc.sweep(state.db, state.store, 600) == 1
