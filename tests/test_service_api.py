"""The HTTP API in-process (TestClient, jobs drained by an in-process worker): validation,
limits, auth, paging, error shapes, and one test per rejected input."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service_helpers import (
    b64,
    create_key,
    db_args,
    db_url,
    demo_images,
    image_inputs,
    sqlite_only,
)
from tsnegrid.service.api.schemas import VisualizationRequest
from tsnegrid.service.app import create_app
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.storage import BlobStore
from tsnegrid.service.worker import Worker, job_settings
from tsnegrid.settings import Settings

__all__ = ["db_url"]  # fixture used by name


@pytest.fixture
def config(tmp_path: Path, db_url: str | None) -> ServiceConfig:
    return ServiceConfig(data_dir=tmp_path / "data", db=db_url, workers=0,
                         cache_dir=tmp_path / "cache",
                         max_inputs_per_request=8, max_image_bytes=50_000,
                         max_image_pixels=300 * 300, max_body_bytes=400_000,
                         max_jobs_per_app=2, url_allow=[])


@pytest.fixture
def api(config: ServiceConfig) -> Iterator[tuple[TestClient, dict[str, str]]]:
    key = create_key(config.data_dir, "app", config.db)
    with TestClient(create_app(config)) as client:
        yield client, {"Authorization": f"Key {key}"}


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def one(data: bytes | None = None, **image: Any) -> dict[str, Any]:
    return {"data": {"image": image or {"base64": b64(data or png(8, 8))}}}


def assert_error(r: Any, http: int, words: str) -> None:
    assert r.status_code == http, r.text
    body = r.json()
    assert words.lower() in body["status"]["description"].lower(), body
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_request_defaults_come_from_settings() -> None:
    params = VisualizationRequest().settings_params()
    assert params == {k: getattr(Settings(), k) for k in params}


@sqlite_only
@pytest.mark.parametrize("header", [None, "", "Key", "Bearer abc", "Key wrong", "key  "])
def test_bad_or_missing_key_is_401(api: Any, header: str | None) -> None:
    client, _ = api
    headers = {"Authorization": header} if header is not None else {}
    for method, path in (("GET", "/v2/inputs"), ("POST", "/v2/visualizations"),
                         ("GET", "/v2/visualizations/x")):
        assert_error(client.request(method, path, headers=headers), 401, "key")


def test_revoked_key_is_401(api: Any, config: ServiceConfig) -> None:
    from click.testing import CliRunner

    from tsnegrid.cli import cli

    client, auth = api
    assert client.get("/v2/inputs", headers=auth).status_code == 200
    runner = CliRunner()
    where = ["--data", str(config.data_dir), *db_args(config.db)]
    res = runner.invoke(cli, ["apps", "create", "other", *where])
    assert res.exit_code == 0 and len(res.stdout.strip()) == 40
    res = runner.invoke(cli, ["apps", "list", *where])
    assert "app" in res.stdout and "other" in res.stdout and res.stdout.count("active") == 2
    assert runner.invoke(cli, ["apps", "revoke", "app", *where]).exit_code == 0
    assert_error(client.get("/v2/inputs", headers=auth), 401, "revoked")
    res = runner.invoke(cli, ["apps", "create", "other", *where])
    assert res.exit_code != 0 and "already exists" in res.output


@sqlite_only
@pytest.mark.parametrize("item,words", [
    (one(b"not an image"), "not an image"),
    (one(demo_images(1)[0].read_bytes()[:900]), "decode"),
    (one(png(400, 400)), "exceeds"),
    ({"data": {"image": {"base64": "@@@"}}}, "base64"),
    ({"data": {"image": {"base64": ""}}}, "empty"),
    ({"data": {"image": {}}}, "exactly one"),
    ({"data": {"image": {"base64": b64(png(8, 8)), "url": "http://x/"}}}, "exactly one"),
    ({"data": {"image": {"url": "file:///etc/passwd"}}}, "scheme"),
    ({"data": {"image": {"url": "http://127.0.0.1:1/a.png"}}}, "refused"),
    ({"data": {"image": {"url": "http://10.0.0.7/a.png"}}}, "refused"),
    ({"data": {"image": {"url": "http://169.254.169.254/latest/"}}}, "refused"),
    ({"id": "bad id/..", **one()}, "id must be"),
    ({"id": "x" * 129, **one()}, "id must be"),
])
def test_bad_input_is_rejected_and_good_ones_kept(api: Any, item: dict[str, Any],
                                                  words: str) -> None:
    client, auth = api
    r = client.post("/v2/inputs", headers=auth, json={"inputs": [one(), item]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"]["code"] == 10010
    good, bad = body["inputs"]
    assert good["status"]["code"] == 30000 and good["data"]["image"]["width"] == 8
    assert words.lower() in bad["status"]["description"].lower(), bad
    assert client.get("/v2/inputs", headers=auth).json()["pagination"]["total"] == 1
    r = client.post("/v2/inputs", headers=auth, json={"inputs": [item]})
    assert r.status_code == 400 and r.json()["status"]["code"] == 10020


@sqlite_only
def test_oversized_image_bytes_is_rejected(api: Any) -> None:
    client, auth = api
    noisy = Image.frombytes("RGB", (200, 200), bytes(range(256)) * 468 + bytes(192))
    buf = io.BytesIO()
    noisy.save(buf, "BMP")
    r = client.post("/v2/inputs", headers=auth, json={"inputs": [one(buf.getvalue())]})
    assert r.status_code == 400 and "bytes" in r.json()["inputs"][0]["status"]["description"]


def test_duplicate_ids_are_refused_per_input(api: Any) -> None:
    client, auth = api
    r = client.post("/v2/inputs", headers=auth,
                    json={"inputs": [{"id": "a", **one()}, {"id": "a", **one()}]})
    assert [i["status"]["code"] for i in r.json()["inputs"]] == [30000, 30100]
    r = client.post("/v2/inputs", headers=auth, json={"inputs": [{"id": "a", **one()}]})
    assert "already exists" in r.json()["inputs"][0]["status"]["description"]


@sqlite_only
@pytest.mark.parametrize("body,http,words", [
    ({"inputs": [one()] * 9}, 413, "limit is 8"),
    ({"inputs": []}, 400, "inputs"),
    ({"inputs": "x"}, 400, "inputs"),
    ({}, 400, "inputs"),
    ({"inputs": [{"data": {}}]}, 400, "image"),
])
def test_malformed_or_too_many_inputs(api: Any, body: Any, http: int, words: str) -> None:
    client, auth = api
    assert_error(client.post("/v2/inputs", headers=auth, json=body), http, words)


@sqlite_only
def test_body_limit_and_bad_json(api: Any) -> None:
    client, auth = api
    big = b'{"inputs": [' + b" " * 500_000 + b"]}"
    assert_error(client.post("/v2/inputs", headers=auth, content=big), 413, "body")
    assert_error(client.post("/v2/inputs", content=b"{nope",
                                 headers={**auth, "Content-Type": "application/json"}), 400, "json")

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b" " * 10_000

    assert_error(client.post("/v2/inputs", headers=auth, content=chunks()), 413, "body")


def test_list_get_delete_inputs(api: Any) -> None:
    client, auth = api
    files = demo_images(5)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files)})
    page = client.get("/v2/inputs", headers=auth, params={"page": 2, "per_page": 2}).json()
    assert [i["id"] for i in page["inputs"]] == [files[2].stem, files[3].stem]
    assert page["pagination"] == {"page": 2, "per_page": 2, "total": 5}
    got = client.get(f"/v2/inputs/{files[0].stem}", headers=auth).json()["input"]
    assert got["data"]["metadata"]["name"] == files[0].stem
    img = client.get(f"/v2/inputs/{files[0].stem}/image", headers=auth)
    assert img.content == files[0].read_bytes() and img.headers["content-type"] == "image/png"
    assert client.delete(f"/v2/inputs/{files[0].stem}", headers=auth).status_code == 200
    assert_error(client.get(f"/v2/inputs/{files[0].stem}", headers=auth), 404, "not found")
    r = client.request("DELETE", "/v2/inputs", headers=auth,
                       json={"ids": [files[1].stem, "missing"]})
    assert r.status_code == 200 and r.json()["status"]["code"] == 10010
    assert client.get("/v2/inputs", headers=auth).json()["pagination"]["total"] == 3
    assert_error(client.get("/v2/inputs", headers=auth, params={"page": 0}), 400, "page")


@sqlite_only
@pytest.mark.parametrize("body,http,words", [
    ({"grid": "2x2"}, 400, "grid"),
    ({"grid": "banana"}, 400, "grid"),
    ({"background": "not-a-colour"}, 400, "colour"),
    ({"model": "/etc/passwd.onnx"}, 400, "model"),
    ({"reducer": "magic"}, 400, "reducer"),
    ({"tile": 0}, 400, "tile"),
    ({"unknown": 1}, 400, "extra"),
    ({"input_ids": ["nope"]}, 404, "nope"),
    ({"metadata": {"name": "nobody"}}, 400, "no inputs"),
    ({"tile": 512, "grid": "200x200"}, 400, "pixel"),
])
def test_bad_visualization_requests(api: Any, body: dict[str, Any], http: int,
                                    words: str) -> None:
    client, auth = api
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(demo_images(6))})
    assert_error(client.post("/v2/visualizations", headers=auth, json=body), http, words)


@sqlite_only
def test_too_small_grid_is_refused_in_the_apis_words(api: Any) -> None:
    """The error names the request field and its values, not the CLI's options."""
    client, auth = api
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(demo_images(6))})
    for body in ({"grid": "2x2"}, {"grid": "1x5", "model": "pixels"}):
        r = client.post("/v2/visualizations", headers=auth, json=body)
        rows, cols = body["grid"].split("x")
        assert_error(r, 400, f'grid: "{body["grid"]}" has {int(rows) * int(cols)} cells, too '
                             'few for 6 inputs; use a larger grid or "auto"')
        description = r.json()["status"]["description"]
        assert "--" not in description and "\n" not in description
        assert r.json()["status"]["code"] == 42003  # VISUALIZATION_INVALID_REQUEST


