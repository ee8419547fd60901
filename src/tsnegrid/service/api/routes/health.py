"""/healthz: the server answers and its workers are alive."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from tsnegrid.service.api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request, session: SessionDep) -> dict[str, Any]:
    """Liveness: database reachable; how many worker processes are running."""
    session.execute(text("SELECT 1"))
    pool = getattr(request.app.state, "workers", None)
    return {"status": {"code": 10000, "description": "Ok"},
            "workers": pool.alive() if pool is not None else 0}
