"""PostInputs, ListInputs, GetInput, GetInputCount, DeleteInput(s) and GetInputsAddJob: the
images of the caller's app."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, select
from sqlalchemy.orm import Session

from tsnegrid.errors import InputError, TsnegridError
from tsnegrid.service import gc
from tsnegrid.service.api.errors import Code, input_code, status
from tsnegrid.service.api.methods.auth import check_app
from tsnegrid.service.api.methods.call import OK, Answer, Call, iso, summary
from tsnegrid.service.api.methods.pages import Page
from tsnegrid.service.api.schemas import DeleteInputsRequest, PostInputsRequest
from tsnegrid.service.db import Input, InputsAddJob, insert_new_inputs
from tsnegrid.service.errors import (
    ConflictError,
    LimitError,
    NotFoundError,
    StorageFullError,
)
from tsnegrid.service.ingest import CheckedImage, check_id, check_image, check_metadata, image_bytes


def input_json(row: Input, call: Call) -> dict[str, Any]:
    return {
        "id": row.input_id,
        "data": {"image": {"url": call.links.input_image(row.input_id),
                           "image_info": {"width": row.width, "height": row.height,
                                          "format": row.mime.partition("/")[2].upper()},
                           "width": row.width, "height": row.height, "mime": row.mime,
                           "size_bytes": row.size_bytes},
                 "metadata": row.meta or {}},
        "created_at": iso(row.created_at),
        "status": status(Code.INPUT_DOWNLOAD_SUCCESS, "Download complete"),
    }


def find_input(session: Session, app_id: int, input_id: str) -> Input:
    row = session.scalar(select(Input).where(Input.app_id == app_id,
                                             Input.input_id == input_id))
    if row is None:
        raise NotFoundError(f"input {input_id!r} not found")
    return row


def post_inputs(call: Call, body: PostInputsRequest) -> Answer:
    """Add images (base64 or url). Each input gets its own status; good ones are kept."""
    state, session, caller = call.state, call.session, call.caller
    check_app(caller, [body.user_app_id.app_id if body.user_app_id else None])
    cfg = state.config
    if len(body.inputs) > cfg.max_inputs_per_request:
        raise LimitError(f"{len(body.inputs)} inputs in one request; the limit is "
                         f"{cfg.max_inputs_per_request}")
    caller_id = caller.id

    def prepare(item: Any) -> tuple[CheckedImage, str]:
        img = item.data.image
        checked = check_image(image_bytes(img.base64, img.url, cfg, state.allow,
                                          state.fetch_slots, caller_id),
                              cfg.max_image_pixels, state.decode_budget)
        return checked, state.store.put(checked.data)

    ids = [item.id or uuid.uuid4().hex for item in body.inputs]
    taken = set(session.scalars(select(Input.input_id).where(
        Input.app_id == caller_id, Input.input_id.in_(ids))))
    problems: list[TsnegridError | None] = []
    seen: set[str] = set()
    for input_id, item in zip(ids, body.inputs, strict=True):
        try:
            check_id(input_id)
            check_metadata(item.data.metadata, cfg.max_metadata_bytes)
            if input_id in seen or input_id in taken:
                raise ConflictError(f"input id {input_id!r} already exists in this app")
            seen.add(input_id)
            problems.append(None)
        except TsnegridError as exc:
            problems.append(exc)
    session.commit()  # no database connection is held while images are fetched and decoded
    with ThreadPoolExecutor(max_workers=4) as pool:  # blobs are written before the rows
        futures = [pool.submit(prepare, item) if p is None else None
                   for item, p in zip(body.inputs, problems, strict=True)]
    written = [f.result()[1] for f in futures if f is not None and f.exception() is None]
    try:
        return _store(call, body, ids, futures, problems)
    except BaseException:  # nothing of the request is kept: its blobs are collected
        session.rollback()
        state.orphans.adopt(state.db, written)
        raise


def _store(call: Call, body: PostInputsRequest, ids: list[str], futures: list[Any],
           problems: list[TsnegridError | None]) -> Answer:
    """Write the rows of the inputs that were fetched, checked and stored as blobs; each
    input's status. A full blob store fails the whole request (``StorageFullError``)."""
    session, caller_id = call.session, call.caller.id
    rows: list[Input | None] = []
    errors: list[dict[str, Any]] = []
    for item, input_id, fut, problem in zip(body.inputs, ids, futures, problems, strict=True):
        try:
            if problem is not None:
                raise problem
            assert fut is not None
            checked, key = fut.result()
            rows.append(Input(app_id=caller_id, input_id=input_id, blob_key=key,
                              mime=checked.mime, width=checked.width, height=checked.height,
                              size_bytes=len(checked.data), meta=item.data.metadata or {}))
            errors.append({})
        except StorageFullError:
            raise
        except TsnegridError as exc:
            rows.append(None)
            errors.append({"id": item.id, "status": status(input_code(exc), str(exc))})
    stored = insert_new_inputs(session, [r for r in rows if r is not None])
    for i, row in enumerate(rows):  # taken meanwhile by a concurrent upload of the same id
        if row is not None and row.input_id not in stored:
            gc.mark(session, [row.blob_key])
            rows[i] = None
            errors[i] = {"id": row.input_id, "status": status(Code.INPUT_DUPLICATE, (
                f"input id {row.input_id!r} already exists in this app"))}
    n_ok = sum(r is not None for r in rows)
    answer: dict[str, Any] = {}
    if body.inputs_add_job_id:
        session.add(InputsAddJob(app_id=caller_id, job_id=body.inputs_add_job_id,
                                 succeeded=n_ok, failed=len(rows) - n_ok))
        answer["inputs_add_job"] = add_job_json(body.inputs_add_job_id, n_ok, len(rows) - n_ok)
    session.commit()
    top, http = summary(n_ok, len(rows), "input")
    results = [input_json(r, call) if r is not None else e
               for r, e in zip(rows, errors, strict=True)]
    return {"status": top, "inputs": results, **answer}, http


