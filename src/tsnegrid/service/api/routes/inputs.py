"""/v2/inputs: add images to the caller's app, list, get and delete them."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tsnegrid.errors import InputError, TsnegridError
from tsnegrid.service import gc
from tsnegrid.service.api.deps import CallerDep, PageDep, SessionDep, StateDep, check_body_app
from tsnegrid.service.api.errors import Code, NotImplementedMethodError, input_code, status
from tsnegrid.service.api.files import blob_response
from tsnegrid.service.api.paths import not_implemented
from tsnegrid.service.api.schemas import (
    ERRORS,
    DeleteInputsRequest,
    InputCountResponse,
    InputResponse,
    InputsPage,
    InputsResponse,
    PostInputsRequest,
)
from tsnegrid.service.db import Input, insert_new_inputs
from tsnegrid.service.errors import ConflictError, LimitError, NotFoundError
from tsnegrid.service.ingest import (
    CheckedImage,
    check_id,
    check_image,
    check_metadata,
    image_bytes,
)

router = APIRouter(prefix="/v2/inputs", tags=["inputs"], responses=ERRORS)

OK = status(Code.SUCCESS, "Ok")


def input_json(row: Input, request: Request) -> dict[str, Any]:
    return {
        "id": row.input_id,
        "data": {"image": {"url": str(request.url_for("get_input_image", input_id=row.input_id)),
                           "width": row.width, "height": row.height, "mime": row.mime,
                           "size_bytes": row.size_bytes},
                 "metadata": row.meta or {}},
        "created_at": row.created_at.isoformat(timespec="milliseconds") + "Z",
        "status": status(Code.INPUT_DOWNLOAD_SUCCESS, "Download complete"),
    }


def find_input(session: Session, app_id: int, input_id: str) -> Input:
    row = session.scalar(select(Input).where(Input.app_id == app_id,
                                             Input.input_id == input_id))
    if row is None:
        raise NotFoundError(f"input {input_id!r} not found")
    return row


@router.post("", response_model=InputsResponse)
def post_inputs(body: PostInputsRequest, request: Request, caller: CallerDep,
                session: SessionDep, state: StateDep) -> JSONResponse:
    """Add images (base64 or url). Each input gets its own status; good ones are kept."""
    check_body_app(caller, body.user_app_id)
    cfg = state.config
    if len(body.inputs) > cfg.max_inputs_per_request:
        raise LimitError(f"{len(body.inputs)} inputs in one request; the limit is "
                         f"{cfg.max_inputs_per_request}")

    def prepare(item: Any) -> tuple[CheckedImage, str]:
        img = item.data.image
        checked = check_image(image_bytes(img.base64, img.url, cfg, state.allow,
                                          state.fetch_slots, caller_id),
                              cfg.max_image_pixels, state.decode_budget)
        return checked, state.store.put(checked.data)

    ids = [item.id if item.id is not None else uuid.uuid4().hex for item in body.inputs]
    taken = set(session.scalars(select(Input.input_id).where(
        Input.app_id == caller.id, Input.input_id.in_(ids))))
    problems: list[TsnegridError | None] = []
    seen: set[str] = set()
    for input_id, item in zip(ids, body.inputs, strict=True):
        try:
            check_id(input_id)
            check_metadata(item.data.metadata)
            if input_id in seen or input_id in taken:
                raise ConflictError(f"input id {input_id!r} already exists in this app")
            seen.add(input_id)
            problems.append(None)
        except TsnegridError as exc:
            problems.append(exc)
    caller_id = caller.id
    session.commit()  # no database connection is held while images are fetched and decoded
    with ThreadPoolExecutor(max_workers=4) as pool:  # blobs are written before the rows
        futures = [pool.submit(prepare, item) if p is None else None
                   for item, p in zip(body.inputs, problems, strict=True)]
    rows: list[Input | None] = []
    errors: list[dict[str, Any]] = []
    for item, input_id, fut, problem in zip(body.inputs, ids, futures, problems, strict=True):
        try:
            if problem is not None:
                raise problem
            assert fut is not None
            checked, key = fut.result()
            rows.append(Input(app_id=caller.id, input_id=input_id, blob_key=key,
                              mime=checked.mime, width=checked.width, height=checked.height,
                              size_bytes=len(checked.data), meta=item.data.metadata or {}))
            errors.append({})
        except TsnegridError as exc:
            rows.append(None)
            errors.append({"id": item.id, "status": status(input_code(exc), str(exc))})
    stored = insert_new_inputs(session, [r for r in rows if r is not None])
    session.commit()
    for i, row in enumerate(rows):  # taken meanwhile by a concurrent upload of the same id
        if row is not None and row.input_id not in stored:
            rows[i] = None
            errors[i] = {"id": row.input_id, "status": status(Code.INPUT_DUPLICATE, (
                f"input id {row.input_id!r} already exists in this app"))}
    results = [input_json(r, request) if r is not None else e
               for r, e in zip(rows, errors, strict=True)]
    n_ok = sum(r is not None for r in rows)
    if n_ok == len(results):
        top, http = OK, 200
    elif n_ok:
        top, http = status(Code.MIXED_STATUS, "Some inputs failed; see each input's status"), 200
    else:
        top, http = status(Code.FAILURE, "No input was added; see each input's status"), 400
    return JSONResponse({"status": top, "inputs": results}, status_code=http)


@router.get("", response_model=InputsPage)
def list_inputs(request: Request, caller: CallerDep, session: SessionDep,
                page: PageDep) -> dict[str, Any]:
    """The app's inputs, oldest first."""
    rows, pagination = page.fetch(session, Input, caller.id, Input.pk.asc())
    return {"status": OK, "inputs": [input_json(r, request) for r in rows],
            "pagination": pagination}


