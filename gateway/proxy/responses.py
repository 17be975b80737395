"""The JSON error answer every refusal gets: ``{"error":code,"detail":text}``, never a traceback.

The body comes from ``middleware.http.error_json``, the one writer every layer uses, so a proxy refusal has
the very bytes ``/auth/*`` or bearer mode would write for the same error.
"""

from __future__ import annotations

from starlette.types import Send

from frontdesk.middleware.errors import FrontdeskError
from frontdesk.middleware.http import error_json

__all__ = ["send_error", "error_body"]


def error_body(exc: FrontdeskError) -> bytes:
    return error_json(exc.code, exc.detail)


async def send_error(
    send: Send,
    exc: FrontdeskError,
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
    close: bool = False,
) -> None:
    body = error_body(exc)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
    if extra:
        headers += extra
    if close:
        # The rest of an unread or refused body is not worth reading: uvicorn closes after this answer.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
