"""Incremental visualizations: add an app's new inputs to one of its finished visualizations.

The request side (``plan``) picks the base, takes its parameters and splits the inputs into
kept, new and dropped; the worker side (``seed_layout``) turns the base's layout document back
into a ``layout.json`` over the job's work files, which ``tsnegrid.pipeline.add`` extends.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tsnegrid.errors import InputError, NoImagesError
from tsnegrid.service.db import Input, Visualization
from tsnegrid.service.errors import NotFoundError
from tsnegrid.service.storage import BlobStore
from tsnegrid.settings import Settings

#: Job parameters that are not pipeline settings: whether the job adds to a base, and which.
JOB_KEYS = ("incremental", "base")
DONE = "DONE"


@dataclass(frozen=True)
class Plan:
    """What an incremental job starts from and what it adds."""

    base: Visualization
    params: dict[str, Any]
    """The base's settings plus ``incremental`` and ``base``."""
    inputs: list[list[str]]
    """``[input_id, blob_key]``: the base's inputs still in the app (base order), then new."""
    added: int
    dropped: list[str]
    """Base inputs deleted (or replaced) since the base was built."""
    rows: int
    cols: int
    """The grid the job may grow to (the base's rows grown by whole rows, if full)."""


def settings_params(params: dict[str, Any]) -> dict[str, Any]:
    """A job's parameters without the job keys: the ``Settings`` fields."""
    return {k: v for k, v in params.items() if k not in JOB_KEYS}


def find_base(session: Session, app_id: int, base_id: str | None) -> Visualization:
    """The named visualization (404 if absent, 400 unless DONE), else the app's newest DONE."""
    if base_id is None:
        job = session.scalar(select(Visualization)
                             .where(Visualization.app_id == app_id, Visualization.status == DONE)
                             .order_by(Visualization.pk.desc()).limit(1))
        if job is None:
            raise InputError("incremental: this app has no finished (DONE) visualization to add "
                             "to; start one without incremental first, or name one in base")
        return job
    job = session.scalar(select(Visualization).where(Visualization.app_id == app_id,
                                                     Visualization.viz_id == base_id))
    if job is None:
        raise NotFoundError(f"base: visualization {base_id!r} not found")
    if job.status != DONE or job.layout_key is None:
        raise InputError(f"base: visualization {base_id!r} is {job.status}; only a DONE "
                         "visualization can be added to")
    return job


def check_conflicts(requested: dict[str, Any], base_params: dict[str, Any]) -> None:
    """Refuse a parameter given in the request whose value is not the base's."""
    for name, value in requested.items():
        if name in base_params and base_params[name] != value:
            raise InputError(f"{name}: {value!r} differs from the base visualization's "
                             f"{base_params[name]!r}; an incremental visualization takes its "
                             f"parameters from its base (leave {name} out)")


def plan(session: Session, store: BlobStore, app_id: int, base_id: str | None,
         requested: dict[str, Any], chosen: list[list[str]]) -> Plan:
    """Plan adding the ``chosen`` inputs that are not in the base to the base.

    ``requested`` holds the settings the request gave explicitly; they must match the base's.
    An input counts as in the base when its id and bytes (blob key) are those the base used.
    """
    base = find_base(session, app_id, base_id)
    params = settings_params(base.params)
    check_conflicts(requested, params)
    current = {i: k for i, k in session.execute(select(Input.input_id, Input.blob_key)
                                                 .where(Input.app_id == app_id))}
    kept = [[i, k] for i, k in base.inputs if current.get(i) == k]
    dropped = [i for i, k in base.inputs if current.get(i) != k]
    old = {(i, k) for i, k in base.inputs}
    new = [[i, k] for i, k in chosen if (i, k) not in old]
    if not new:
        raise NoImagesError(f"nothing to add: every chosen input is already in visualization "
                            f"{base.viz_id}")
    assert base.layout_key is not None
    doc = json.loads(store.read(base.layout_key))
    kept_ids = {i for i, _ in kept}
    placed = sum(r["input_id"] in kept_ids for r in doc["images"])
    if not placed:
        raise InputError(f"base: none of the inputs placed in visualization {base.viz_id} is "
                         "still in the app; start a new visualization without incremental")
    rows, cols = int(doc["grid"]["rows"]), int(doc["grid"]["cols"])
    rows = max(rows, math.ceil((placed + len(new)) / cols))
    return Plan(base, {**params, "incremental": True, "base": base.viz_id}, kept + new,
                len(new), dropped, rows, cols)


def seed_layout(base_doc: dict[str, Any], kept_paths: dict[str, str],
                settings: Settings) -> dict[str, Any]:
    """The base's ``layout.json`` for ``tsnegrid.pipeline.add``: kept inputs at their cells
    under their work paths, dropped ones gone (their cells free), this server's settings."""
    images = [{**{k: v for k, v in r.items() if k != "input_id"},
               "path": kept_paths[r["input_id"]]}
              for r in base_doc["images"] if r["input_id"] in kept_paths]
    return {**base_doc, "settings": settings.to_dict(), "images": images, "skipped": [],
            "duplicates": [], "counts": {**base_doc.get("counts", {}), "found": len(images)}}
