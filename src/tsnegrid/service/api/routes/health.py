"""/healthz: the server answers and its workers are alive."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from tsnegrid.service.api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request, session: SessionDep) -> Any:
    """Liveness: database reachable; how many worker processes are running. 503 while fewer
    run than configured (a dead one is being replaced)."""
    session.execute(text("SELECT 1"))
    pool = getattr(request.app.state, "workers", None)
    alive = pool.alive() if pool is not None else 0
    if pool is not None and not pool.healthy:
        return JSONResponse({"status": {"code": 10020, "description": (
            f"{alive} of {pool.wanted} worker processes running; restarting")},
            "workers": alive}, status_code=503)
    return {"status": {"code": 10000, "description": "Ok"}, "workers": alive}
