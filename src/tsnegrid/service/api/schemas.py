"""Request and response shapes (Clarifai v2 style). Visualization defaults come from Settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tsnegrid.embed import MODELS
from tsnegrid.reduce import REDUCERS
from tsnegrid.settings import IMAGE_FORMATS, Settings, setting_help

HELP = setting_help()
ReducerName = Literal[tuple(REDUCERS)]  # type: ignore[valid-type]
ModelName = Literal[tuple(MODELS)]  # type: ignore[valid-type]
FormatName = Literal[tuple(IMAGE_FORMATS)]  # type: ignore[valid-type]
InputId = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")


class Status(BaseModel):
    code: int | str
    description: str


class StatusOnly(BaseModel):
    status: Status


class ProtoStatus(BaseModel):
    """``clarifai.api.status.Status``: an integer code of the proto's enum."""

    code: int
    description: str


class ProgressStatus(ProtoStatus):
    """A visualization's status: the proto's ``percent_completed`` carries the progress."""

    percent_completed: int


class UserAppIdIn(BaseModel):
    """``user_app_id`` as the official clients send it in bodies; ``app_id``, when given,
    must be the key's own app (its name)."""

    user_id: str | None = None
    app_id: str | None = None


# ---- inputs ---------------------------------------------------------------------------------


class ImageIn(BaseModel):
    base64: str | None = Field(None, description="The image file's bytes, base64-encoded.")
    url: str | None = Field(None, description="An http(s) url the server fetches once.")


class InputDataIn(BaseModel):
    image: ImageIn
    metadata: dict[str, Any] | None = None


class InputIn(BaseModel):
    id: str | None = Field(None, description="Your id for the input (letters, digits, _.:-; "
                                             "at most 128); a random one if absent.")
    data: InputDataIn


class PostInputsRequest(BaseModel):
    user_app_id: UserAppIdIn | None = None
    inputs: list[InputIn] = Field(min_length=1)
    inputs_add_job_id: str | None = Field(None, max_length=128, description=(
        "Names this upload for GetInputsAddJob (the current client sends one per batch)."))


class DeleteInputsRequest(BaseModel):
    user_app_id: UserAppIdIn | None = None
    ids: list[str] | None = Field(None, min_length=1, max_length=1000)
    delete_all: bool = Field(False, description="Delete every input of the app (then no ids).")


class ImageInfoOut(BaseModel):
    """The proto's ``ImageInfo``: what the stored image is."""

    width: int
    height: int
    format: str = Field(description="PNG, JPEG, WEBP, ...")


class ImageOut(BaseModel):
    url: str
    image_info: ImageInfoOut
    width: int
    height: int
    mime: str
    size_bytes: int


class InputDataOut(BaseModel):
    image: ImageOut | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class InputOut(BaseModel):
    id: str | None
    data: InputDataOut | None = None
    created_at: str | None = None
    status: Status


class InputsResponse(BaseModel):
    status: Status
    inputs: list[InputOut]


class InputResponse(BaseModel):
    status: Status
    input: InputOut


class Pagination(BaseModel):
    page: int
    per_page: int
    total: int


class InputsPage(InputsResponse):
    pagination: Pagination


class InputCount(BaseModel):
    """``clarifai.api.InputCount``."""

    processed: int
    to_process: int
    errors: int
    processing: int


class InputCountResponse(BaseModel):
    """``SingleInputCountResponse``."""

    status: Status
    counts: InputCount


class AddJobProgress(BaseModel):
    success_count: int
    failed_count: int
    pending_count: int
    in_progress_count: int


class InputsAddJob(BaseModel):
    """``InputsAddJob``: uploads are stored within their request, so a job is complete."""

    id: str
    progress: AddJobProgress
    status: ProtoStatus


class InputsAddJobResponse(BaseModel):
    """``SingleInputsAddJobResponse``."""

    status: Status
    inputs_add_job: InputsAddJob


# ---- apps -----------------------------------------------------------------------------------


class AppOut(BaseModel):
    """``App``: its name is its id."""

    id: str
    name: str
    user_id: str | None = None
    created_at: str
    default_language: str


class AppResponse(BaseModel):
    """``SingleAppResponse``."""

    status: Status
    app: AppOut


class AppsResponse(BaseModel):
    """``MultiAppResponse``."""

    status: Status
    apps: list[AppOut]


# ---- visualizations -------------------------------------------------------------------------


