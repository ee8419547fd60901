"""/v2/inputs: add images to the caller's app, list, get and delete them (REST over
``methods.inputs``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from tsnegrid.service.api.deps import CallDep, PageDep
from tsnegrid.service.api.errors import NotImplementedMethodError
from tsnegrid.service.api.files import blob_response
from tsnegrid.service.api.methods import inputs
from tsnegrid.service.api.methods.call import Answer
from tsnegrid.service.api.paths import not_implemented
from tsnegrid.service.api.schemas import (
    ERRORS,
    DeleteInputsRequest,
    InputCountResponse,
    InputResponse,
    InputsAddJobResponse,
    InputsPage,
    InputsResponse,
    PostInputsRequest,
)

router = APIRouter(prefix="/v2/inputs", tags=["inputs"], responses=ERRORS)


def reply(answer: Answer) -> JSONResponse:
    body, http = answer
    return JSONResponse(body, status_code=http)


@router.post("", response_model=InputsResponse)
def post_inputs(body: PostInputsRequest, call: CallDep) -> JSONResponse:
    """Add images (base64 or url). Each input gets its own status; good ones are kept."""
    return reply(inputs.post_inputs(call, body))


@router.get("", response_model=InputsPage)
def list_inputs(call: CallDep, page: PageDep,
                ids: Annotated[list[str] | None, Query(description="only these ids")] = None,
                status_code: Annotated[int | None, Query(
                    alias="status.code", description="only inputs of this status")] = None,
                ) -> dict[str, Any]:
    """The app's inputs, oldest first."""
    return inputs.list_inputs(call, page, ids, status_code)[0]


@router.get("/status", response_model=InputCountResponse)
def get_input_count(call: CallDep) -> dict[str, Any]:
    """How many inputs the app has (``SingleInputCountResponse``)."""
    return inputs.get_input_count(call)[0]


@router.get("/jobs/add/{job_id}", response_model=InputsAddJobResponse)
def get_inputs_add_job(job_id: str, call: CallDep) -> dict[str, Any]:
    """An upload's progress, by the ``inputs_add_job_id`` it was sent with."""
    return inputs.get_inputs_add_job(call, job_id)[0]


@router.get("/stream", include_in_schema=False)
def stream_inputs(request: Request) -> None:
    """StreamInputs, which ``/{input_id}`` would otherwise take for an input named stream."""
    raise NotImplementedMethodError(not_implemented(request.method, request.url.path,
                                                    "StreamInputs"))


@router.get("/{input_id}", response_model=InputResponse)
def get_input(input_id: str, call: CallDep) -> dict[str, Any]:
    return inputs.get_input(call, input_id)[0]


@router.get("/{input_id}/image", response_class=FileResponse,
            responses={200: {"content": {"image/*": {}}, "description": "The image bytes"}})
def get_input_image(input_id: str, call: CallDep) -> Response:
    """The stored image file."""
    row = inputs.find_input(call.session, call.caller.id, input_id)
    return blob_response(call.state.store, row.blob_key, row.mime)


@router.delete("/{input_id}", response_model=InputsResponse)
def delete_input(input_id: str, call: CallDep) -> dict[str, Any]:
    """Delete one input (jobs already accepted keep their copy)."""
    return inputs.delete_input(call, input_id)[0]


@router.delete("", response_model=InputsResponse)
def delete_inputs(body: DeleteInputsRequest, call: CallDep) -> dict[str, Any]:
    """Delete inputs by id (ids this app does not have are reported as not found), or all of
    them with ``delete_all``."""
    return inputs.delete_inputs(call, body)[0]