def test_visualization_lifecycle_with_in_process_worker(api: Any,
                                                        config: ServiceConfig) -> None:
    client, auth = api
    assert_error(client.post("/v2/visualizations", headers=auth), 400, "no inputs")
    files = demo_images(8)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files[:4], group="a")})
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files[4:], group="b")})
    r = client.post("/v2/visualizations", headers=auth,
                    json={"model": "pixels", "reducer": "pca", "metadata": {"group": "a"}})
    first = r.json()["output"]
    assert first["status"]["code"] == "PENDING" and first["input_count"] == 4
    assert_error(client.get(f"/v2/visualizations/{first['id']}/image", headers=auth), 404,
                 "no image yet")
    r = client.post("/v2/visualizations", headers=auth,
                    json={"model": "pixels", "reducer": "pca", "input_ids": [files[0].stem,
                                                                             files[5].stem]})
    second = r.json()["output"]
    assert_error(client.post("/v2/visualizations", headers=auth, json={"model": "pixels"}),
                 429, "pending or running")
    assert client.delete(f"/v2/visualizations/{second['id']}", headers=auth).status_code == 200
    assert Worker(config).drain() == 1
    out = client.get(f"/v2/visualizations/{first['id']}", headers=auth).json()["output"]
    assert out["status"]["code"] == "DONE" and out["status"]["progress"] == 100
    layout = client.get(f"/v2/visualizations/{first['id']}/layout", headers=auth).json()
    assert {i["input_id"] for i in layout["images"]} == {f.stem for f in files[:4]}
    assert client.get(out["data"]["image"]["url"], headers=auth).headers[
        "content-type"] == "image/jpeg"
    listing = client.get("/v2/visualizations", headers=auth).json()
    assert [o["id"] for o in listing["outputs"]] == [first["id"]]
    # deleting an input does not break a job that already has it
    client.delete(f"/v2/inputs/{files[0].stem}", headers=auth)
    r = client.post("/v2/visualizations", headers=auth, json={"model": "pixels",
                                                              "reducer": "pca"})
    assert r.json()["output"]["input_count"] == 7


