"""The gRPC transport in-process: ``clarifai.api.V2`` from clarifai-grpc's generated stub against
the servicer that ``create_app`` starts beside the REST routes. One implementation under two
transports: the same calls answer the same over both; Clarifai's conventions (status in the
body, the key in metadata, proto3 defaults, raw ``Image.base64``); methods not served answer at
once; the receive limit. (The official SDK itself: test_service_clarifai_clients.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from fastapi.testclient import TestClient
from google.protobuf import json_format

from service_helpers import create_key, demo_images, free_port, image_inputs
from tsnegrid.service.app import create_app
from tsnegrid.service.config import ServiceConfig

ME = resources_pb2.UserAppIDSet(user_id="me", app_id="app")


@pytest.fixture
def config(tmp_path: Path) -> ServiceConfig:
    return ServiceConfig(data_dir=tmp_path / "data", workers=0, cache_dir=tmp_path / "cache",
                         max_inputs_per_request=8, url_allow=[], grpc_port=free_port(),
                         max_body_bytes=256 * 1024, public_url="https://images.example.org")


@pytest.fixture
def both(config: ServiceConfig) -> Iterator[dict[str, Any]]:
    """The REST client, a gRPC stub on the same server (clarifai-grpc's default insecure
    channel, with its retries), and the app's key both ways."""
    key = create_key(config.data_dir, "app")
    create_key(config.data_dir, "other")
    with TestClient(create_app(config)) as client, \
            ClarifaiChannel.get_insecure_grpc_channel("127.0.0.1", config.grpc_port) as channel:
        yield {"rest": client, "stub": service_pb2_grpc.V2Stub(channel),
               "headers": {"Authorization": f"Key {key}"},
               "meta": (("authorization", f"Key {key}"),), "key": key}


def proto_inputs(files: list[Path]) -> list[resources_pb2.Input]:
    return [resources_pb2.Input(id=f.stem, data=resources_pb2.Data(
        image=resources_pb2.Image(base64=f.read_bytes()))) for f in files]


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def test_uploads_over_grpc_are_the_apps_inputs_over_rest(both: dict[str, Any]) -> None:
    """Raw image bytes in ``Image.base64``; an empty ``user_app_id`` is the key's app."""
    stub, meta = both["stub"], both["meta"]
    files = demo_images(3)
    r = stub.PostInputs(service_pb2.PostInputsRequest(inputs=proto_inputs(files)),
                        metadata=meta)
    assert r.status.code == 10000, r.status
    assert [i.status.code for i in r.inputs] == [30000] * 3
    rest = both["rest"].get("/v2/inputs", headers=both["headers"]).json()
    listed = stub.ListInputs(service_pb2.ListInputsRequest(user_app_id=ME), metadata=meta)
    assert [i["id"] for i in rest["inputs"]] == [i.id for i in listed.inputs] == \
        [f.stem for f in files]
    grpc_inputs = as_dict(listed)["inputs"]
    for a, b in zip(rest["inputs"], grpc_inputs, strict=True):  # the same answer, field by field
        assert a["data"]["image"]["url"] == b["data"]["image"]["url"]  # under the public url
        assert a["data"]["image"]["url"].startswith("https://images.example.org/v2/inputs/")
        assert a["data"]["image"]["image_info"] == b["data"]["image"]["image_info"]  # the
        info = a["data"]["image"]["image_info"]  # proto's fields; width etc. are REST extras
        assert (info["width"], info["height"], info["format"]) == (
            a["data"]["image"]["width"], a["data"]["image"]["height"], "PNG")
        assert a["created_at"] == b["created_at"]
    one = stub.GetInput(service_pb2.GetInputRequest(input_id=files[1].stem), metadata=meta)
    assert one.status.code == 10000 and one.input.id == files[1].stem
    count = stub.GetInputCount(service_pb2.GetInputCountRequest(), metadata=meta)
    assert count.counts.processed == 3
    image = both["rest"].get(one.input.data.image.url, headers=both["headers"])
    assert image.status_code == 200 and image.content == files[1].read_bytes()


def test_paging_takes_proto3_defaults(both: dict[str, Any]) -> None:
    """``per_page`` 0 (unset) is the default page size, ``page`` 0 the first page."""
    stub, meta = both["stub"], both["meta"]
    files = demo_images(5)
    both["rest"].post("/v2/inputs", headers=both["headers"],
                      json={"inputs": image_inputs(files)})
    default = stub.ListInputs(service_pb2.ListInputsRequest(), metadata=meta)
    assert len(default.inputs) == 5
    page = stub.ListInputs(service_pb2.ListInputsRequest(page=3, per_page=2), metadata=meta)
    assert [i.id for i in page.inputs] == [files[4].stem]
    by_id = stub.ListInputs(service_pb2.ListInputsRequest(ids=[files[2].stem, "absent"]),
                            metadata=meta)
    assert [i.id for i in by_id.inputs] == [files[2].stem]
    bad = stub.ListInputs(service_pb2.ListInputsRequest(page=2_000_000), metadata=meta)
    assert bad.status.code == 11102 and "page" in bad.status.description


