"""/v2/visualizations: start a grid job, poll it, fetch its image and layout, delete it."""

from __future__ import annotations

import hmac
import importlib.util
import json
import mimetypes
import secrets
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tsnegrid.arrange.grid import check_capacity
from tsnegrid.errors import InputError, MissingDependencyError, NoImagesError
from tsnegrid.load import parse_colour
from tsnegrid.pipeline import precheck
from tsnegrid.render.mosaic import check_size
from tsnegrid.service import gc, incremental, jobs
from tsnegrid.service.api.deps import (
    CallerDep,
    PageDep,
    ServiceState,
    SessionDep,
    StateDep,
    check_body_app,
    links,
)
from tsnegrid.service.api.errors import (
    Code,
    MissingAppVisualizationError,
    VisualizationRequestError,
    status,
)
from tsnegrid.service.api.files import blob_response
from tsnegrid.service.api.methods.call import Links
from tsnegrid.service.api.schemas import (
    ERRORS,
    StatusOnly,
    VisualizationRequest,
    VisualizationResponse,
    VisualizationsPage,
)
from tsnegrid.service.db import App, Input, Visualization
from tsnegrid.service.errors import LimitError, NotFoundError, TooManyJobsError, api_message
from tsnegrid.service.worker import job_settings

router = APIRouter(prefix="/v2/visualizations", tags=["visualizations"],
                   responses={**ERRORS, 429: {"model": StatusOnly,
                                              "description": "Too many jobs running"}})

OK = status(Code.SUCCESS, "Ok")
DESCRIPTIONS = {jobs.JobStatus.PENDING: "Waiting for a worker",
                jobs.JobStatus.RUNNING: "Building the grid",
                jobs.JobStatus.DONE: "Done"}


def _iso(value: Any) -> str:
    return value.isoformat(timespec="milliseconds") + "Z"


def output_json(job: Visualization, urls: Links) -> dict[str, Any]:
    state = jobs.JobStatus(job.status)
    if state == jobs.JobStatus.FAILED:
        description = job.error or "Failed"
    elif state == jobs.JobStatus.RUNNING and job.stage:
        description = f"Building the grid: {job.stage} ({job.progress}%)"
    else:
        description = DESCRIPTIONS[state]
    out: dict[str, Any] = {
        "id": job.viz_id,
        "status": {"code": state.value, "description": description,
                   "progress": job.progress, "stage": job.stage},
        "created_at": _iso(job.created_at), "modified_at": _iso(job.updated_at),
        "input_count": len(job.inputs), "attempts": job.attempts, "params": job.params,
    }
    if state == jobs.JobStatus.DONE:
        out["data"] = {
            "image": {"url": urls.url_for("get_visualization_image", viz_id=job.viz_id)},
            "layout": {"url": urls.url_for("get_visualization_layout", viz_id=job.viz_id)}}
        if job.viewer_key and job.viewer_token:
            out["data"]["viewer"] = {"url": urls.url_for(
                "get_viewer_file", viz_id=job.viz_id, token=job.viewer_token,
                path="index.html")}
    return out


EMBED_STAGES = ("", "load", "embed")
PROTO_TYPE = "tsne_grid"


def visualization_output(job: Visualization, urls: Links, app: App) -> dict[str, Any]:
    """The job as ``clarifai.api.VisualizationOutput``: proto status codes (42001 pending or
    running, 42000 done, 42002 failed, 42007 failed while embedding), the grid image's url
    once done, and the inputs laid out."""
    state = jobs.JobStatus(job.status)
    if state == jobs.JobStatus.DONE:
        code = Code.VISUALIZATION_SUCCESS
    elif state == jobs.JobStatus.FAILED:
        code = (Code.VISUALIZATION_FAILED_TO_EMBED if job.stage in EMBED_STAGES
                else Code.VISUALIZATION_FAILED)
    else:
        code = Code.VISUALIZATION_PENDING
    legacy = output_json(job, urls)
    out: dict[str, Any] = {
        "id": job.viz_id,
        "status": {**status(code, legacy["status"]["description"]),
                   "percent_completed": job.progress},
        "app_id": app.name, "type": PROTO_TYPE, "created_at": legacy["created_at"],
        "inputs": [{"id": input_id} for input_id, _key in job.inputs]}
    if "data" in legacy:
        out["data"] = {"image": legacy["data"]["image"]}
    return out


def answer(job: Visualization, urls: Links, app: App) -> dict[str, Any]:
    """``SingleVisualizationResponse`` plus ``output``, the same job with our extras."""
    return {"status": OK, "visualization_output": visualization_output(job, urls, app),
            "output": output_json(job, urls)}


def find_job(session: Session, app_id: int, viz_id: str) -> Visualization:
    job = session.scalar(select(Visualization).where(Visualization.app_id == app_id,
                                                     Visualization.viz_id == viz_id))
    if job is None:
        raise NotFoundError(f"visualization {viz_id!r} not found")
    return job


