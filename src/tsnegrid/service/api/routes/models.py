"""/v2/models: the embedders as Clarifai embedding models, and lite0's concept model; ``POST
.../outputs`` embeds images (base64, url or a stored input's id) and answers
``data.embeddings[].vector``, or for the concept model ``data.concepts`` (``{id, name, value}``,
value desc, as Clarifai's general model answers)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tsnegrid.errors import InputError, TsnegridError
from tsnegrid.service.api.deps import (
    CallerDep,
    PageDep,
    ServiceState,
    SessionDep,
    StateDep,
    check_body_app,
)
from tsnegrid.service.api.embedders import (
    CATALOGUE,
    DEFAULT_MAX_CONCEPTS,
    LISTED_SINCE,
    VERSION,
    ModelInfo,
)
from tsnegrid.service.api.errors import Code, ModelNotFoundError, input_code, status
from tsnegrid.service.api.model_schemas import (
    ModelResponse,
    ModelsResponse,
    OutputInputIn,
    OutputsResponse,
    PostModelOutputsRequest,
)
from tsnegrid.service.api.routes.inputs import find_input
from tsnegrid.service.api.schemas import ERRORS
from tsnegrid.service.db import App
from tsnegrid.service.errors import LimitError, NotFoundError
from tsnegrid.service.ingest import check_image, image_bytes

router = APIRouter(prefix="/v2/models", tags=["models"], responses=ERRORS)

OK = status(Code.SUCCESS, "Ok")


def _iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="milliseconds") + "Z"


def model_json(info: ModelInfo) -> dict[str, Any]:
    created = _iso(LISTED_SINCE)
    if info.kind == "concept":
        kind, type_id = "concept", "visual-classifier"
        message = f"{info.dimensions} concepts: {info.description}"
    else:
        kind, type_id = "embed", "visual-embedder"
        message = f"{info.dimensions}-d vectors: {info.description}"
    return {"id": info.id, "name": info.name, "display_name": info.name, "created_at": created,
            "app_id": "main", "model_type_id": type_id,
            "output_info": {"type": kind, "type_ext": kind, "message": message},
            "model_version": {"id": VERSION, "created_at": created,
                              "status": status(Code.MODEL_TRAINED, "Model is trained and "
                                                                   "ready")}}


def find_model(model_id: str, version_id: str | None = None) -> ModelInfo:
    info = CATALOGUE.get(model_id)
    if info is None:
        raise ModelNotFoundError(f"model {model_id!r} not found; models: "
                                 f"{', '.join(CATALOGUE)}")
    if version_id is not None and version_id != VERSION:
        raise ModelNotFoundError(f"model {model_id!r} has no version {version_id!r} (its one "
                                 f"version is {VERSION!r})")
    return info


@router.get("", response_model=ModelsResponse)
def list_models(caller: CallerDep, page: PageDep) -> dict[str, Any]:
    """The embedders, as models every app can use (``app_id`` ``main``)."""
    infos = list(CATALOGUE.values())[page.offset:page.offset + page.per_page]
    return {"status": OK, "models": [model_json(i) for i in infos]}


@router.get("/{model_id}", response_model=ModelResponse)
def get_model(model_id: str, caller: CallerDep) -> dict[str, Any]:
    return {"status": OK, "model": model_json(find_model(model_id))}


def _image_of(item: OutputInputIn, caller: App, session: SessionDep,
              state: ServiceState) -> bytes:
    cfg = state.config
    image = item.data.image if item.data is not None else None
    if image is not None:
        return check_image(image_bytes(image.base64, image.url, cfg, state.allow,
                                       state.fetch_slots, caller.id),
                           cfg.max_image_pixels, state.decode_budget).data
    if item.id:
        return state.store.read(find_input(session, caller.id, item.id).blob_key)
    raise InputError("an input needs data.image (base64 or url) or the id of a stored input")


def _outputs(info: ModelInfo, body: PostModelOutputsRequest, caller: App,
             session: SessionDep, state: ServiceState) -> JSONResponse:
    check_body_app(caller, body.user_app_id)
    if len(body.inputs) > state.config.max_inputs_per_request:
        raise LimitError(f"{len(body.inputs)} inputs in one request; the limit is "
                         f"{state.config.max_inputs_per_request}")
    images: list[bytes | None] = []
    problems: list[dict[str, Any] | None] = []
    for item in body.inputs:
        try:
            images.append(_image_of(item, caller, session, state))
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
        results = state.embed.concepts(info.runs, good,
                                       wanted.max_concepts or DEFAULT_MAX_CONCEPTS)
    elif good:
        results = list(state.embed.embed(info.runs, good))
    vectors = iter(results)
    now, model = _iso(dt.datetime.now(dt.UTC).replace(tzinfo=None)), model_json(info)
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
            out["data"] = {"concepts": [{**c, "app_id": "main"} for c in vec
                                        if c["value"] >= wanted.min_value]}
        else:
            assert vec is not None
            out["status"] = OK
            out["data"] = {"embeddings": [{"vector": [float(v) for v in vec],
                                           "num_dimensions": len(vec)}]}
        outputs.append(out)
    n_ok = sum("data" in o for o in outputs)
    if n_ok == len(outputs):
        top, http = OK, 200
    elif n_ok:
        top, http = status(Code.MIXED_STATUS, "Some inputs failed; see each output's status"), 200
    else:
        top, http = status(Code.FAILURE, "No input was embedded; see each output's status"), 400
    return JSONResponse({"status": top, "outputs": outputs}, status_code=http)


@router.post("/{model_id}/outputs", response_model=OutputsResponse)
def post_model_outputs(model_id: str, body: PostModelOutputsRequest, caller: CallerDep,
                       session: SessionDep, state: StateDep) -> JSONResponse:
    """Run the model on the inputs: one output per input, in order, each with its status and,
    when it worked, ``data.embeddings[0].vector`` (an embedder) or ``data.concepts`` (the
    concept model: at most ``model.output_info.output_config.max_concepts``, default 20, of at
    least ``min_value``, most probable first)."""
    return _outputs(find_model(model_id), body, caller, session, state)


@router.post("/{model_id}/versions/{version_id}/outputs", response_model=OutputsResponse)
def post_model_version_outputs(model_id: str, version_id: str, body: PostModelOutputsRequest,
                               caller: CallerDep, session: SessionDep,
                               state: StateDep) -> JSONResponse:
    """As ``POST /v2/models/{model_id}/outputs``, for the model's one version."""
    return _outputs(find_model(model_id, version_id), body, caller, session, state)
