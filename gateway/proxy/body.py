"""The request body as it streams in from the browser: size limit, upstream framing, replay for one retry."""

from __future__ import annotations

from starlette.types import Receive

from .errors import PayloadTooLarge

__all__ = ["ClientGone", "RequestBody", "frame_chunk", "LAST_CHUNK", "REPLAY_LIMIT"]

# Bodies up to this size are kept while they stream so a stale pooled connection can be retried.
REPLAY_LIMIT = 64 * 1024
LAST_CHUNK = b"0\r\n\r\n"


class ClientGone(Exception):
    """The browser disconnected while we were reading its request body."""


def frame_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class RequestBody:
    __slots__ = ("_limit", "_receive", "done", "replay", "total")

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self.total = 0
        self.done = False
        self.replay: list[bytes] | None = []  # None once too large to keep

    async def read(self) -> bytes | None:
        """The next non-empty piece of the body, or None at its end. Raises PayloadTooLarge, ClientGone."""
        while not self.done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            data: bytes = message.get("body", b"")
            if not message.get("more_body", False):
                self.done = True
            self.total += len(data)
            if self.total > self._limit:
                raise PayloadTooLarge(f"the request body is larger than {self._limit} bytes")
            if self.replay is not None:
                if self.total <= REPLAY_LIMIT:
                    self.replay.append(data)
                else:
                    self.replay = None
            if data:
                return data
        return None
