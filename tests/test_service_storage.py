"""The blob store on a local folder, a file:// URL and an fsspec filesystem (memory://), and the
API serving blobs from a store that is not local."""

from __future__ import annotations

import hashlib
import importlib.util
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service_helpers import create_key, demo_images, image_inputs
from tsnegrid.errors import InputError, MissingDependencyError
from tsnegrid.service.app import create_app
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.storage import BlobStore
from tsnegrid.service.worker import Worker


def memory_url() -> str:
    return f"memory://tsnegrid-tests/{uuid.uuid4().hex}"


@pytest.mark.parametrize("kind", ["folder", "file-url", "memory"])
def test_put_read_link_delete(kind: str, tmp_path: Path) -> None:
    url = {"folder": str(tmp_path / "blobs"), "file-url": (tmp_path / "blobs").as_uri(),
           "memory": memory_url()}[kind]
    store = BlobStore(url)
    assert store.local == (kind != "memory")
    data = b"\x89PNG some bytes" * 1000
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.put(data) == key and store.exists(key)
    assert store.read(key) == data
    assert b"".join(store.chunks(key)) == data
    store.link(key, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == data
    if store.local:  # content-addressed layout, no temporary files left behind
        assert store.path(key) == tmp_path / "blobs" / key[:2] / key[2:4] / key
        assert not list((tmp_path / "blobs").rglob(".tmp-*"))
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # deleting twice is fine
    with pytest.raises(ValueError, match="blob key"):
        store.read("../../etc/passwd")


def test_bad_blob_urls_are_refused() -> None:
    with pytest.raises(InputError, match="blob store"):
        BlobStore("nosuchprotocol://bucket/prefix")
    with pytest.raises(InputError, match="no host"):
        BlobStore("file://otherhost/blobs")


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_s3_without_s3fs_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError, match=r"tsnegrid\[s3\]"):
        BlobStore("s3://bucket/prefix")


def test_api_serves_blobs_from_an_fsspec_store(tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data", blobs=memory_url(), workers=0,
                           cache_dir=tmp_path / "cache")
    auth = {"Authorization": f"Key {create_key(config.data_dir, 'app')}"}
    files = demo_images(6)
    with TestClient(create_app(config)) as client:
        r = client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files)})
        assert r.status_code == 200, r.text
        image = client.get(f"/v2/inputs/{files[0].stem}/image", headers=auth)
        assert image.content == files[0].read_bytes()
        assert image.headers["content-type"] == "image/png"
        viz_id = client.post("/v2/visualizations", headers=auth, json={
            "model": "pixels", "reducer": "pca", "format": "png"}).json()["output"]["id"]
        assert Worker(config).drain() == 1
        out = client.get(f"/v2/visualizations/{viz_id}", headers=auth).json()["output"]
        assert out["status"]["code"] == "DONE", out
        grid = client.get(out["data"]["image"]["url"], headers=auth)
        assert grid.status_code == 200 and grid.content.startswith(b"\x89PNG")
        assert f"{viz_id}.png" in grid.headers["content-disposition"]
        layout = client.get(out["data"]["layout"]["url"], headers=auth).json()
        assert len(layout["images"]) == 6
    assert not (config.data_dir / "blobs").exists()  # nothing went to the local folder
