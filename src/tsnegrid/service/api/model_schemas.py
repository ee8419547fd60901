"""Request and response shapes of /v2/models, after ``clarifai.api.Model``, ``Output`` and
``PostModelOutputsRequest`` (proto field names)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tsnegrid.service.api.schemas import ImageIn, ProtoStatus, Status, UserAppIdIn


class OutputInfo(BaseModel):
    type: str = Field(description="embed: the model answers data.embeddings; concept: "
                                  "data.concepts")
    type_ext: str
    message: str


class ModelVersion(BaseModel):
    id: str
    created_at: str
    app_id: str
    output_info: OutputInfo
    status: ProtoStatus


class ModelOut(BaseModel):
    id: str
    name: str
    display_name: str
    created_at: str
    app_id: str = Field(description="the caller's app: every app has the built-in models (a "
                                    "read naming app main is accepted too)")
    model_type_id: str = Field(description="visual-embedder or visual-classifier (the current "
                                           "API's names for the types; the older "
                                           "output_info.type says embed or concept)")
    output_info: OutputInfo
    model_version: ModelVersion


class ModelTypeOut(BaseModel):
    """``ModelType``: what a kind of model takes and answers."""

    id: str
    title: str
    description: str
    input_fields: list[str]
    output_fields: list[str]


class ModelTypeResponse(BaseModel):
    """``SingleModelTypeResponse``."""

    status: Status
    model_type: ModelTypeOut


class ModelTypesResponse(BaseModel):
    """``MultiModelTypeResponse``."""

    status: Status
    model_types: list[ModelTypeOut]


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


class OutputConfigIn(BaseModel):
    """``OutputConfig``: how many concepts a concept model answers, and from what value."""

    max_concepts: int = Field(0, ge=0, le=1000, description="0: the default, 20")
    min_value: float = Field(0.0, ge=0.0, le=1.0)


class OutputInfoIn(BaseModel):
    output_config: OutputConfigIn | None = None


class ModelVersionIn(BaseModel):
    output_info: OutputInfoIn | None = None


class ModelIn(BaseModel):
    """The request's ``model``: only its ``output_config`` is read, from ``output_info`` (the
    older clients) or ``model_version.output_info`` (the current one)."""

    output_info: OutputInfoIn | None = None
    model_version: ModelVersionIn | None = None


class PostModelOutputsRequest(BaseModel):
    user_app_id: UserAppIdIn | None = None
    inputs: list[OutputInputIn] = Field(min_length=1)
    model: ModelIn | None = None

    @property
    def output_config(self) -> OutputConfigIn:
        model = self.model
        if model is None:
            return OutputConfigIn()
        for info in (model.model_version.output_info if model.model_version else None,
                     model.output_info):
            if info is not None and info.output_config is not None:
                return info.output_config
        return OutputConfigIn()


class Embedding(BaseModel):
    vector: list[float]
    num_dimensions: int


class Concept(BaseModel):
    """``Concept``: a WordNet id, the class name and its probability."""

    id: str
    name: str
    value: float
    app_id: str = "main"


class OutputData(BaseModel):
    embeddings: list[Embedding] | None = None
    concepts: list[Concept] | None = None


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