def test_failed_job_reports_reason(api: Any, config: ServiceConfig) -> None:
    client, auth = api
    files = demo_images(2)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files)})
    r = client.post("/v2/visualizations", headers=auth, json={"model": "pixels"})
    store = BlobStore(config.blob_url)
    for f in files:  # the stored bytes go bad after upload
        store.path(hashlib.sha256(f.read_bytes()).hexdigest()).write_bytes(b"garbage")
    viz_id = r.json()["output"]["id"]
    Worker(config).drain()
    out = client.get(f"/v2/visualizations/{viz_id}", headers=auth).json()["output"]
    assert out["status"]["code"] == "FAILED"
    reason = out["status"]["description"]
    assert "could be read" in reason and "Traceback" not in reason and str(config.data_dir) \
        not in reason


@sqlite_only
def test_health_docs_and_openapi(api: Any) -> None:
    client, _ = api
    assert client.get("/healthz").json()["status"]["code"] == 10000
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v2/inputs", "/v2/visualizations", "/v2/visualizations/{viz_id}"} <= set(
        spec["paths"])
    assert_error(client.get("/v2/nothing"), 404, "not found")
    assert_error(client.put("/v2/inputs"), 405, "not allowed")


@sqlite_only
def test_second_server_on_same_data_is_refused(api: Any, config: ServiceConfig) -> None:
    from click.testing import CliRunner

    from tsnegrid.cli import cli

    res = CliRunner().invoke(cli, ["serve", "--data", str(config.data_dir), "--port", "1"])
    assert res.exit_code != 0 and "another server" in res.output


@sqlite_only
def test_clients_cannot_pick_a_scheduler(api: Any, config: ServiceConfig) -> None:
    client, auth = api
    r = client.post("/v2/visualizations", headers=auth,
                    json={"scheduler": "tcp://10.0.0.1:8786"})
    assert_error(r, 400, "extra")
    server_side = config.model_copy(update={"scheduler": "tcp://127.0.0.1:8786"})
    assert job_settings({}, server_side).scheduler == "tcp://127.0.0.1:8786"
    assert job_settings({}, config).scheduler == ""