def select_inputs(session: Session, app_id: int, body: VisualizationRequest) -> list[list[str]]:
    """``[input_id, blob_key]`` of the chosen inputs, in upload order. Metadata is read only
    to filter by it, a few hundred rows at a time (never every input's at once)."""
    columns = [Input.input_id, Input.blob_key] + ([Input.meta] if body.metadata else [])
    query = select(*columns).where(Input.app_id == app_id).order_by(Input.pk)
    wanted: list[str] = []
    if body.input_ids is not None:
        wanted = list(dict.fromkeys(body.input_ids))
        query = query.where(Input.input_id.in_(wanted))
    rows: list[list[str]] = []
    found: set[str] = set()
    for r in session.execute(query.execution_options(yield_per=200)):
        found.add(r[0])
        if not body.metadata or all((r[2] or {}).get(k) == v for k, v in body.metadata.items()):
            rows.append([r[0], r[1]])
    missing = set(wanted) - found
    if missing:
        raise NotFoundError(f"no such inputs: {', '.join(sorted(missing)[:10])}")
    if not rows:
        raise NoImagesError("no inputs to lay out (the app has none, or none match)")
    return rows


@router.post("", response_model=VisualizationResponse, response_model_exclude_none=True)
def start_visualization(request: Request, caller: CallerDep, session: SessionDep,
                        state: StateDep,
                        body: VisualizationRequest | None = None) -> dict[str, Any]:
    """Start a grid of the app's inputs (all, the listed ids, or those matching metadata); with
    ``incremental``, add those not yet in an earlier visualization to it."""
    body = body or VisualizationRequest()
    check_body_app(caller, body.user_app_id)
    try:
        job = _start(body, caller, session, state)
    except (LimitError, NotFoundError, TooManyJobsError, MissingDependencyError):
        raise
    except InputError as exc:
        raise VisualizationRequestError(api_message(exc)) from exc
    return answer(job, links(request, state), caller)


def _start(body: VisualizationRequest, caller: App, session: Session,
           state: ServiceState) -> Visualization:
    """Check the request and queue its job (errors as raised by the checks)."""
    if body.incremental:
        chosen = select_inputs(session, caller.id, body)
        plan = incremental.plan(session, state.store, caller.id, body.base,
                                body.explicit_settings(), chosen)
        params, chosen = plan.params, plan.inputs
        settings = job_settings(params, state.config)
        _check_count(len(chosen), state)
        check_size(plan.rows, plan.cols, settings.tile, settings.max_pixels, settings.format)
    else:
        if body.base is not None:
            raise InputError('base: names the visualization to add to; it needs '
                             '"incremental": true')
        params = body.settings_params()
        settings = job_settings(params, state.config)
        parse_colour(settings.background)
        if settings.reducer == "umap" and importlib.util.find_spec("umap") is None:
            raise MissingDependencyError("umap-learn", "umap")
        chosen = select_inputs(session, caller.id, body)
        _check_count(len(chosen), state)
        shape = precheck(len(chosen), settings)
        if shape is not None:
            check_capacity(len(chosen), *shape)
    if jobs.active_count(session, caller.id) >= state.config.max_jobs_per_app:
        raise TooManyJobsError(f"this app already has {state.config.max_jobs_per_app} "
                               "visualizations pending or running; wait for one to finish")
    if jobs.active_count(session) >= state.config.max_jobs:
        raise TooManyJobsError(f"the server already has {state.config.max_jobs} "
                               "visualizations pending or running; try again later")
    job = jobs.enqueue(session, caller.id, params, chosen)
    session.commit()
    return job


def _check_count(n: int, state: ServiceState) -> None:
    if n > state.config.max_inputs_per_visualization:
        raise LimitError(f"{n} inputs in one visualization; the limit is "
                         f"{state.config.max_inputs_per_visualization}")


@router.get("", response_model=VisualizationsPage)
def list_visualizations(request: Request, caller: CallerDep, session: SessionDep,
                        state: StateDep, page: PageDep) -> dict[str, Any]:
    """The app's visualizations, newest first."""
    rows, pagination = page.fetch(session, Visualization, caller.id, Visualization.pk.desc())
    urls = links(request, state)
    return {"status": OK, "outputs": [output_json(j, urls) for j in rows],
            "pagination": pagination}


@router.get("/app", response_model=VisualizationResponse, response_model_exclude_none=True,
            responses={404: {"model": StatusOnly, "description": "The app has no "
                             "visualization yet (42004)"}})
def get_app_visualization(request: Request, caller: CallerDep, session: SessionDep,
                          state: StateDep) -> dict[str, Any]:
    """The app's newest visualization, whatever its state (``GetAppVisualization``)."""
    job = session.scalar(select(Visualization).where(Visualization.app_id == caller.id)
                         .order_by(Visualization.pk.desc()).limit(1))
    if job is None:
        raise MissingAppVisualizationError("this app has no visualization yet; start one with "
                                           "POST /v2/visualizations")
    return answer(job, links(request, state), caller)


@router.get("/{viz_id}", response_model=VisualizationResponse,
            response_model_exclude_none=True)
