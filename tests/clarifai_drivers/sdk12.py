"""Drives a tsnegrid server's gRPC side with Clarifai's current SDK, ``clarifai==12.5.0``,
unchanged, as its documentation shows: only ``base_url`` (and the key) point here.

Run with that SDK's own Python (``.venv-clarifai-sdk``, made by .ci/install-clarifai-clients);
reads a JSON spec on stdin, writes what each call returned as JSON on stdout. The checks are in
tests/test_service_clarifai_clients.py.
"""

import time

from _run import run


def main(spec):
    from clarifai.client.app import App
    from clarifai.client.dataset import Dataset
    from clarifai.client.model import Model
    from clarifai.client.user import User

    base, key, app_id = spec["grpc_base"], spec["key"], spec["app_id"]
    tls = {"root_certificates_path": spec["ca"]} if spec.get("ca") else {}
    files = spec["files"]
    out = {}
    app = App(app_id=app_id, user_id="me", pat=key, base_url=base, **tls)
    user_app = User(user_id="me", pat=key, base_url=base, **tls).app(app_id)
    out["user_app"] = user_app.id
    inp = app.inputs()
    inp.upload_from_file(input_id="file0", image_file=files[0])
    with open(files[1], "rb") as f:
        inp.upload_from_bytes(input_id="bytes1", image_bytes=f.read())
    if spec.get("url"):
        inp.upload_from_url(input_id="url2", image_url=spec["url"])
    if spec.get("folder"):  # the SDK's bulk path: batches, GetInputsAddJob, ListInputs by ids
        Dataset(dataset_id="bulk", user_id="me", app_id=app_id, pat=key, base_url=base,
                **tls).upload_from_folder(spec["folder"], input_type="image",
                                          batch_size=spec["batch"])
    out["all"] = [i.id for i in inp.list_inputs()]
    out["page2"] = [i.id for i in inp.list_inputs(page_no=2, per_page=2)]
    out["urls"] = [i.data.image.url for i in inp.list_inputs(page_no=1, per_page=1)]
    out["count"] = app.get_input_count()
    out["models"] = [m.id for m in app.list_models()]
    vectors = {}
    for label, model, kw in (
            ("typed", Model(model_id="lite0", user_id="me", app_id=app_id, pat=key,
                            base_url=base, **tls), {"input_type": "image"}),
            ("untyped", Model(model_id="lite0", user_id="me", app_id=app_id, pat=key,
                              base_url=base, **tls), {}),
            ("app_model", app.model("lite0"), {}),
            ("main_model", Model(model_id="lite0", user_id="me", app_id="main", pat=key,
                                 base_url=base, **tls), {})):
        res = model.predict_by_filepath(files[0], **kw)
        vectors[label] = list(res.outputs[0].data.embeddings[0].vector)
    out["vectors"] = vectors
    res = app.model("lite0-concepts").predict_by_filepath(
        files[0], output_config={"max_concepts": 3})
    out["concepts"] = [[c.id, c.name, c.value] for c in res.outputs[0].data.concepts]
    if spec.get("delete"):
        gone = [i for i in inp.list_inputs() if i.id in spec["delete"]]
        inp.delete_inputs(gone)
        out["after_delete"] = [i.id for i in inp.list_inputs()]
    started = time.monotonic()
    try:
        list(App(app_id=app_id, user_id="me", pat="0" * 40, base_url=base,
                 **tls).inputs().list_inputs())
        out["wrong_key"] = {"refused": False}
    except Exception as exc:
        out["wrong_key"] = {"refused": True, "seconds": time.monotonic() - started,
                            "message": str(exc)[:2000]}
    return out


if __name__ == "__main__":
    run(main)
