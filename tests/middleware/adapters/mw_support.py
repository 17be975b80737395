"""waitress serving a WSGI app from a background thread, and token-forging helpers (uvicorn for an ASGI app is
``tests.support.serve_in_thread``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from waitress.server import create_server

BIG_HEADERS = 4 * 1024 * 1024  # let "1 MB of garbage" reach the middleware instead of the server's own limit


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """waitress (several worker threads) on a free loopback port; yields the base URL."""
    server = create_server(
        app,
        host="127.0.0.1",
        port=0,
        threads=4,
        max_request_header_size=BIG_HEADERS,
        clear_untrusted_proxy_headers=True,
    )
    port = server.socket.getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=server.run, name=f"waitress-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        thread.join(timeout=30)


def gateway_config(folder: Path, toml: str) -> Path:
    """``folder/config.toml`` with ``toml``, for a gateway in front of the app under test, beside a one-page
    static site in ``folder/static`` (where the gateway looks when ``[static]`` names no directory)."""
    (folder / "static").mkdir()
    (folder / "static" / "index.html").write_text("<!doctype html><title>spa</title>")
    path = folder / "config.toml"
    path.write_text(toml)
    return path


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWS signed by hand: pyjwt refuses to HMAC with a PEM key, which is exactly the attack."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return b64(json.dumps({**header, "alg": "none"}).encode()) + "." + b64(json.dumps(claims).encode()) + "."


def public_pem(private_key: Any) -> bytes:
    return bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
