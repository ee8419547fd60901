"""The service as Clarifai's v2 protos define it, in-process: both path forms, the key and app
checks, proto status codes, answers for methods not served, visualization_output, input
counts and the models. (The official clients themselves: test_service_clarifai_clients.py.)"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service_helpers import assert_same_concepts, b64, create_key, demo_images, image_inputs
from tsnegrid.embed import embed_images
from tsnegrid.embed.pixels import PixelEmbedder
from tsnegrid.service.app import create_app
from tsnegrid.service.apps import revoke_app
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import Database
from tsnegrid.service.storage import BlobStore
from tsnegrid.service.worker import Worker

LONG = "/v2/users/me/apps/app"


@pytest.fixture
def config(tmp_path: Path) -> ServiceConfig:
    return ServiceConfig(data_dir=tmp_path / "data", workers=0, cache_dir=tmp_path / "cache",
                         max_inputs_per_request=8, url_allow=[])


@pytest.fixture
def api(config: ServiceConfig) -> Iterator[tuple[TestClient, dict[str, str]]]:
    key = create_key(config.data_dir, "app")
    create_key(config.data_dir, "other")
    with TestClient(create_app(config)) as client:
        yield client, {"Authorization": f"Key {key}"}


def code_of(r: Any, http: int) -> int:
    assert r.status_code == http, r.text
    assert "Traceback" not in r.text
    return int(r.json()["status"]["code"])


def test_every_route_answers_under_the_users_apps_prefix(api: Any) -> None:
    client, auth = api
    files = demo_images(3)
    r = client.post(f"{LONG}/inputs", headers=auth, json={"inputs": image_inputs(files)})
    assert code_of(r, 200) == 10000
    short = client.get("/v2/inputs", headers=auth).json()
    long = client.get(f"{LONG}/inputs", headers=auth).json()
    assert short == long and len(short["inputs"]) == 3
    assert client.get(f"{LONG}/inputs/{files[0].stem}", headers=auth).json()["input"][
        "id"] == files[0].stem
    assert client.get(f"{LONG}/inputs/status", headers=auth).json()["counts"]["processed"] == 3
    assert [m["id"] for m in client.get(f"{LONG}/models", headers=auth).json()["models"]] == [
        "lite0", "lite0-concepts", "pixels"]
    assert [m["id"] for m in client.get("/v2/users/me/models", headers=auth).json()[
        "models"]] == ["lite0", "lite0-concepts", "pixels"]
    assert code_of(client.delete(f"{LONG}/inputs/{files[0].stem}", headers=auth), 200) == 10000


def test_another_apps_id_is_not_found_and_discloses_nothing(api: Any) -> None:
    client, auth = api
    answers = []
    for app_id in ("other", "no-such-app"):
        for method, path in (("GET", "/inputs"), ("GET", "/inputs/status"),
                             ("GET", "/visualizations/app"), ("GET", "/models")):
            r = client.request(method, f"/v2/users/me/apps/{app_id}{path}", headers=auth)
            assert code_of(r, 404) == 11101
            answers.append(r.json()["status"]["description"].replace(app_id, "X"))
    assert len(set(answers)) == 1  # an existing app reads exactly like a missing one
    r = client.get("/v2/inputs", headers=auth, params={"user_app_id.app_id": "other"})
    assert code_of(r, 404) == 11101
    body = {"user_app_id": {"user_id": "me", "app_id": "other"},
            "inputs": image_inputs(demo_images(1))}
    assert code_of(client.post("/v2/inputs", headers=auth, json=body), 404) == 11101
    assert client.get("/v2/inputs", headers=auth).json()["inputs"] == []
    body["user_app_id"]["app_id"] = "app"
    assert code_of(client.post("/v2/inputs", headers=auth, json=body), 200) == 10000


def test_keys_are_refused_with_the_protos_codes(api: Any, config: ServiceConfig) -> None:
    client, auth = api
    assert code_of(client.get("/v2/inputs"), 401) == 11008
    assert code_of(client.get("/v2/inputs", headers={"Authorization": "Bearer x"}), 401) == 11008
    wrong = {"Authorization": "Key " + "0" * 40}
    assert code_of(client.get(f"{LONG}/inputs", headers=wrong), 401) == 11009
    db = Database(config.data_dir / "service.sqlite")
    with db.session() as s:
        revoke_app(s, "app")
        s.commit()
    db.close()
    r = client.get(f"{LONG}/inputs", headers=auth)
    assert code_of(r, 401) == 11008 and "revoked" in r.json()["status"]["description"]


@pytest.mark.parametrize("method,path,http,code", [
    ("GET", "/v2/concepts", 501, 10040),
    ("POST", "/v2/searches", 501, 10040),
    ("GET", "/v2/workflows/w1", 501, 10040),
    ("GET", "/v2/models/lite0/versions", 501, 10040),
    ("GET", "/v2/inputs/stream", 501, 10040),
    ("PATCH", "/v2/inputs", 501, 10040),
    ("GET", f"{LONG}/concepts", 501, 10040),
    ("GET", "/v2/nothing", 404, 11101),
    ("GET", f"{LONG}/nothing/here", 404, 11101),
    ("PUT", "/v2/inputs", 405, 11103),
])
def test_methods_not_served_answer_in_clarifais_shape(api: Any, method: str, path: str,
                                                      http: int, code: int) -> None:
    client, auth = api
    r = client.request(method, path, headers=auth)
    assert code_of(r, http) == code
    assert method in r.json()["status"]["description"]


def test_input_counts_paging_and_delete_all(api: Any) -> None:
    client, auth = api
    counts = client.get("/v2/inputs/status", headers=auth).json()
    assert counts == {"status": {"code": 10000, "description": "Ok"},
                      "counts": {"processed": 0, "to_process": 0, "errors": 0, "processing": 0}}
    files = demo_images(5)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files)})
    assert client.get("/v2/inputs/status", headers=auth).json()["counts"]["processed"] == 5
    page = client.get("/v2/inputs", headers=auth, params={"page": 3, "per_page": 2}).json()
    assert [i["id"] for i in page["inputs"]] == [files[4].stem]
    assert all(i["status"]["code"] == 30000 for i in page["inputs"])
    assert code_of(client.request("DELETE", "/v2/inputs", headers=auth, json={}), 400) == 11102
    r = client.request("DELETE", "/v2/inputs", headers=auth, json={"delete_all": True})
    assert code_of(r, 200) == 10000
    assert client.get("/v2/inputs/status", headers=auth).json()["counts"]["processed"] == 0


def test_visualization_output_follows_the_proto(api: Any, config: ServiceConfig) -> None:
    client, auth = api
    r = client.get("/v2/visualizations/app", headers=auth)
    assert code_of(r, 404) == 42004
    assert code_of(client.post("/v2/visualizations", headers=auth), 400) == 42003
    files = demo_images(6)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files)})
    r = client.post(f"{LONG}/visualizations", headers=auth,
                    json={"model": "pixels", "reducer": "pca", "tile": 16,
                          "user_app_id": {"user_id": "me", "app_id": "app"}})
    assert code_of(r, 200) == 10000
    pending = r.json()["visualization_output"]
    assert pending["status"]["code"] == 42001 and pending["app_id"] == "app"
    assert pending["type"] == "tsne_grid" and "data" not in pending
    assert [i["id"] for i in pending["inputs"]] == [f.stem for f in files]
    assert r.json()["output"]["status"]["code"] == "PENDING"  # the original key stays
    assert Worker(config).drain() == 1
    done = client.get(f"/v2/visualizations/{pending['id']}", headers=auth).json()
    out = done["visualization_output"]
    assert out["status"] == {"code": 42000, "description": "Done", "percent_completed": 100}
    assert out["created_at"] == pending["created_at"] and out["created_at"].endswith("Z")
    assert out["data"]["image"]["url"] == done["output"]["data"]["image"]["url"]
    img = client.get(out["data"]["image"]["url"], headers=auth)
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert done["output"]["params"]["tile"] == 16 and "viewer" in done["output"]["data"]
    latest = client.get(f"{LONG}/visualizations/app", headers=auth).json()
    assert latest["visualization_output"]["id"] == pending["id"]


@pytest.mark.parametrize("body", [{"grid": "2x2"}, {"background": "not-a-colour"},
                                  {"metadata": {"name": "nobody"}}])
def test_refused_visualization_requests_are_42003(api: Any, body: dict[str, Any]) -> None:
    client, auth = api
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(demo_images(6))})
    assert code_of(client.post("/v2/visualizations", headers=auth, json=body), 400) == 42003


def test_a_job_that_fails_to_embed_is_42007(api: Any, config: ServiceConfig) -> None:
    client, auth = api
    files = demo_images(2)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files)})
    viz_id = client.post("/v2/visualizations", headers=auth, json={"model": "pixels"}).json()[
        "visualization_output"]["id"]
    store = BlobStore(config.blob_url)
    for f in files:  # the stored bytes go bad after upload
        store.path(hashlib.sha256(f.read_bytes()).hexdigest()).write_bytes(b"garbage")
    Worker(config).drain()
    out = client.get(f"/v2/visualizations/{viz_id}", headers=auth).json()
    assert out["visualization_output"]["status"]["code"] == 42007
    assert out["visualization_output"]["status"]["description"] == out["output"]["status"][
        "description"] and "could be read" in out["output"]["status"]["description"]


def test_models_list_get_and_unknown(api: Any) -> None:
    client, auth = api
    models = client.get("/v2/models", headers=auth).json()["models"]
    lite0 = next(m for m in models if m["id"] == "lite0")
    assert lite0["name"] == "EfficientNet-Lite0" and lite0["output_info"]["type"] == "embed"
    assert lite0["model_version"]["status"]["code"] == 21100
    assert lite0["app_id"] == lite0["model_version"]["app_id"] == "app"  # the caller's app
    concepts = next(m for m in models if m["id"] == "lite0-concepts")
    assert concepts["output_info"]["type"] == "concept"
    assert concepts["model_type_id"] == "visual-classifier"
    assert concepts["output_info"]["message"].startswith("1000 concepts")
    assert client.get("/v2/models", headers=auth, params={"page": 2}).json()["models"] == []
    assert client.get("/v2/models/pixels", headers=auth).json()["model"]["id"] == "pixels"
    assert code_of(client.get("/v2/models/nope", headers=auth), 404) == 21200
    for app in ("app", "main"):  # the app a model reports reads it back, as does main
        r = client.get(f"/v2/users/me/apps/{app}/models/lite0", headers=auth)
        assert r.status_code == 200 and r.json()["model"]["app_id"] == "app"
    assert code_of(client.get("/v2/users/me/apps/other/models/lite0", headers=auth), 404) \
        == 11101
    r = client.post("/v2/models/pixels/versions/9/outputs", headers=auth,
                    json={"inputs": [{"id": "x"}]})
    assert code_of(r, 404) == 21200


def test_model_outputs_are_the_embed_stages_vectors(api: Any, tmp_path: Path) -> None:
    client, auth = api
    files = demo_images(3)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files[2:])})
    body = {"inputs": [{"data": {"image": {"base64": b64(files[0].read_bytes())}}},
                       {"id": "mine", "data": {"image": {"base64": b64(files[1].read_bytes())}}},
                       {"id": files[2].stem},
                       {"id": "not-stored"},
                       {"data": {"image": {"base64": b64(b"not an image")}}}]}
    r = client.post(f"{LONG}/models/pixels/versions/1/outputs", headers=auth, json=body)
    assert code_of(r, 200) == 10010
    outs = r.json()["outputs"]
    assert [o["status"]["code"] for o in outs] == [10000, 10000, 10000, 11101, 30101]
    assert [o["input"].get("id") for o in outs] == [None, "mine", files[2].stem, "not-stored",
                                                     None]
    own = embed_images(files, PixelEmbedder()).vectors
    for o, want in zip(outs[:3], own, strict=True):
        emb = o["data"]["embeddings"][0]
        assert emb["num_dimensions"] == 3072 == len(emb["vector"])
        assert np.abs(np.asarray(emb["vector"]) - want).max() < 1e-6
    assert outs[0]["model"]["id"] == "pixels" and outs[0]["id"] != outs[1]["id"]
    r = client.post("/v2/models/pixels/outputs", headers=auth, json={"inputs": [{}]})
    assert code_of(r, 400) == 10020
    assert "data.image" in r.json()["outputs"][0]["status"]["description"]
    r = client.post("/v2/models/pixels/outputs", headers=auth, json={"inputs": [{"id": "a"}] * 9})
    assert code_of(r, 413) == 11006


# ---- the concept model ------------------------------------------------------------------------

def _photos(tmp_path: Path) -> list[Path]:
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    out = []
    for name in ("chelsea", "coffee"):
        out.append(tmp_path / f"{name}.png")
        Image.fromarray(getattr(data, name)()).convert("RGB").save(out[-1])
    return out


def test_concept_model_answers_the_heads_concepts(api: Any, tmp_path: Path) -> None:
    from tsnegrid.concepts.broader import broader_names
    from tsnegrid.concepts.names import class_ids
    from tsnegrid.embed import make_embedder

    client, auth = api
    photos = _photos(tmp_path)
    body = {"inputs": [{"data": {"image": {"base64": b64(p.read_bytes())}}} for p in photos]
            + [{"data": {"image": {"base64": b64(b"not an image")}}}]}
    r = client.post("/v2/models/lite0-concepts/outputs", headers=auth, json=body)
    assert code_of(r, 200) == 10010
    outs = r.json()["outputs"]
    assert [o["status"]["code"] for o in outs] == [10000, 10000, 30101]
    assert outs[0]["model"]["id"] == "lite0-concepts" and "data" not in outs[2]
    own = embed_images(photos, make_embedder("lite0", tmp_path, features="semantic")).concepts
    assert own is not None
    broad = broader_names()
    for o, row in zip(outs[:2], range(2), strict=True):
        concepts = o["data"]["concepts"]
        assert len(concepts) == 20 and set(concepts[0]) == {"id", "name", "value", "app_id"}
        values = [c["value"] for c in concepts]
        assert values == sorted(values, reverse=True) and 0 < sum(values) <= 1.0001
        assert_same_concepts(concepts[:5], own.records(row))
    top_cat = [broad[class_ids().index(c["id"])] for c in outs[0]["data"]["concepts"][:5]]
    assert any("cat" in groups for groups in top_cat)
    assert "espresso" in [c["name"] for c in outs[1]["data"]["concepts"][:5]]


def test_concept_model_takes_max_concepts_and_min_value(api: Any, tmp_path: Path) -> None:
    client, auth = api
    photo = _photos(tmp_path)[1]
    body: dict[str, Any] = {"inputs": [{"data": {"image": {"base64": b64(photo.read_bytes())}}}],
                            "model": {"output_info": {"output_config": {"max_concepts": 3}}}}
    r = client.post("/v2/models/lite0-concepts/versions/1/outputs", headers=auth, json=body)
    assert len(r.json()["outputs"][0]["data"]["concepts"]) == 3
    body["model"]["output_info"]["output_config"] = {"max_concepts": 50, "min_value": 0.01}
    r = client.post("/v2/models/lite0-concepts/outputs", headers=auth, json=body)
    concepts = r.json()["outputs"][0]["data"]["concepts"]
    assert 1 <= len(concepts) < 50 and min(c["value"] for c in concepts) >= 0.01
    body["model"]["output_info"]["output_config"] = {"max_concepts": -1}
    assert code_of(client.post("/v2/models/lite0-concepts/outputs", headers=auth, json=body),
                   400) != 10000


def test_visualizations_record_each_inputs_concepts(api: Any, config: ServiceConfig) -> None:
    client, auth = api
    files = demo_images(4)
    client.post("/v2/inputs", headers=auth, json={"inputs": image_inputs(files)})
    r = client.post("/v2/visualizations", headers=auth, json={"model": "lite0", "tile": 8})
    viz_id = r.json()["visualization_output"]["id"]
    assert Worker(config).drain() == 1
    layout = client.get(f"/v2/visualizations/{viz_id}/layout", headers=auth).json()
    assert layout["concepts"]["top"] == 5
    fine = [r for r in layout["regions"] if r["level"] == "fine"]
    assert sum(r["size"] for r in fine) == 4
    assert all(0 <= im["region"] < len(fine) for im in layout["images"])
    for image in layout["images"]:
        concepts = image["concepts"]
        assert len(concepts) == 5 and concepts[0]["value"] >= concepts[-1]["value"] > 0
    r = client.post("/v2/models/lite0-concepts/outputs", headers=auth,
                    json={"inputs": [{"id": files[0].stem}],
                          "model": {"output_info": {"output_config": {"max_concepts": 5}}}})
    by_id = {im["input_id"]: im["concepts"] for im in layout["images"]}
    assert_same_concepts(r.json()["outputs"][0]["data"]["concepts"], by_id[files[0].stem])


def test_visualizations_name_regions_by_a_metadata_field(api: Any,
                                                          config: ServiceConfig) -> None:
    """``names``: a field of the inputs' metadata names the regions (its majority value, with
    its source); folders and files mean nothing here and are refused; a field no input has
    fails the job saying so."""
    client, auth = api
    files = demo_images(8)
    inputs = [{**item, "data": {**item["data"], "metadata": {"kind": "a" if k < 4 else "b"}}}
              for k, item in enumerate(image_inputs(files))]
    assert code_of(client.post("/v2/inputs", headers=auth, json={"inputs": inputs}), 200) \
        == 10000
    r = client.post("/v2/visualizations", headers=auth,
                    json={"model": "pixels", "tile": 8, "names": "kind"})
    viz_id = r.json()["visualization_output"]["id"]
    assert Worker(config).drain() == 1
    layout = client.get(f"/v2/visualizations/{viz_id}/layout", headers=auth).json()
    named = [r for r in layout["regions"] if r["name"] is not None]
    assert named and {r["source"] for r in named} == {"kind"}
    assert {r["name"] for r in named} <= {"a", "b"}
    for bad in ("folders", "files", ""):
        r = client.post("/v2/visualizations", headers=auth, json={"names": bad})
        assert code_of(r, 400) in (11100, 11102, 42003), r.text
    r = client.post("/v2/visualizations", headers=auth,
                    json={"model": "pixels", "tile": 8, "names": "species"})
    viz_id = r.json()["visualization_output"]["id"]
    Worker(config).drain()
    viz = client.get(f"/v2/visualizations/{viz_id}", headers=auth).json()
    assert viz["visualization_output"]["status"]["code"] != 42000
    assert "species" in json.dumps(viz)
