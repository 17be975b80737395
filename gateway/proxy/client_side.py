"""The browser's side of one proxied exchange, as :class:`~.cycle.HttpCycle` sees it: read the request body,
write the answer. Two implementations, so that the admission and forwarding logic exists once and only the
byte I/O differs:

- :class:`AsgiClient`: ASGI ``receive``/``send`` (any ASGI server, ``fast_path = false``, the tests' ASGI run);
- ``fast.ProtocolClient``: the answer written as bytes straight onto uvicorn's transport by ``frontdesk serve``'s
  own protocol, without the ASGI layers (``serving.FastHttp``).
"""

from __future__ import annotations

from typing import Protocol

from starlette.types import Receive, Send

__all__ = ["AsgiClient", "ClientSide", "Headers"]

Headers = list[tuple[bytes, bytes]]


class ClientSide(Protocol):
    """What an exchange needs from the browser's connection."""

    @property
    def receive(self) -> Receive:
        """The next ``http.request`` piece of the body, or ``http.disconnect`` (the ASGI shape: RequestBody
        and the disconnect watcher read it, on exchanges with a body or a streamed answer only)."""
        ...

    async def start(self, status: int, headers: Headers, body: bytes = b"", more: bool = True) -> None:
        """The answer's head (lower-case names), with its first body piece; ``more=False``: that was all."""
        ...

    async def send_body(self, data: bytes, more: bool) -> None:
        """A further piece of the answer's body; ``more=False``: the last one."""
        ...


class AsgiClient:
    """The client side over ASGI ``receive``/``send``."""

    __slots__ = ("receive", "send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self.send = send

    async def start(self, status: int, headers: Headers, body: bytes = b"", more: bool = True) -> None:
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        if body or not more:
            await self.send({"type": "http.response.body", "body": body, "more_body": more})

    async def send_body(self, data: bytes, more: bool) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})
