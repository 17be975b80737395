"""ASGI plumbing shared by the gateway and the ASGI middleware: read a bounded body, send a response, answer
an endpoint path (``/auth/*``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .admission import Endpoints
from .errors import BadRequest, FrontdeskError
from .http import HttpRequest, HttpResponse, PairHeaders, error_response

__all__ = [
    "Scope",
    "Message",
    "Receive",
    "Send",
    "ASGIApp",
    "WS_POLICY_VIOLATION",
    "read_body",
    "request_from_scope",
    "ScopeRequest",
    "raw_headers",
    "send_response",
    "send_refusal",
    "answer_endpoint",
]

WS_POLICY_VIOLATION = 1008

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing (413) as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("client went away", status=400, code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest("request body too large", status=413, code="payload_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def request_from_scope(scope: Scope, body: bytes = b"") -> HttpRequest:
    """The transport-neutral request of an ``http`` or ``websocket`` scope (the one builder for both)."""
    return ScopeRequest(scope, body)


class ScopeRequest(HttpRequest):
    """An ASGI scope's :class:`HttpRequest`, lean because it is built for every request of a wrapped app: the
    path, the headers (a lazy view of the raw pairs) and ``websocket`` at once; ``method``, ``client`` and
    ``scheme`` and ``query``, which bearer mode never reads, from the scope on first use (then they are plain
    attributes)."""

    __slots__ = ("_scope",)

    def __init__(self, scope: Scope, body: bytes = b"") -> None:  # the dataclass __init__ would compute all
        self._scope = scope
        self.path = scope["path"]
        self.headers = PairHeaders(scope["headers"])
        self.body = body
        self.websocket = scope["type"] == "websocket"

    def __getattr__(self, name: str) -> Any:
        # Python calls this only for an attribute not set yet: the four filled lazily, each once.
        scope = self._scope
        value: Any
        if name == "method":
            value = scope.get("method", "GET")  # a WebSocket handshake is a GET
        elif name == "client":
            client = scope.get("client")
            value = client[0] if client else None
        elif name == "scheme":
            scheme = scope.get("scheme", "http")
            value = _HTTP_SCHEME.get(scheme, scheme)
        elif name == "query":
            value = scope.get("query_string", b"")
        else:
            raise AttributeError(name)
        setattr(self, name, value)
        return value


def raw_headers(response: HttpResponse) -> list[tuple[bytes, bytes]]:
    """``response``'s headers as the byte pairs a server writes, with its Content-Length (except on a 204)."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    if response.status != 204 and not any(k == "content-length" for k, _ in response.headers):
        headers.append((b"content-length", str(len(response.body)).encode()))
    return headers


async def send_response(send: Send, response: HttpResponse, *, websocket: bool = False) -> None:
    """Send ``response``; on a WebSocket (``websocket``: its scope has the ``websocket.http.response``
    extension) as the answer to the refused handshake."""
    headers = raw_headers(response)
    prefix = "websocket.http.response" if websocket else "http.response"
    await send({"type": f"{prefix}.start", "status": response.status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": response.body})


async def send_refusal(scope: Scope, send: Send, response: HttpResponse) -> None:
    """A refusal, HTTP or WebSocket alike. A handshake gets the JSON answer when the server can send one
    (the ``websocket.http.response`` extension), else a close before accept, which servers answer with 403."""
    if scope["type"] != "websocket":
        await send_response(send, response)
    elif "websocket.http.response" in (scope.get("extensions") or {}):
        await send_response(send, response, websocket=True)
    else:
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": ""})


async def answer_endpoint(endpoints: Endpoints, scope: Scope, receive: Receive, send: Send) -> None:
    """The pipeline's endpoint path on ASGI, for the gateway's ``/auth/*`` and session mode's alike: the body
    read up to the endpoints' limit (413 beyond it, as JSON), then their answer."""
    try:
        body = await read_body(receive, endpoints.body_limit)
    except FrontdeskError as exc:
        await send_response(send, error_response(exc))
        return
    await send_response(send, await endpoints.respond(request_from_scope(scope, body)))
