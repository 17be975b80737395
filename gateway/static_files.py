"""The SPA's files, served with strict security headers.

Unknown paths without a file extension get ``index.html`` so client-side routes survive a reload; a
missing asset (``/app.js.map``) stays a 404. Nothing whose path has a segment starting with ``.`` is ever
served (``/.env``, ``/.git/config``, ``/ui/.secret``): it answers the very 404 a missing file does, so a
probe learns nothing. A directory without its trailing slash is redirected with a relative ``Location``
built from the request path, never from the client's ``Host``.

The shell (the root ``index.html``, also what the fallback serves) tells ``frontdesk.js`` where the auth
endpoints are and which CSRF header to send, in ``<meta name="frontdesk-auth-prefix">`` and
``<meta name="frontdesk-csrf-header">``: the page's own tags get the gateway's values, missing ones are added
before ``</head>``. Meta tags rather than a settings endpoint: no inline script (the CSP forbids it), no extra
round trip before the first call, and no endpoint that would itself need the header it announces.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import NotModifiedResponse, PathLike, StaticFiles

from frontdesk.middleware.asgi_io import Message, Receive, Scope, Send, send_response
from frontdesk.middleware.http import HttpResponse, error_body

from .security_headers import FRAME_DENY, NOSNIFF

__all__ = ["ClientSettings", "SecureStaticFiles", "SECURITY_HEADERS", "fill_client_settings"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# The SPA's own, stricter than what the gateway adds to every response (security_headers): its full CSP
# (frame-ancestors included) and no-referrer. Those present are left alone by that layer.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    NOSNIFF,
    (b"referrer-policy", b"no-referrer"),
    FRAME_DENY,
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What ``frontdesk.js`` must know of the server: the auth endpoints' prefix and the CSRF header name."""

    auth_prefix: str = "/auth"
    csrf_header: str = "x-csrf"

    def meta(self) -> dict[str, str]:
        """``<meta name>`` → ``content``, as ``FrontdeskClient.fromPage()`` reads them."""
        return {"frontdesk-auth-prefix": self.auth_prefix, "frontdesk-csrf-header": self.csrf_header}


# A whole <meta ...> tag whose name is one of ours; the name is captured (quoted or not, any case).
_META_TAG = re.compile(rb"""<meta\b[^>]*?\bname\s*=\s*["']?(frontdesk-[a-z-]+)["']?[^>]*>""", re.IGNORECASE)
_HEAD_END = re.compile(rb"</head\s*>", re.IGNORECASE)


def fill_client_settings(page: bytes, settings: Mapping[str, str]) -> bytes:
    """``page`` with each ``<meta name=NAME>`` of ``settings`` carrying its value: an existing tag is replaced,
    a missing one added before ``</head>`` (a page without ``</head>`` keeps only what it has)."""
    filled: set[str] = set()

    def tag(name: str) -> bytes:
        return f'<meta name="{name}" content="{html.escape(settings[name])}">'.encode()

    def replace(match: re.Match[bytes]) -> bytes:
        name = match.group(1).decode("ascii").lower()
        if name not in settings:
            return match.group(0)
        filled.add(name)
        return tag(name)

    page = _META_TAG.sub(replace, page)
    missing = b"".join(tag(name) + b"\n" for name in settings if name not in filled)
    if missing:
        page = _HEAD_END.sub(lambda end: missing + end.group(0), page, count=1)
    return page


class _Files(StaticFiles):
    """Starlette's StaticFiles (its lookup, symlink and 304 rules), except that the shell is served with the
    client settings filled in. Rendered once per version of the file, not per request."""

    def __init__(self, directory: Path, settings: Mapping[str, str]) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)
        self._settings = dict(settings)
        self._shell = directory / "index.html"
        self._rendered: tuple[tuple[int, int, int], bytes, str] | None = None

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        if not self._settings or not self._is_shell(full_path):
            return super().file_response(full_path, stat_result, scope, status_code)
        body, etag = self._render(full_path, stat_result)
        response = Response(body, status_code, media_type="text/html", headers={"etag": etag})
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response

    def _is_shell(self, full_path: PathLike) -> bool:
        return os.path.basename(full_path) == "index.html" and os.fspath(full_path) == os.path.realpath(self._shell)

    def _render(self, full_path: PathLike, stat_result: os.stat_result) -> tuple[bytes, str]:
        version = (stat_result.st_ino, stat_result.st_size, stat_result.st_mtime_ns)
        if self._rendered is None or self._rendered[0] != version:
            with open(full_path, "rb") as shell:  # a few kB, read once per deploy
                body = fill_client_settings(shell.read(), self._settings)
            # From the rendered bytes, so a changed setting with an unchanged file is not answered 304.
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            self._rendered = (version, body, etag)
        return self._rendered[1], self._rendered[2]


class SecureStaticFiles:
    def __init__(self, directory: Path, *, client: ClientSettings | None = None) -> None:
        """``client``: what the shell tells ``frontdesk.js`` (see the module docstring); None leaves it as is."""
        self.directory = directory
        self._files = _Files(directory, client.meta() if client is not None else {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # No route took this upgrade: refuse it properly instead of returning without a handshake.
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_response(send, error_body(405, "method_not_allowed", "static files are read-only"))
            return
        path = scope["path"]
        # ".." and "." are dot segments too: one rule keeps both traversal and hidden files out.
        if not self.directory.is_dir() or any(part.startswith(".") for part in path.split("/")):
            await send_response(send, _not_found())
            return
        if "." not in path.rsplit("/", 1)[-1] and not self._exists(path):
            scope = dict(scope, path="/")

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k not in names]
                message = {**message, "headers": headers + SECURITY_HEADERS}
                if scope["path"] in ("/", "/index.html"):
                    # The shell must always be revalidated so a deploy is picked up at once.
                    message["headers"].append((b"cache-control", b"no-cache"))
                if 300 <= message["status"] < 400:
                    # Starlette's directory redirect names the client's Host (and http://): use a path instead.
                    message["headers"] = [(k, v) for k, v in message["headers"] if k != b"location"]
                    message["headers"].append((b"location", _directory_location(scope)))
            await send(message)

        try:
            await self._files(scope, receive, send_secure)
        except HTTPException as exc:  # Starlette raises its 404/405 outside an app that would catch them
            if exc.status_code == 404:
                await send_response(send, _not_found())  # the same bytes as a refused dotfile
                return
            code = {405: "method_not_allowed"}.get(exc.status_code, "bad_request")
            await send_response(send, error_body(exc.status_code, code, str(exc.detail)))

    def _exists(self, path: str) -> bool:
        try:
            return (self.directory / path.lstrip("/")).exists()
        except OSError:  # a name too long for the filesystem is simply not there
            return False


def _not_found() -> HttpResponse:
    return error_body(404, "not_found", "no such file")


def _directory_location(scope: Scope) -> bytes:
    """``/dir/`` (plus the query) for a request of ``/dir``; one leading slash, so never ``//host/``."""
    location = "/" + quote(scope["path"].lstrip("/"), safe="/:@!$&'()*+,;=-._~") + "/"
    query = scope.get("query_string", b"")
    if query:
        location += "?" + quote(query.decode("latin-1"), safe="/?:@!$&'()*+,;=-._~%")
    return location.encode("ascii")