class VisualizationRequest(BaseModel):
    """Grid parameters (defaults: the library's) and which inputs to lay out (default: all)."""

    model_config = ConfigDict(extra="forbid")

    grid: str = Field(Settings.grid, max_length=32, description=HELP["grid"])
    tile: int = Field(Settings.tile, ge=1, le=512, description=HELP["tile"])
    seed: int = Field(Settings.seed, ge=0, le=2**31 - 1, description=HELP["seed"])
    reducer: ReducerName = Field(  # type: ignore[valid-type]
        Settings.reducer, description=HELP["reducer"])
    model: ModelName = Field(  # type: ignore[valid-type]
        Settings.model, description=HELP["model"])
    format: FormatName = Field(  # type: ignore[valid-type]
        Settings.format, description=HELP["format"])
    fit: bool = Field(Settings.fit, description=HELP["fit"])
    background: str = Field(Settings.background, max_length=32, description=HELP["background"])
    names: str = Field(Settings.names, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$",
                       description="Where region names come from: auto (here: the concepts), "
                       "concepts, none, or a field of the inputs' metadata (the value most of "
                       "a region has).")
    input_ids: list[str] | None = Field(None, min_length=1, description="Lay out these inputs.")
    metadata: dict[str, Any] | None = Field(None, description="Lay out the inputs whose "
                                            "metadata has all these key/value pairs.")
    incremental: bool = Field(False, description="Add the chosen inputs that are not in the "
                              "base visualization to it: its inputs keep their cells (but for "
                              "a few that may move), its parameters are used, deleted inputs "
                              "leave it.")
    base: str | None = Field(None, min_length=1, max_length=64, description="With incremental: "
                             "the visualization to add to (default: the app's newest DONE one).")
    user_app_id: UserAppIdIn | None = Field(None, description="As Clarifai's clients send it; "
                                            "app_id, if given, must be the key's app.")

    @field_validator("names")
    @classmethod
    def _names(cls, value: str) -> str:
        if value in ("folders", "files"):
            raise ValueError(f"{value!r} names regions by the images' file paths, which inputs "
                             "do not have; use auto, concepts, none or a metadata field")
        return value

    def settings_params(self) -> dict[str, Any]:
        """The fields that are ``Settings`` fields."""
        return self.model_dump(exclude={"input_ids", "metadata", "incremental", "base",
                                        "user_app_id"})

    def explicit_settings(self) -> dict[str, Any]:
        """The ``Settings`` fields the request gave explicitly."""
        return {k: v for k, v in self.settings_params().items() if k in self.model_fields_set}


class Link(BaseModel):
    url: str


class VisualizationData(BaseModel):
    image: Link
    layout: Link
    viewer: Link | None = Field(None, description="The zoomable viewer; the link itself is the "
                                                  "credential, so share it with care")


class JobStatusOut(BaseModel):
    code: str = Field(description="PENDING, RUNNING, DONE or FAILED")
    description: str
    progress: int = Field(description="percent done")
    stage: str = ""


class VisualizationOut(BaseModel):
    id: str
    status: JobStatusOut
    created_at: str
    modified_at: str
    input_count: int
    attempts: int
    params: dict[str, Any]
    data: VisualizationData | None = None


class ImageUrl(BaseModel):
    url: str


class ProtoVisualizationData(BaseModel):
    """``clarifai.api.Data`` of a visualization: the grid image once it is done."""

    image: ImageUrl | None = None


class InputRef(BaseModel):
    id: str


class ProtoVisualizationOutput(BaseModel):
    """``clarifai.api.VisualizationOutput``, field for field."""

    id: str
    status: ProgressStatus
    app_id: str
    type: str
    data: ProtoVisualizationData | None = None
    created_at: str
    inputs: list[InputRef]


class VisualizationResponse(BaseModel):
    """``SingleVisualizationResponse`` (``visualization_output``) plus ``output``: the same
    visualization with this server's extras (progress, stage, params, layout and viewer)."""

    status: Status
    visualization_output: ProtoVisualizationOutput
    output: VisualizationOut


class VisualizationsPage(BaseModel):
    status: Status
    outputs: list[VisualizationOut]
    pagination: Pagination


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": StatusOnly, "description": "Bad request"},
    401: {"model": StatusOnly, "description": "Missing or invalid API key"},
    404: {"model": StatusOnly, "description": "No such object in this app"},
    413: {"model": StatusOnly, "description": "Over a size or count limit"},
}