@router.get("/status", response_model=InputCountResponse)
def get_input_count(caller: CallerDep, session: SessionDep) -> dict[str, Any]:
    """How many inputs the app has (``SingleInputCountResponse``): every stored input has
    been fetched and decoded, so all count as processed."""
    n = session.scalar(select(func.count()).select_from(Input)
                       .where(Input.app_id == caller.id)) or 0
    return {"status": OK, "counts": {"processed": n, "to_process": 0, "errors": 0,
                                     "processing": 0}}


@router.get("/stream", include_in_schema=False)
def stream_inputs(request: Request) -> None:
    """StreamInputs, which ``/{input_id}`` would otherwise take for an input named stream."""
    raise NotImplementedMethodError(not_implemented(request.method, request.url.path))


@router.get("/{input_id}", response_model=InputResponse)
def get_input(input_id: str, request: Request, caller: CallerDep,
              session: SessionDep) -> dict[str, Any]:
    return {"status": OK, "input": input_json(find_input(session, caller.id, input_id), request)}


@router.get("/{input_id}/image", response_class=FileResponse,
            responses={200: {"content": {"image/*": {}}, "description": "The image bytes"}})
def get_input_image(input_id: str, caller: CallerDep, session: SessionDep,
                    state: StateDep) -> Response:
    """The stored image file."""
    row = find_input(session, caller.id, input_id)
    return blob_response(state.store, row.blob_key, row.mime)


@router.delete("/{input_id}", response_model=InputsResponse)
def delete_input(input_id: str, caller: CallerDep, session: SessionDep) -> dict[str, Any]:
    """Delete one input (jobs already accepted keep their copy)."""
    row = find_input(session, caller.id, input_id)
    session.delete(row)
    gc.mark(session, [row.blob_key])
    session.commit()
    return {"status": OK, "inputs": [{"id": input_id, "status": OK}]}


@router.delete("", response_model=InputsResponse)
def delete_inputs(body: DeleteInputsRequest, caller: CallerDep,
                  session: SessionDep) -> dict[str, Any]:
    """Delete inputs by id (ids this app does not have are reported as not found), or all of
    them with ``delete_all``."""
    check_body_app(caller, body.user_app_id)
    if body.delete_all == (body.ids is not None):
        raise InputError("give either ids or \"delete_all\": true")
    if body.delete_all:
        session.execute(delete(Input).where(Input.app_id == caller.id))
        session.commit()
        return {"status": OK, "inputs": []}
    assert body.ids is not None
    wanted = list(dict.fromkeys(body.ids))
    keys: dict[str, str] = dict(session.execute(select(Input.input_id, Input.blob_key).where(
        Input.app_id == caller.id, Input.input_id.in_(wanted))).all())
    found = set(keys)
    session.execute(delete(Input).where(Input.app_id == caller.id, Input.input_id.in_(found)))
    gc.mark(session, keys.values())
    session.commit()
    missing = [i for i in wanted if i not in found]
    if missing and not found:
        raise NotFoundError(f"no such inputs: {', '.join(missing[:10])}")
    return {"status": OK if not missing else status(Code.MIXED_STATUS, "Some ids not found"),
            "inputs": [{"id": i, "status": OK if i in found else
                        status(Code.CONN_DOES_NOT_EXIST, "not found")} for i in wanted]}