def get_visualization(viz_id: str, request: Request, caller: CallerDep,
                      session: SessionDep, state: StateDep) -> dict[str, Any]:
    return answer(find_job(session, caller.id, viz_id), links(request, state), caller)


def _output_key(session: Session, app_id: int, viz_id: str,
                kind: str) -> tuple[str, Visualization]:
    job = find_job(session, app_id, viz_id)
    key = job.image_key if kind == "image" else job.layout_key
    if job.status != jobs.JobStatus.DONE.value or key is None:
        raise NotFoundError(f"visualization {viz_id!r} has no {kind} yet (status "
                            f"{job.status})")
    return key, job


@router.get("/{viz_id}/image", response_class=FileResponse,
            responses={200: {"content": {"image/*": {}}, "description": "The grid image"}})
def get_visualization_image(viz_id: str, caller: CallerDep, session: SessionDep,
                            state: StateDep) -> Response:
    """The grid image of a finished visualization."""
    key, job = _output_key(session, caller.id, viz_id, "image")
    fmt = job.params.get("format", "jpg")
    media = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}.get(fmt)
    return blob_response(state.store, key, media, f"{viz_id}.{fmt}")


@router.get("/{viz_id}/layout", response_class=FileResponse,
            responses={200: {"content": {"application/json": {}},
                             "description": "layout.json with input ids"}})
def get_visualization_layout(viz_id: str, caller: CallerDep, session: SessionDep,
                             state: StateDep) -> Response:
    """Where each input sits on the grid (layout.json, paths replaced by input ids)."""
    key, _job = _output_key(session, caller.id, viz_id, "layout")
    return blob_response(state.store, key, "application/json")


@router.get("/{viz_id}/viewer/{token}/{path:path}", response_class=FileResponse,
            responses={200: {"content": {"text/html": {}, "application/javascript": {},
                                         "text/css": {}, "image/*": {}},
                             "description": "A file of the visualization's viewer"}})
def get_viewer_file(viz_id: str, token: str, path: str, session: SessionDep,
                    state: StateDep) -> Response:
    """The zoomable viewer of a finished visualization. The link's token (from the
    authenticated ``GET /v2/visualizations/{id}``, ``output.data.viewer.url``) is the
    credential, so the page and everything it loads open in a browser without headers; it
    stops working when the app's key is revoked, or its owner withdraws or replaces it."""
    job = session.scalar(select(Visualization).where(Visualization.viz_id == viz_id))
    if (job is None or not job.viewer_key or not job.viewer_token
            or not hmac.compare_digest(job.viewer_token.encode(), token.encode())
            or session.scalar(select(App.revoked_at).where(App.id == job.app_id)) is not None):
        raise NotFoundError(f"visualization {viz_id!r} has no viewer at this link")
    if path.startswith("inputs/"):
        input_id = unquote(path.removeprefix("inputs/"))
        key = next((k for i, k in job.inputs if i == input_id), None)
        row = session.scalar(select(Input).where(Input.app_id == job.app_id,
                                                 Input.input_id == input_id))
        if key is None:
            raise NotFoundError(f"input {input_id!r} is not in this visualization")
        return blob_response(state.store, key, row.mime if row else None)
    manifest = json.loads(state.store.read(job.viewer_key))
    key = manifest.get(path or "index.html")
    if key is None:
        raise NotFoundError(f"the viewer has no file {path!r}")
    media = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return blob_response(state.store, key, media)


@router.post("/{viz_id}/viewer", response_model=VisualizationResponse,
             response_model_exclude_none=True)
def renew_viewer_link(viz_id: str, request: Request, caller: CallerDep, session: SessionDep,
                      state: StateDep) -> dict[str, Any]:
    """Give the viewer a new link (a fresh token): the old link stops working at once; the
    answer carries the new one in ``output.data.viewer.url``."""
    job = find_job(session, caller.id, viz_id)
    if job.status != jobs.JobStatus.DONE.value or not job.viewer_key:
        raise NotFoundError(f"visualization {viz_id!r} has no viewer (status {job.status})")
    job.viewer_token = secrets.token_urlsafe(24)
    session.commit()
    return answer(job, links(request, state), caller)


@router.delete("/{viz_id}/viewer", response_model=StatusOnly)
def withdraw_viewer_link(viz_id: str, caller: CallerDep, session: SessionDep) -> dict[str, Any]:
    """Withdraw the viewer's link: it stops working at once, and the visualization answers
    without one until ``POST .../viewer`` makes a new one."""
    job = find_job(session, caller.id, viz_id)
    job.viewer_token = None
    session.commit()
    return {"status": OK}


@router.delete("/{viz_id}", response_model=StatusOnly)
def delete_visualization(viz_id: str, caller: CallerDep, session: SessionDep,
                         state: StateDep) -> dict[str, Any]:
    """Delete a visualization; a running job stops at its next progress report."""
    job = find_job(session, caller.id, viz_id)
    session.delete(job)
    gc.mark(session, gc.visualization_keys(job, state.store))
    session.commit()
    return {"status": OK}
