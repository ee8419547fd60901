"""ListModels, GetModel, GetModelType, ListModelTypes and PostModelOutputs: the embedders as
Clarifai embedding models and lite0's concept model.

The models are built in, so every app has them: a model reports the caller's own app as its
``app_id`` (the current client keeps only the models of the app it lists), and a read naming
``main``, the app Clarifai's public models live in, is accepted as well.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from tsnegrid.errors import InputError, TsnegridError
from tsnegrid.service.api.embedders import (
    CATALOGUE,
    DEFAULT_MAX_CONCEPTS,
    LISTED_SINCE,
    VERSION,
    ModelInfo,
)
from tsnegrid.service.api.errors import Code, ModelNotFoundError, input_code, status
from tsnegrid.service.api.methods.auth import check_app
from tsnegrid.service.api.methods.call import OK, Answer, Call, iso, summary
from tsnegrid.service.api.methods.inputs import find_input
from tsnegrid.service.api.methods.pages import Page
from tsnegrid.service.api.model_schemas import OutputInputIn, PostModelOutputsRequest
from tsnegrid.service.errors import LimitError, NotFoundError
from tsnegrid.service.ingest import check_image, image_bytes

PUBLIC_APP = "main"
TYPES: dict[str, dict[str, Any]] = {  # ModelType: what each kind of model takes and answers
    "embed": {"id": "visual-embedder", "title": "Visual Embedder",
              "description": "Embed an image as a vector of numbers.",
              "input_fields": ["image"], "output_fields": ["embeddings"]},
    "concept": {"id": "visual-classifier", "title": "Visual Classifier",
                "description": "The concepts an image shows, with their probabilities.",
                "input_fields": ["image"], "output_fields": ["concepts"]},
}


def check_model_app(call: Call, app_id: str | None) -> None:
    """A model read may name the caller's app or ``main``."""
    check_app(call.caller, [None if app_id == PUBLIC_APP else app_id])


def model_json(info: ModelInfo, app_name: str) -> dict[str, Any]:
    created = iso(LISTED_SINCE)
    kind = TYPES[info.kind]
    size = f"{info.dimensions} concepts" if info.kind == "concept" else \
        f"{info.dimensions}-d vectors"
    message = f"{size}: {info.description}"
    output_info = {"type": info.kind, "type_ext": info.kind, "message": message}
    return {"id": info.id, "name": info.name, "display_name": info.name, "created_at": created,
            "app_id": app_name, "model_type_id": kind["id"], "output_info": output_info,
            "model_version": {"id": VERSION, "created_at": created, "app_id": app_name,
                              "output_info": output_info,
                              "status": status(Code.MODEL_TRAINED, "Model is trained and "
                                                                   "ready")}}


def find_model(model_id: str, version_id: str | None = None) -> ModelInfo:
    info = CATALOGUE.get(model_id)
    if info is None:
        raise ModelNotFoundError(f"model {model_id!r} not found; models: "
                                 f"{', '.join(CATALOGUE)}")
    if version_id and version_id != VERSION:
        raise ModelNotFoundError(f"model {model_id!r} has no version {version_id!r} (its one "
                                 f"version is {VERSION!r})")
    return info


def list_models(call: Call, page: Page, app_id: str | None = None) -> Answer:
    """The embedders and the concept model, as models of the caller's app."""
    check_model_app(call, app_id)
    infos = list(CATALOGUE.values())[page.offset:page.offset + page.per_page]
    return {"status": OK, "models": [model_json(i, call.caller.name) for i in infos]}, 200


def get_model(call: Call, model_id: str, version_id: str | None = None,
              app_id: str | None = None) -> Answer:
    check_model_app(call, app_id)
    return {"status": OK,
            "model": model_json(find_model(model_id, version_id), call.caller.name)}, 200


def get_model_type(call: Call, type_id: str, app_id: str | None = None) -> Answer:
    check_model_app(call, app_id)
    found = next((t for t in TYPES.values() if t["id"] == type_id), None)
    if found is None:
        raise NotFoundError(f"model type {type_id!r} not found; types: "
                            f"{', '.join(t['id'] for t in TYPES.values())}")
    return {"status": OK, "model_type": found}, 200


def list_model_types(call: Call, app_id: str | None = None) -> Answer:
    check_model_app(call, app_id)
    return {"status": OK, "model_types": list(TYPES.values())}, 200


def _image_of(item: OutputInputIn, call: Call) -> bytes:
    state, cfg = call.state, call.state.config
    image = item.data.image if item.data is not None else None
    if image is not None and (image.base64 or image.url):
        return check_image(image_bytes(image.base64, image.url, cfg, state.allow,
                                       state.fetch_slots, call.caller.id),
                           cfg.max_image_pixels, state.decode_budget).data
    if item.id:
        return state.store.read(find_input(call.session, call.caller.id, item.id).blob_key)
    raise InputError("an input needs data.image (base64 or url) or the id of a stored input")


def post_model_outputs(call: Call, model_id: str, body: PostModelOutputsRequest,
                       version_id: str | None = None) -> Answer:
    """Run the model on the inputs: one output per input, in order, each with its status and,
    when it worked, ``data.embeddings[0].vector`` (an embedder) or ``data.concepts`` (the
    concept model: at most ``output_config.max_concepts``, default 20, of at least
    ``min_value``, most probable first)."""
    info = find_model(model_id, version_id)
    check_model_app(call, body.user_app_id.app_id if body.user_app_id else None)
    if len(body.inputs) > call.state.config.max_inputs_per_request:
        raise LimitError(f"{len(body.inputs)} inputs in one request; the limit is "
                         f"{call.state.config.max_inputs_per_request}")
    images: list[bytes | None] = []
    problems: list[dict[str, Any] | None] = []
    for item in body.inputs:
        try:
            images.append(_image_of(item, call))
            problems.append(None)
        except NotFoundError as exc:
            images.append(None)
            problems.append(status(Code.CONN_DOES_NOT_EXIST, str(exc)))
        except TsnegridError as exc:
            images.append(None)
            problems.append(status(input_code(exc), str(exc)))
    good = [data for data in images if data is not None]
    wanted = body.output_config
    results: list[Any] = []
    if good and info.kind == "concept":
        results = call.state.embed.concepts(info.runs, good,
                                            wanted.max_concepts or DEFAULT_MAX_CONCEPTS)
    elif good:
        results = list(call.state.embed.embed(info.runs, good))
    vectors = iter(results)
    now = iso(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    model = model_json(info, call.caller.name)
    outputs = []
    for item, data, problem in zip(body.inputs, images, problems, strict=True):
        out: dict[str, Any] = {"id": uuid.uuid4().hex, "created_at": now, "model": model,
                               "input": {"id": item.id} if item.id else {}}
        vec = next(vectors) if data is not None else None
        if problem is not None:
            out["status"] = problem
        elif isinstance(vec, str):
            out["status"] = status(Code.MODEL_PREDICTION_FAILED, vec)
        elif info.kind == "concept":
            assert vec is not None
            out["status"] = OK
            out["data"] = {"concepts": [{**c, "app_id": PUBLIC_APP} for c in vec
                                        if c["value"] >= wanted.min_value]}
        else:
            assert vec is not None
            out["status"] = OK
            out["data"] = {"embeddings": [{"vector": [float(v) for v in vec],
                                           "num_dimensions": len(vec)}]}
        outputs.append(out)
    top, http = summary(sum("data" in o for o in outputs), len(outputs), "output")
    return {"status": top, "outputs": outputs}, http