def test_deletes_by_id_and_one(both: dict[str, Any]) -> None:
    stub, meta = both["stub"], both["meta"]
    files = demo_images(4)
    stub.PostInputs(service_pb2.PostInputsRequest(inputs=proto_inputs(files)), metadata=meta)
    r = stub.DeleteInput(service_pb2.DeleteInputRequest(input_id=files[0].stem), metadata=meta)
    assert r.status.code == 10000
    r = stub.DeleteInputs(service_pb2.DeleteInputsRequest(ids=[files[1].stem, "absent"]),
                          metadata=meta)
    assert r.status.code == 10010  # mixed: one deleted, one not found
    left = stub.ListInputs(service_pb2.ListInputsRequest(), metadata=meta)
    assert [i.id for i in left.inputs] == [f.stem for f in files[2:]]
    gone = stub.GetInput(service_pb2.GetInputRequest(input_id=files[0].stem), metadata=meta)
    assert gone.status.code == 11101 and files[0].stem in gone.status.description


def test_add_jobs_are_reported_done(both: dict[str, Any]) -> None:
    """The SDK's bulk path: batches name an ``inputs_add_job_id`` and poll GetInputsAddJob."""
    stub, meta = both["stub"], both["meta"]
    files = demo_images(4)
    for batch in (files[:2], files[2:]):
        r = stub.PostInputs(service_pb2.PostInputsRequest(
            inputs=proto_inputs(batch), inputs_add_job_id="job-1"), metadata=meta)
        assert r.status.code == 10000
    job = stub.GetInputsAddJob(service_pb2.GetInputsAddJobRequest(id="job-1"), metadata=meta)
    assert job.status.code == 10000 and job.inputs_add_job.status.code == 64002
    assert job.inputs_add_job.progress.success_count == 4
    assert job.inputs_add_job.progress.pending_count == 0
    missing = stub.GetInputsAddJob(service_pb2.GetInputsAddJobRequest(id="nope"),
                                   metadata=meta)
    assert missing.status.code == 11101


def test_keys_and_apps_are_checked_as_over_rest(both: dict[str, Any]) -> None:
    stub = both["stub"]
    started = time.monotonic()
    none = stub.ListInputs(service_pb2.ListInputsRequest())
    wrong = stub.ListInputs(service_pb2.ListInputsRequest(),
                            metadata=(("authorization", "Key " + "0" * 40),))
    malformed = stub.ListInputs(service_pb2.ListInputsRequest(),
                                metadata=(("authorization", "Bearer x"),))
    assert time.monotonic() - started < 5  # answered, not retried as UNAVAILABLE
    assert none.status.code == 11008 and "Authorization" in none.status.description
    assert wrong.status.code == 11009 and malformed.status.code == 11008
    rest_wrong = both["rest"].get("/v2/inputs", headers={"Authorization": "Key " + "0" * 40})
    assert rest_wrong.json()["status"]["code"] == wrong.status.code
    other = resources_pb2.UserAppIDSet(user_id="me", app_id="other")
    for call, request in (
            (stub.ListInputs, service_pb2.ListInputsRequest(user_app_id=other)),
            (stub.GetApp, service_pb2.GetAppRequest(user_app_id=other)),
            (stub.PostInputs, service_pb2.PostInputsRequest(
                user_app_id=other, inputs=proto_inputs(demo_images(1))))):
        r = call(request, metadata=both["meta"])
        assert r.status.code == 11101 and "'other' not found" in r.status.description
    assert both["rest"].get("/v2/inputs", headers=both["headers"]).json()["inputs"] == []