@pytest.mark.parametrize("args,words", [
    (["--db", "mysql://u:p@localhost/db"], "unsupported database"),
    (["--db", "postgresql://u:secret@127.0.0.1:1/none"], "cannot use the database"),
    (["--blobs", "nosuchprotocol://bucket"], "blob store"),
    (["--scheduler", "host:8786"], "tcp://host:8786"),
])
def test_serve_refuses_unusable_backends(tmp_path: Path, args: list[str], words: str) -> None:
    from click.testing import CliRunner

    from tsnegrid.cli import cli

    res = CliRunner().invoke(cli, ["serve", "--data", str(tmp_path / "d"), "--port", "1", *args])
    assert res.exit_code != 0 and words in res.output, res.output
    assert "secret" not in res.output and "Traceback" not in res.output


def test_apps_need_data_or_db() -> None:
    from click.testing import CliRunner

    from tsnegrid.cli import cli

    res = CliRunner().invoke(cli, ["apps", "list"], env={"TSNEGRID_SERVICE_DB": None})
    assert res.exit_code == 2 and "--db" in res.output


@sqlite_only
def test_jobs_embed_on_the_servers_dask_cluster(api: Any, config: ServiceConfig) -> None:
    distributed = pytest.importorskip("distributed")
    client, auth = api
    files = demo_images(6, start=40)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files)})
    viz_id = client.post("/v2/visualizations", headers=auth, json={
        "model": "pixels", "reducer": "pca"}).json()["output"]["id"]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        on_cluster = config.model_copy(update={"scheduler": cluster.scheduler_address})
        assert Worker(on_cluster).drain() == 1
        assert "embed_chunk" in cluster.scheduler.task_prefixes  # the images went there
    out = client.get(f"/v2/visualizations/{viz_id}", headers=auth).json()["output"]
    assert out["status"]["code"] == "DONE", out


@sqlite_only
def test_the_viewer_is_titled_after_the_app(api: Any, config: ServiceConfig) -> None:
    """As the CLI's page is titled after its output folder ("tsnegrid: out")."""
    client, auth = api
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(demo_images(4))})
    viz_id = client.post("/v2/visualizations", headers=auth,
                         json={"model": "pixels", "reducer": "pca"}).json()["output"]["id"]
    assert Worker(config).drain() == 1
    out = client.get(f"/v2/visualizations/{viz_id}", headers=auth).json()["output"]
    page = client.get(out["data"]["viewer"]["url"]).text
    assert "<title>tsnegrid: app</title>" in page and "<h1>tsnegrid: app</h1>" in page
    assert viz_id not in page


def test_finished_visualization_has_a_viewer_link(api: Any, config: ServiceConfig) -> None:
    client, auth = api
    files = demo_images(6)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files, group="g")})
    viz_id = client.post("/v2/visualizations", headers=auth,
                         json={"model": "pixels", "reducer": "pca"}).json()["output"]["id"]
    assert Worker(config).drain() == 1
    out = client.get(f"/v2/visualizations/{viz_id}", headers=auth).json()["output"]
    url = out["data"]["viewer"]["url"]
    assert url.endswith("/index.html") and f"/v2/visualizations/{viz_id}/viewer/" in url
    base = url.removesuffix("index.html")
    page = client.get(url)  # no Authorization header: the link's token is the credential
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<link rel="icon" href="data:' in page.text  # so no request for /favicon.ico
    script = client.get(base + "layout.js").text
    assert '"group"' in script  # the inputs' metadata feeds hover and colour-by
    # what the page knows of each image: the data file of its block of the grid (one here)
    chunk = client.get(base + "data/c0_0.js").text
    assert all(f.stem in chunk for f in files)
    assert str(config.data_dir) not in script + chunk
    assert client.get(base + "viewer/openseadragon.min.js").status_code == 200
    assert client.get(base + "grid.jpg").headers["content-type"] == "image/jpeg"
    # "more like this": the look-alikes travel in data/n*.js, the .npy stays on the server
    assert '"neighbors":{"k":' in script
    assert client.get(base + "data/n0_0.js").status_code == 200
    assert_error(client.get(base + "neighbors.npy"), 404, "")
    original = client.get(base + f"inputs/{files[0].stem}")
    assert original.status_code == 200 and original.content == files[0].read_bytes()
    token = base.rstrip("/").rsplit("/", 1)[1]
    for bad in (url.replace(token, "x" * len(token)), base + "inputs/not-in-this-grid",
                base + "no-such-file.js", url.replace(viz_id, "nope")):
        assert_error(client.get(bad), 404, "")