def _filters(ids: Sequence[str] | None, status_code: int | None) -> list[ColumnElement[bool]]:
    """ListInputs' filters: by id, and by status (every stored input has been downloaded)."""
    filters: list[ColumnElement[bool]] = []
    if ids:
        if len(ids) > 1000:
            raise InputError(f"ids: at most 1000 per request, not {len(ids)}")
        filters.append(Input.input_id.in_(list(ids)))
    if status_code and status_code != Code.INPUT_DOWNLOAD_SUCCESS:
        filters.append(false())
    return filters


def list_inputs(call: Call, page: Page, ids: Sequence[str] | None = None,
                status_code: int | None = None) -> Answer:
    """The app's inputs, oldest first (only ``ids``, and of that status, when given)."""
    rows, pagination = page.fetch(call.session, Input, call.caller.id, Input.pk.asc(),
                                  *_filters(ids, status_code))
    return {"status": OK, "inputs": [input_json(r, call) for r in rows],
            "pagination": pagination}, 200


def get_input(call: Call, input_id: str) -> Answer:
    return {"status": OK,
            "input": input_json(find_input(call.session, call.caller.id, input_id), call)}, 200


def get_input_count(call: Call) -> Answer:
    """How many inputs the app has (``SingleInputCountResponse``): every stored input has
    been fetched and decoded, so all count as processed."""
    n = call.session.scalar(select(func.count()).select_from(Input)
                            .where(Input.app_id == call.caller.id)) or 0
    return {"status": OK, "counts": {"processed": n, "to_process": 0, "errors": 0,
                                     "processing": 0}}, 200


def delete_input(call: Call, input_id: str) -> Answer:
    """Delete one input (jobs already accepted keep their copy)."""
    row = find_input(call.session, call.caller.id, input_id)
    call.session.delete(row)
    gc.mark(call.session, [row.blob_key])
    call.session.commit()
    return {"status": OK, "inputs": [{"id": input_id, "status": OK}]}, 200


def delete_inputs(call: Call, body: DeleteInputsRequest) -> Answer:
    """Delete inputs by id (ids this app does not have are reported as not found), or all of
    them with ``delete_all``."""
    session, caller = call.session, call.caller
    check_app(caller, [body.user_app_id.app_id if body.user_app_id else None])
    if body.delete_all == (body.ids is not None):
        raise InputError("give either ids or \"delete_all\": true")
    if body.delete_all:
        every = Input.app_id == caller.id
        gc.mark(session, session.scalars(select(Input.blob_key).where(every).distinct()))
        session.execute(delete(Input).where(every))
        session.commit()
        return {"status": OK, "inputs": []}, 200
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
                        status(Code.CONN_DOES_NOT_EXIST, "not found")} for i in wanted]}, 200


def add_job_json(job_id: str, succeeded: int, failed: int) -> dict[str, Any]:
    return {"id": job_id,
            "progress": {"success_count": succeeded, "failed_count": failed,
                         "pending_count": 0, "in_progress_count": 0},
            "status": status(Code.JOB_COMPLETED, "Job completed")}


def get_inputs_add_job(call: Call, job_id: str) -> Answer:
    """An add job's progress: its batches were stored within their requests, so it is done."""
    succeeded, failed, n = call.session.execute(
        select(func.coalesce(func.sum(InputsAddJob.succeeded), 0),
               func.coalesce(func.sum(InputsAddJob.failed), 0), func.count())
        .where(InputsAddJob.app_id == call.caller.id, InputsAddJob.job_id == job_id)).one()
    if not n:
        raise NotFoundError(f"inputs add job {job_id!r} not found")
    return {"status": OK, "inputs_add_job": add_job_json(job_id, succeeded, failed)}, 200