def test_apps_models_and_model_types(both: dict[str, Any]) -> None:
    """GetApp/ListApps name the key's app; models report it and read back from it or main."""
    stub, meta, rest, headers = both["stub"], both["meta"], both["rest"], both["headers"]
    app = stub.GetApp(service_pb2.GetAppRequest(user_app_id=ME), metadata=meta)
    assert app.status.code == 10000 and app.app.id == "app"
    assert rest.get("/v2/users/me/apps/app", headers=headers).json()["app"]["id"] == "app"
    apps = stub.ListApps(service_pb2.ListAppsRequest(), metadata=meta)
    assert [a.id for a in apps.apps] == ["app"]
    models = stub.ListModels(service_pb2.ListModelsRequest(user_app_id=ME), metadata=meta)
    assert [m.id for m in models.models] == ["lite0", "lite0-concepts", "pixels"]
    assert {m.app_id for m in models.models} == {"app"}
    for app_id in ("app", "main", ""):
        got = stub.GetModel(service_pb2.GetModelRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="me", app_id=app_id),
            model_id="lite0"), metadata=meta)
        assert got.status.code == 10000 and got.model.app_id == "app"
    kind = stub.GetModelType(service_pb2.GetModelTypeRequest(
        model_type_id=models.models[0].model_type_id), metadata=meta)
    assert kind.status.code == 10000 and list(kind.model_type.input_fields) == ["image"]
    over_rest = rest.get(f"/v2/models/types/{models.models[0].model_type_id}",
                         headers=headers).json()
    assert over_rest["model_type"]["input_fields"] == ["image"]
    unknown = stub.GetModel(service_pb2.GetModelRequest(model_id="nope"), metadata=meta)
    assert unknown.status.code == 21200


def test_model_outputs_match_over_both_transports(both: dict[str, Any]) -> None:
    stub, meta = both["stub"], both["meta"]
    files = demo_images(2)
    r = stub.PostModelOutputs(service_pb2.PostModelOutputsRequest(
        model_id="pixels", inputs=proto_inputs(files)), metadata=meta)
    assert r.status.code == 10000, r.status
    rest = both["rest"].post("/v2/models/pixels/outputs", headers=both["headers"],
                             json={"inputs": image_inputs(files)}).json()
    for a, b in zip(r.outputs, rest["outputs"], strict=True):
        assert list(a.data.embeddings[0].vector) == pytest.approx(
            b["data"]["embeddings"][0]["vector"], rel=1e-6, abs=1e-7)
    bad = stub.PostModelOutputs(service_pb2.PostModelOutputsRequest(
        model_id="pixels", inputs=[resources_pb2.Input(data=resources_pb2.Data(
            image=resources_pb2.Image(base64=b"not an image")))]), metadata=meta)
    assert bad.status.code != 10000 and bad.outputs[0].status.code != 10000
    assert bad.outputs[0].status.description


def test_methods_not_served_answer_at_once_naming_themselves(both: dict[str, Any]) -> None:
    stub, meta = both["stub"], both["meta"]
    started = time.monotonic()
    r = stub.ListConcepts(service_pb2.ListConceptsRequest(), metadata=meta)
    assert r.status.code == 10040 and "ListConcepts" in r.status.description
    r = stub.PostSearches(service_pb2.PostSearchesRequest(), metadata=meta)
    assert r.status.code == 10040 and "PostSearches" in r.status.description
    r = stub.StreamInputs(service_pb2.StreamInputsRequest(), metadata=meta)  # unary, despite
    assert r.status.code == 10040 and "StreamInputs" in r.status.description  # its name
    with pytest.raises(grpc.RpcError) as err:  # a streaming method: gRPC's own status
        list(stub.GenerateModelOutputs(service_pb2.PostModelOutputsRequest(model_id="lite0"),
                                       metadata=meta))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "GenerateModelOutputs" in (err.value.details() or "")
    assert time.monotonic() - started < 5


def test_request_ids_take_the_clients_prefix(both: dict[str, Any]) -> None:
    meta = (*both["meta"], ("x-clarifai-request-id-prefix", "python-sdk-12.5.0"))
    r = both["stub"].GetInputCount(service_pb2.GetInputCountRequest(), metadata=meta)
    assert r.status.req_id.startswith("python-sdk-12.5.0-") and len(r.status.req_id) > 30
    plain = both["stub"].GetInputCount(service_pb2.GetInputCountRequest(),
                                       metadata=both["meta"])
    assert plain.status.req_id and plain.status.req_id != r.status.req_id


def test_a_message_over_the_receive_limit_is_refused_naming_the_sizes(
        both: dict[str, Any], config: ServiceConfig) -> None:
    big = resources_pb2.Input(id="big", data=resources_pb2.Data(
        image=resources_pb2.Image(base64=b"\0" * (config.max_body_bytes + 1))))
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        both["stub"].PostInputs(service_pb2.PostInputsRequest(inputs=[big]),
                                metadata=both["meta"])
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(config.max_body_bytes) in (err.value.details() or "")
    assert time.monotonic() - started < 5
    ok = both["stub"].PostInputs(service_pb2.PostInputsRequest(
        inputs=proto_inputs(demo_images(1))), metadata=both["meta"])
    assert ok.status.code == 10000  # the server goes on
