"""/v2/models: the embedders as Clarifai embedding models, and lite0's concept model (REST over
``methods.models``); ``POST .../outputs`` embeds images (base64, url or a stored input's id) and
answers ``data.embeddings[].vector``, or for the concept model ``data.concepts``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tsnegrid.service.api.deps import CallDep, PageDep
from tsnegrid.service.api.methods import models
from tsnegrid.service.api.model_schemas import (
    ModelResponse,
    ModelsResponse,
    ModelTypeResponse,
    ModelTypesResponse,
    OutputsResponse,
    PostModelOutputsRequest,
)
from tsnegrid.service.api.routes.inputs import reply
from tsnegrid.service.api.schemas import ERRORS

router = APIRouter(prefix="/v2/models", tags=["models"], responses=ERRORS)


@router.get("", response_model=ModelsResponse)
def list_models(call: CallDep, page: PageDep) -> dict[str, Any]:
    """The embedders and the concept model, as models of the caller's app."""
    return models.list_models(call, page)[0]


@router.get("/types", response_model=ModelTypesResponse)
def list_model_types(call: CallDep) -> dict[str, Any]:
    return models.list_model_types(call)[0]


@router.get("/types/{model_type_id}", response_model=ModelTypeResponse)
def get_model_type(model_type_id: str, call: CallDep) -> dict[str, Any]:
    """What a model type takes (``input_fields``) and answers (``output_fields``)."""
    return models.get_model_type(call, model_type_id)[0]


@router.get("/{model_id}", response_model=ModelResponse)
def get_model(model_id: str, call: CallDep) -> dict[str, Any]:
    return models.get_model(call, model_id)[0]


@router.get("/{model_id}/versions/{version_id}", response_model=ModelResponse)
def get_model_version(model_id: str, version_id: str, call: CallDep) -> dict[str, Any]:
    """As ``GET /v2/models/{model_id}``, for the model's one version."""
    return models.get_model(call, model_id, version_id)[0]


@router.post("/{model_id}/outputs", response_model=OutputsResponse)
def post_model_outputs(model_id: str, body: PostModelOutputsRequest,
                       call: CallDep) -> JSONResponse:
    """Run the model on the inputs: one output per input, in order, each with its status and,
    when it worked, ``data.embeddings[0].vector`` (an embedder) or ``data.concepts`` (the
    concept model: at most ``output_config.max_concepts``, default 20, of at least
    ``min_value``, most probable first)."""
    return reply(models.post_model_outputs(call, model_id, body))


@router.post("/{model_id}/versions/{version_id}/outputs", response_model=OutputsResponse)
def post_model_version_outputs(model_id: str, version_id: str, body: PostModelOutputsRequest,
                               call: CallDep) -> JSONResponse:
    """As ``POST /v2/models/{model_id}/outputs``, for the model's one version."""
    return reply(models.post_model_outputs(call, model_id, body, version_id))
