"""Clarifai's official Python clients, unchanged, against a started ``tsnegrid serve``.

``clarifai==2.6.2`` (the REST client of the v2 API's era), ``clarifai-grpc==12.6.0`` (the
current protos' client, over its JSON channel and its default gRPC channel) and
``clarifai==12.5.0`` (today's SDK, gRPC only, also over TLS) each live in their own venv, made
by ``.ci/install-clarifai-clients``; the scripts in tests/clarifai_drivers/ run in those venvs
and report what each call returned, and the checks are here. Url inputs come from a loopback
image server that the service is told it may reach (TSNEGRID_SERVICE_URL_ALLOW).
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service_helpers import DEMO, Server, create_key, demo_images, service_cache
from tsnegrid.embed import embed_images
from tsnegrid.embed.lite0 import load_lite0
from tsnegrid.service.apps import revoke_app
from tsnegrid.service.db import Database

__all__ = ["service_cache"]  # fixture used by name

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = Path(__file__).resolve().parent / "clarifai_drivers"
VENVS = {"rest26": ROOT / ".venv-clarifai26", "grpc_json": ROOT / ".venv-clarifai-grpc",
         "sdk12": ROOT / ".venv-clarifai-sdk"}
DRIVER_TIMEOUT_S = 900


def client_python(name: str) -> Path:
    python = VENVS[name] / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"{VENVS[name].name} is absent: run .ci/install-clarifai-clients to make "
                    "the official Clarifai client venvs")
    return python


@pytest.fixture(scope="module")
def image_host() -> Iterator[str]:
    """The demo images over HTTP on loopback."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DEMO))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, service_cache: Path,
           image_host: str) -> Iterator[dict[str, Any]]:
    """One server, REST and gRPC; an app per client and channel, ``other``, and ``gone``
    whose key is revoked."""
    root = tmp_path_factory.mktemp("clarifai-clients")
    data = root / "data"
    keys = {name: create_key(data, name)
            for name in ("rest", "json", "grpc", "sdk", "other", "gone")}
    db = Database(data / "service.sqlite")
    with db.session() as s:
        revoke_app(s, "gone")
        s.commit()
    db.close()
    server = Server(data, service_cache, grpc=True,
                    TSNEGRID_SERVICE_URL_ALLOW=json.dumps(["127.0.0.1/32"])).start()
    try:
        yield {"url": server.url, "grpc_port": server.grpc_port, "keys": keys, "root": root}
    finally:
        server.stop()


