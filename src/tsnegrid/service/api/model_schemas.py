"""Request and response shapes of /v2/models, after ``clarifai.api.Model``, ``Output`` and
``PostModelOutputsRequest`` (proto field names)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tsnegrid.service.api.schemas import ImageIn, ProtoStatus, Status, UserAppIdIn


class OutputInfo(BaseModel):
    type: str = Field(description="embed: the model answers data.embeddings")
    type_ext: str
    message: str


class ModelVersion(BaseModel):
    id: str
    created_at: str
    status: ProtoStatus


class ModelOut(BaseModel):
    id: str
    name: str
    display_name: str
    created_at: str
    app_id: str = Field(description="main: a model every app can use")
    model_type_id: str = Field(description="visual-embedder (the current API's name for the "
                                           "type; the older output_info.type says embed)")
    output_info: OutputInfo
    model_version: ModelVersion


class ModelsResponse(BaseModel):
    """``MultiModelResponse``."""

    status: Status
    models: list[ModelOut]


class ModelResponse(BaseModel):
    """``SingleModelResponse``."""

    status: Status
    model: ModelOut


class OutputInputData(BaseModel):
    image: ImageIn | None = None


class OutputInputIn(BaseModel):
    """An input to embed: ``data.image`` (base64 or url), or the ``id`` of a stored input."""

    id: str | None = Field(None, max_length=128)
    data: OutputInputData | None = None


class PostModelOutputsRequest(BaseModel):
    user_app_id: UserAppIdIn | None = None
    inputs: list[OutputInputIn] = Field(min_length=1)


class Embedding(BaseModel):
    vector: list[float]
    num_dimensions: int


class OutputData(BaseModel):
    embeddings: list[Embedding]


class InputEcho(BaseModel):
    id: str | None = None


class OutputOut(BaseModel):
    id: str
    status: ProtoStatus
    created_at: str
    model: ModelOut
    input: InputEcho
    data: OutputData | None = None


class OutputsResponse(BaseModel):
    """``MultiOutputResponse``."""

    status: Status
    outputs: list[OutputOut]
