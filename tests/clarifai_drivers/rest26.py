"""Drives a tsnegrid server with Clarifai's REST client ``clarifai==2.6.2``, unchanged.

Run with that client's own Python (``.venv-clarifai26``, made by .ci/install-clarifai-clients);
reads a JSON spec on stdin, writes what each call returned as JSON on stdout. The checks are in
tests/test_service_clarifai_clients.py; this script only calls the client and reports.
"""

import base64
import time

import requests
from _run import run
from clarifai.errors import ApiError
from clarifai.rest import ClarifaiApp, Image
from clarifai.rest.grpc.proto.clarifai.api.visualization_pb2 import (
    GetAppVisualizationRequest,
    GetVisualizationRequest,
    PostVisualizationRequest,
)


def refused(fn):
    """How a call that must fail failed: HTTP status and proto code, or what it returned."""
    try:
        result = fn()
    except ApiError as exc:
        return {"http": exc.response.status_code if exc.response is not None else None,
                "code": exc.error_code, "description": exc.error_desc}
    return {"returned": repr(result)}


def image_json(img):
    return {"id": img.input_id, "url": img.url,
            "status": img.status.code if getattr(img, "status", None) else None,
            "metadata": img.metadata}


def main(spec):
    out = {}
    files = spec["files"]
    app = ClarifaiApp(api_key=spec["key"], base_url=spec["base_url"])
    out["models"] = [{"id": m.model_id, "name": m.model_name, "type": m.output_info["type"],
                      "version": m.model_version} for m in app.models.get_all()]
    inputs = app.inputs
    out["from_filename"] = image_json(inputs.create_image_from_filename(
        files[0], image_id="f0", metadata={"source": "filename"}))
    with open(files[1], "rb") as fh:
        data = fh.read()
    out["from_bytes"] = image_json(inputs.create_image_from_bytes(data, image_id="f1"))
    with open(files[2], "rb") as fh:
        b64 = base64.b64encode(fh.read())
    out["from_base64"] = image_json(inputs.create_image_from_base64(b64, image_id="f2"))
    out["from_url"] = image_json(inputs.create_image_from_url(spec["url"], image_id="u0"))
    bulk = [Image(filename=f, image_id=f"b{i}", metadata={"batch": True})
            for i, f in enumerate(files[3:])]
    out["bulk"] = [image_json(i) for i in inputs.bulk_create_images(bulk)]
    out["get"] = image_json(inputs.get("f0"))
    out["page1"] = [i.input_id for i in inputs.get_by_page(page=1, per_page=3)]
    out["page2"] = [i.input_id for i in inputs.get_by_page(page=2, per_page=3)]
    out["all"] = [i.input_id for i in inputs.get_all()]
    counts = inputs.check_status()
    out["counts"] = {"processed": counts.processed,
                     "to_process": counts.to_process, "errors": counts.errors}
    out["delete_one"] = inputs.delete("u0").code
    out["delete_many"] = inputs.delete(["f1", "f2"]).code
    out["after_delete"] = sorted(i.input_id for i in inputs.get_all())
    out["get_deleted"] = refused(lambda: inputs.get("u0"))

    model = app.models.get("lite0")
    pred = model.predict_by_filename(files[0])
    out["predict"] = {"status": pred["status"]["code"],
                      "outputs": [{"status": o["status"]["code"],
                                   "vector": o["data"]["embeddings"][0]["vector"],
                                   "num_dimensions": o["data"]["embeddings"][0]["num_dimensions"]}
                                  for o in pred["outputs"]]}
    pred = model.predict_by_base64(base64.b64encode(data))
    out["predict_base64"] = pred["outputs"][0]["data"]["embeddings"][0]["vector"]

    stub = app.api._grpc_stub()
    started = stub.PostVisualization(PostVisualizationRequest())
    viz = started.visualization_output
    out["viz_started"] = {"top": started.status.code, "id": viz.id, "code": viz.status.code,
                          "app_id": viz.app_id, "inputs": len(viz.inputs)}
    codes = [viz.status.code]
    deadline = time.monotonic() + 300
    while viz.status.code == 42001 and time.monotonic() < deadline:
        time.sleep(0.5)
        viz = stub.GetVisualization(GetVisualizationRequest(visualization_id=viz.id)
                                    ).visualization_output
        codes.append(viz.status.code)
    out["viz_codes"] = sorted(set(codes))
    latest = stub.GetAppVisualization(GetAppVisualizationRequest()).visualization_output
    out["viz_done"] = {"id": viz.id, "code": viz.status.code, "url": viz.data.image.url,
                       "description": viz.status.description, "app_latest": latest.id,
                       "inputs": sorted(i.id for i in viz.inputs),
                       "created_at": viz.created_at.ToJsonString()}
    image = requests.get(viz.data.image.url, headers={"Authorization": f"Key {spec['key']}"},
                         timeout=60)
    with open(spec["work"] + "/grid.bin", "wb") as fh:
        fh.write(image.content)
    out["viz_image"] = {"http": image.status_code, "type": image.headers.get("content-type")}
    out["viz_missing"] = refused(lambda: stub.GetVisualization(
        GetVisualizationRequest(visualization_id="nope")))
    out["delete_all"] = inputs.delete_all().code
    out["after_delete_all"] = [i.input_id for i in inputs.get_all()]

    out["wrong_key"] = refused(lambda: ClarifaiApp(api_key="0" * 40, base_url=spec["base_url"]))
    out["revoked_key"] = refused(lambda: ClarifaiApp(api_key=spec["revoked_key"],
                                                     base_url=spec["base_url"]))
    return out


if __name__ == "__main__":
    run(main)