def drive(name: str, served: dict[str, Any], app: str, image_host: str,
          **extra: Any) -> dict[str, Any]:
    """Run driver ``name`` in its client's venv (``extra`` joins its spec); what it
    reported."""
    python = client_python(name)
    files = demo_images(8)
    work = served["root"] / f"{name}-{app}"
    work.mkdir()
    spec = {"base_url": served["url"], "key": served["keys"][app],
            "revoked_key": served["keys"]["gone"], "app_id": app, "other_app_id": "other",
            "files": [str(f) for f in files], "url": f"{image_host}/{files[7].name}",
            "grpc_host": "127.0.0.1", "grpc_port": served["grpc_port"],
            "grpc_base": f"http://127.0.0.1:{served['grpc_port']}", "work": str(work), **extra}
    proc = subprocess.run([str(python), str(DRIVERS / f"{name}.py")], input=json.dumps(spec),
                          capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S,
                          cwd=work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@functools.cache
def own_vectors(cache: Path, names: tuple[str, ...]) -> np.ndarray:
    """tsnegrid's own Lite0 embedding of the demo files, computed here without any cache."""
    files = [DEMO / n for n in names]
    return embed_images(files, load_lite0(cache)).vectors


def assert_close(vector: list[float], want: np.ndarray) -> None:
    assert len(vector) == len(want) == 1280
    assert np.abs(np.asarray(vector, dtype=np.float32) - want).max() < 1e-4


def test_clarifai_2_6_2_rest_client(served: dict[str, Any], image_host: str,
                                    service_cache: Path) -> None:
    r = drive("rest26", served, "rest", image_host)
    files = demo_images(8)
    # ClarifaiApp() lists the models on construction
    assert {"id": "lite0", "name": "EfficientNet-Lite0", "type": "embed",
            "version": "1"} in r["models"]
    for step, want in (("from_filename", "f0"), ("from_bytes", "f1"), ("from_base64", "f2"),
                       ("from_url", "u0"), ("get", "f0")):
        assert r[step]["id"] == want and r[step]["status"] == 30000, (step, r[step])
        assert r[step]["url"].startswith(served["url"] + "/v2/inputs/"), r[step]
    assert r["get"]["metadata"] == {"source": "filename"}
    assert [b["id"] for b in r["bulk"]] == ["b0", "b1", "b2", "b3", "b4"]
    assert all(b["status"] == 30000 and b["metadata"] == {"batch": True} for b in r["bulk"])
    assert r["page1"] == ["f0", "f1", "f2"] and r["page2"] == ["u0", "b0", "b1"]
    assert r["all"] == ["f0", "f1", "f2", "u0", "b0", "b1", "b2", "b3", "b4"]
    assert r["counts"] == {"processed": 9, "to_process": 0, "errors": 0}
    assert r["delete_one"] == 10000 and r["delete_many"] == 10000
    assert r["after_delete"] == ["b0", "b1", "b2", "b3", "b4", "f0"]
    assert r["get_deleted"]["http"] == 404 and r["get_deleted"]["code"] == 11101
    # the model's vectors are tsnegrid's own embedding of the same files
    own = own_vectors(service_cache, (files[0].name, files[1].name))
    assert r["predict"]["status"] == 10000 and len(r["predict"]["outputs"]) == 1
    assert r["predict"]["outputs"][0]["num_dimensions"] == 1280
    assert_close(r["predict"]["outputs"][0]["vector"], own[0])
    assert_close(r["predict_base64"], own[1])
    # the v2 stub's visualization methods, until the grid image downloads
    started = r["viz_started"]
    assert started["top"] == 10000 and started["code"] == 42001 and started["inputs"] == 6
    assert started["app_id"] == "rest"
    done = r["viz_done"]
    assert done["code"] == 42000 and done["description"] == "Done", done
    assert r["viz_codes"] == [42000, 42001]
    assert done["app_latest"] == done["id"] == started["id"]
    assert done["inputs"] == r["after_delete"] and done["created_at"].endswith("Z")
    assert r["viz_image"] == {"http": 200, "type": "image/jpeg"}
    with Image.open(io.BytesIO((served["root"] / "rest26-rest" / "grid.bin").read_bytes())) as im:
        im.load()
        size = im.size
    viz = httpx.get(f"{served['url']}/v2/visualizations/{done['id']}", timeout=60,
                    headers={"Authorization": f"Key {served['keys']['rest']}"}).json()
    layout = httpx.get(viz["output"]["data"]["layout"]["url"], timeout=60,
                       headers={"Authorization": f"Key {served['keys']['rest']}"}).json()
    tile = viz["output"]["params"]["tile"]
    assert size == (layout["grid"]["cols"] * tile, layout["grid"]["rows"] * tile)
    assert r["viz_missing"]["http"] == 404 and r["viz_missing"]["code"] == 11101
    assert r["delete_all"] == 10000 and r["after_delete_all"] == []
    # keys refused the proto's way (the client raises ApiError carrying the code)
    assert r["wrong_key"] == {"http": 401, "code": 11009, "description": "API key not found"}
    assert r["revoked_key"] == {"http": 401, "code": 11008, "description": "API key revoked"}


@pytest.mark.parametrize("channel", ["json", "grpc"])
def test_clarifai_grpc_client_both_channels(served: dict[str, Any], image_host: str,
                                            service_cache: Path, channel: str) -> None:
    """The same calls over the JSON channel (REST) and the default insecure gRPC channel."""
    r = drive("grpc_json", served, channel, image_host, channel=channel)
    files = demo_images(8)
    own = own_vectors(service_cache, (files[0].name, files[7].name, files[1].name))
    before: list[str] = []
    for label in ("plain", "user_app_id"):
        got = r[label]
        ids = [f"{label}-0", f"{label}-1", f"{label}-2", f"{label}-url"]
        assert got["post"]["code"] == 10000
        assert got["post"]["inputs"] == [[i, 30000] for i in ids]
        assert got["list"]["code"] == 10000 and got["list"]["ids"] == before + ids
        assert got["list"]["metadata"][-4:] == [{"via": label}] * 3 + [{}]
        assert got["page2"] == (before + ids)[2:4]
        assert got["get"]["code"] == 10000 and got["get"]["id"] == ids[0]
        assert got["get"]["input_code"] == 30000
        assert got["count"]["code"] == 10000 and got["count"]["processed"] == len(before) + 4
        assert got["models"]["code"] == 10000 and got["models"]["ids"] == [
            "lite0", "lite0-concepts", "pixels"]
        assert got["models"]["types"] == ["visual-embedder", "visual-classifier",
                                          "visual-embedder"]
        assert got["model"] == {"code": 10000, "description": "Ok", "id": "lite0",
                                "version": "1"}
        outputs = got["outputs"]
        assert outputs["code"] == 10000 and [o["code"] for o in outputs["outputs"]] == [10000] * 3
        for out, want in zip(outputs["outputs"], own, strict=True):  # base64, url, input id
            assert out["num_dimensions"] == 1280
            assert_close(out["vector"], want)
        assert got["no_model"]["code"] == 21200
        concepts = got["concepts"]["concepts"]  # the concept model, through the official protos
        assert got["concepts"]["code"] == 10000 and len(concepts) == 3
        assert [v for _, _, v in concepts] == sorted((v for _, _, v in concepts), reverse=True)
        assert all(i.startswith("n") and name for i, name, _ in concepts)
        assert got["delete_one"]["code"] == 10000 and got["delete_many"]["code"] == 10000
        assert got["get_deleted"]["code"] == 11101
        before = [ids[0]]
    refused = r["refused"]
    for label in ("other_app", "missing_app"):
        for call in ("list", "count", "models"):
            assert refused[label][call]["code"] == 11101, (label, call)
    assert refused["other_app"]["list"]["description"].replace("other", "X") == \
        refused["missing_app"]["list"]["description"].replace("no-such-app", "X")
    assert refused["wrong_key"]["code"] == 11009 and refused["revoked_key"]["code"] == 11008
    assert refused["unimplemented"]["code"] == 10040
    assert "ListConcepts" in refused["unimplemented"]["description"]


def bulk_folder(root: Path, n: int) -> Path:
    """``n`` demo images in a folder of their own (the SDK's folder upload reads every file)."""
    folder = root / "bulk"
    folder.mkdir()
    for f in demo_images(n, start=8):
        (folder / f.name).write_bytes(f.read_bytes())
    return folder


def wait_visualization(base: str, key: str, verify: Any = True) -> tuple[dict[str, Any], bytes]:
    """A REST visualization of all the app's inputs, polled until done; it and its image."""
    auth = {"Authorization": f"Key {key}"}
    with httpx.Client(base_url=base, headers=auth, timeout=60, verify=verify) as client:
        started = client.post("/v2/visualizations", json={}).json()
        viz_id = started["visualization_output"]["id"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            viz = client.get(f"/v2/visualizations/{viz_id}").json()["visualization_output"]
            if viz["status"]["code"] != 42001:
                break
            time.sleep(0.5)
        image = client.get(viz["data"]["image"]["url"]).content if "data" in viz else b""
    return viz, image


def test_clarifai_sdk_12_5_over_grpc(served: dict[str, Any], image_host: str,
                                     service_cache: Path) -> None:
    """Today's SDK, base_url and key only: uploads (file, bytes, url, a folder in batches),
    listing, counting, models, predictions; then a REST grid of what it uploaded."""
    folder = bulk_folder(served["root"], 20)
    started = time.monotonic()
    r = drive("sdk12", served, "sdk", image_host, folder=str(folder), batch=8,
              delete=["bytes1"])
    took = time.monotonic() - started
    bulk = sorted(p.stem for p in folder.iterdir())
    assert sorted(r["all"]) == sorted(["file0", "bytes1", "url2", *bulk])
    assert r["all"][:3] == ["file0", "bytes1", "url2"]  # oldest first
    assert r["page2"] == r["all"][2:4]
    assert r["count"] == len(r["all"]) == 23
    assert r["urls"] == [f"{served['url']}/v2/inputs/file0/image"]
    assert r["user_app"] == "sdk"
    assert r["models"] == ["lite0", "lite0-concepts", "pixels"]
    files = demo_images(1)
    own = own_vectors(service_cache, (files[0].name,))
    for label in ("typed", "untyped", "app_model", "main_model"):
        assert_close(r["vectors"][label], own[0])
    values = [v for _, _, v in r["concepts"]]
    assert len(values) == 3 and values == sorted(values, reverse=True)
    assert all(i.startswith("n") and name for i, name, _ in r["concepts"])
    assert sorted(r["after_delete"]) == sorted(set(r["all"]) - {"bytes1"})
    wrong = r["wrong_key"]
    assert wrong["refused"] and wrong["seconds"] < 5 and "CONN_KEY_NOT_FOUND" in wrong["message"]
    assert took < 240  # no call sat in the client's UNAVAILABLE retries (10 x 5 s)
    viz, image = wait_visualization(served["url"], served["keys"]["sdk"])
    assert viz["status"]["code"] == 42000, viz
    assert [i["id"] for i in viz["inputs"]] == r["after_delete"]
    with Image.open(io.BytesIO(image)) as im:
        im.load()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own authority, and its key (PEM files)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                __import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_clarifai_sdk_12_5_over_tls(tmp_path: Path, service_cache: Path,
                                    image_host: str) -> None:
    """``--tls-cert/--tls-key``: the SDK's ``https://`` base (secure gRPC, its
    ``root_certificates_path``) and REST over https, one certificate."""
    client_python("sdk12")
    cert, key_file = self_signed(tmp_path)
    data = tmp_path / "data"
    keys = {"sdk": create_key(data, "sdk"), "gone": create_key(data, "gone")}
    server = Server(data, service_cache, grpc=True, tls=(cert, key_file)).start()
    try:
        served = {"url": server.url, "grpc_port": server.grpc_port, "keys": keys,
                  "root": tmp_path}
        r = drive("sdk12", served, "sdk", image_host, url="", ca=str(cert),
                  grpc_base=f"https://127.0.0.1:{server.grpc_port}")
        assert r["all"] == ["file0", "bytes1"] and r["count"] == 2
        assert r["urls"] == [f"https://127.0.0.1:{server.port}/v2/inputs/file0/image"]
        own = own_vectors(service_cache, (demo_images(1)[0].name,))
        assert_close(r["vectors"]["untyped"], own[0])
        viz, image = wait_visualization(server.url, keys["sdk"],
                                        verify=ssl.create_default_context(cafile=str(cert)))
        assert viz["status"]["code"] == 42000, viz
        assert viz["data"]["image"]["url"].startswith(server.url)
        with pytest.raises(httpx.HTTPError):  # plain http is not served beside https
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    finally:
        server.stop()
