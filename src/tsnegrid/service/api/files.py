"""Blob downloads: a file response from a local store, streamed chunks from any other."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import FileResponse, Response, StreamingResponse

from tsnegrid.service.storage import BlobStore


def blob_response(store: BlobStore, key: str, media_type: str | None,
                  filename: str | None = None) -> Response:
    """The blob ``key`` as an HTTP answer, named ``filename`` for downloads if given."""
    if store.local:
        return FileResponse(store.path(key), media_type=media_type, filename=filename)
    headers = ({"Content-Disposition": f"attachment; filename*=utf-8''{quote(filename)}"}
               if filename else None)
    return StreamingResponse(store.chunks(key), media_type=media_type, headers=headers)
