"""The JSON error answer every refusal gets: ``{"error":code,"detail":text}``, never a traceback.

Written by ``middleware.http.error_response``, the one writer every layer uses, so a proxy refusal has the
very bytes ``/auth/*``, session mode or bearer mode would write for the same error.
"""

from __future__ import annotations

from starlette.types import Send

from frontdesk.middleware.asgi_io import send_response
from frontdesk.middleware.errors import FrontdeskError
from frontdesk.middleware.http import HttpResponse, error_response

__all__ = ["error_answer", "send_error"]


def error_answer(
    exc: FrontdeskError,
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
    close: bool = False,
) -> HttpResponse:
    """The JSON error answer for ``exc``, with ``extra`` headers; ``close``: the connection ends after it."""
    headers = [("cache-control", "no-store")]
    if extra:
        headers += [(name.decode("latin-1"), value.decode("latin-1")) for name, value in extra]
    if close:
        # The rest of an unread or refused body is not worth reading: the server closes after this answer.
        headers.append(("connection", "close"))
    return error_response(exc, headers)


async def send_error(
    send: Send,
    exc: FrontdeskError,
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
    close: bool = False,
) -> HttpResponse:
    """Send the JSON error answer for ``exc``; returns what was sent (for the request's own record)."""
    response = error_answer(exc, extra=extra, close=close)
    await send_response(send, response)
    return response
