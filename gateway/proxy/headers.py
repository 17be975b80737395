"""Header hygiene in both directions, done in one pass over the headers each way.

Request: hop-by-hop headers (and any named in ``Connection``) are dropped, as are every header frontdesk sets
itself (``Authorization``, ``X-Forwarded-*``, ``Forwarded``, ``X-Real-IP``, ``X-Request-ID``, ``X-Frontdesk-*``)
so a client can never forge them (the request id the gateway chose, a trusted proxy's when believed, is
written instead); the frontdesk cookie is cut out of ``Cookie``; framing that two HTTP parsers could read
differently (the request-smuggling shapes) is refused. Response: hop-by-hop headers go, and so do ``Date``
and ``Server`` (uvicorn sets its own, as nginx does) and any upstream ``Set-Cookie`` for the frontdesk cookie,
including a nameless one whose value would come back as it.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from frontdesk.middleware.cookies import DEVICE_SUFFIX
from frontdesk.middleware.cookies import strip_cookie as strip_cookie_header

from .contracts import TrustPolicy
from .errors import BadFraming

__all__ = [
    "HOP_BY_HOP",
    "ScannedRequest",
    "scan_request_headers",
    "render_request_head",
    "strip_cookie",
    "filter_response_headers",
    "replace_cookie",
    "sets_cookie",
]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
# Headers frontdesk sets (or that an upstream could take as identity); a client's copy never passes.
_OURS = frozenset(
    {
        b"authorization",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-real-ip",
        b"x-request-id",
    }
)
# ``Expect`` is answered by uvicorn itself (100 Continue) and the body is then streamed; passing it on would
# make the upstream send a second 100 that means nothing to anyone.
_REQUEST_DROP = HOP_BY_HOP | _OURS | {b"host", b"expect", b"content-length", b"cookie"}
_RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server"}
_KNOWN_CONNECTION_TOKENS = frozenset({b"keep-alive", b"close", b"upgrade"})
# filter_response_headers: names that need more than "drop it", and every name it looks at
_RESPONSE_DECIDED = frozenset({b"connection", b"transfer-encoding", b"set-cookie"})
_CONTENT_LENGTH = frozenset({b"content-length"})
_RESPONSE_LOOKED_AT = _RESPONSE_DROP | _RESPONSE_DECIDED | _CONTENT_LENGTH
_name = itemgetter(0)
_DEVICE_SUFFIX = DEVICE_SUFFIX.encode("ascii")


class ScannedRequest:
    """What the one pass over the request headers found, the kept ones already rendered as upstream lines.

    ``lines`` is the flat list ``[name, b": ", value, b"\r\n", name, ...]``: the head is joined from it with the
    token and the forwarding headers (``render_request_head``), without walking the headers a second time.
    """

    __slots__ = (
        "chunked",
        "connection_named",
        "cookie",
        "host",
        "length",
        "lines",
        "lookup",
        "size",
        "xff",
        "xfh",
        "xfp",
    )

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.cookie: bytes | None = None
        self.host: bytes = b""
        self.size = 0
        self.length: int | None = None  # Content-Length
        self.chunked = False
        self.connection_named: set[bytes] | None = None
        self.xff: bytes | None = None
        self.xfp: bytes | None = None
        self.xfh: bytes | None = None
        # Lower-case name -> decoded value for the few headers CSRF and origin checks look at.
        self.lookup: dict[str, str] = {}


_LOOKUP = frozenset({b"origin", b"sec-fetch-site"})
_LOOKUPS: dict[bytes, frozenset[bytes]] = {}  # per CSRF header name (one or two in a process): what to look up


def scan_request_headers(headers: Iterable[tuple[bytes, bytes]], csrf_header: bytes) -> ScannedRequest:
    """One pass over ASGI request headers (lower-case names): classify, filter, render. Raises :class:`BadFraming`."""
    s = ScannedRequest()
    lines = s.lines
    looked_up = _LOOKUPS.get(csrf_header)
    if looked_up is None:
        looked_up = _LOOKUPS[csrf_header] = _LOOKUP | {csrf_header} if csrf_header else _LOOKUP
    size = 0
    lengths = 0
    te_count = 0
    for name, value in headers:
        size += len(name) + len(value) + 4
        if name not in _REQUEST_DROP:
            if name.startswith(b"x-frontdesk-"):
                continue
            lines += (name, b": ", value, b"\r\n")
            if name in looked_up:
                s.lookup[name.decode("latin-1")] = value.decode("latin-1")
        elif name == b"cookie":
            # HTTP/2 may split cookies over several fields; HTTP/1.1 requires them joined with "; ".
            s.cookie = value if s.cookie is None else s.cookie + b"; " + value
        elif name == b"host":
            s.host = value
        elif name == b"content-length":
            lengths += 1
            if not value.isdigit() or len(value) > 18:
                raise BadFraming("Content-Length must be a plain number")
            s.length = int(value)
        elif name == b"transfer-encoding":
            te_count += 1
            if value.strip().lower() != b"chunked":
                raise BadFraming("only Transfer-Encoding: chunked is accepted")
            s.chunked = True
        elif name == b"connection":
            for token in value.lower().split(b","):
                token = token.strip()
                if token and token not in _KNOWN_CONNECTION_TOKENS:
                    if s.connection_named is None:
                        s.connection_named = set()
                    s.connection_named.add(token)
        elif name == b"x-forwarded-for":
            s.xff = value if s.xff is None else s.xff + b", " + value
        elif name == b"x-forwarded-proto":
            s.xfp = value
        elif name == b"x-forwarded-host":
            s.xfh = value
    s.size = size
    if lengths > 1 or te_count > 1:
        raise BadFraming("the request has more than one Content-Length or Transfer-Encoding")
    if lengths and te_count:
        raise BadFraming("the request has both Content-Length and Transfer-Encoding")
    return s


def strip_cookie(cookie: bytes, name: bytes) -> bytes:
    """Remove every ``name=...`` pair from a Cookie header value; other cookies pass untouched.

    The bytes twin of ``middleware.cookies.strip_cookie``, for the hot path, where headers stay bytes; like
    it, it also removes the session cookie's device cookie (``name`` + ``-device``, a login credential).
    """
    if name not in cookie:  # also true of the device cookie, whose name contains the session cookie's
        return cookie
    own = (name, name + _DEVICE_SUFFIX)
    kept = [p for p in cookie.split(b";") if p.strip().partition(b"=")[0] not in own]
    return b";".join(kept).strip()


def render_request_head(
    s: ScannedRequest,
    method: bytes,
    target: bytes,
    host_header: bytes,
    *,
    bearer: bytes | None,
    cookie_name: bytes,
    peer: str | None,
    scheme: str,
    trusted: TrustPolicy,
    public_host: bytes,
    body: bytes | None = None,
    request_id: bytes | None = None,
) -> bytes:
    """The upstream request head (request line and headers); ``body`` is the framing header to add.

    ``X-Forwarded-Host`` is ``public_host`` (``[proxy] public_host``) when configured, else a trusted proxy's
    ``X-Forwarded-Host``, else absent: the client's own ``Host`` is whatever the client wrote (``evil.example``,
    ``a b``), and an upstream building links or redirects from it would hand them to the next visitor.

    ``body`` is ``None`` for no body, otherwise the pre-rendered ``content-length``/``transfer-encoding``
    header line; the caller decides framing because it knows whether the body is buffered.

    ``request_id`` is the request's id (``gateway/request_ids.py``), sent as ``X-Request-ID``; the request's
    own was dropped by the scan.
    """
    parts = [method, b" ", target, b" HTTP/1.1\r\nhost: ", host_header, b"\r\n"]
    drop = s.connection_named
    lines = s.lines
    if drop is None:
        parts += lines
    else:  # rare: headers the client named in Connection are hop-by-hop too, wherever they stood
        for i in range(0, len(lines), 4):
            if lines[i] not in drop:
                parts += lines[i : i + 4]
    if s.cookie is not None:
        cookie = strip_cookie(s.cookie, cookie_name)
        if cookie:
            parts += (b"cookie: ", cookie, b"\r\n")
    if bearer is not None:
        parts += (b"authorization: Bearer ", bearer, b"\r\n")
    if request_id is not None:
        parts += (b"x-request-id: ", request_id, b"\r\n")
    if s.xff is None and s.xfp is None and s.xfh is None:
        # The common request: no forwarding headers of its own, so the forwarding lines depend only on the
        # peer and the scheme: rendered once per pair.
        key = (peer, scheme, public_host)
        forwarding = _FORWARDING.get(key)
        if forwarding is None:
            if len(_FORWARDING) >= 4096:
                _FORWARDING.clear()
            forwarding = _FORWARDING[key] = _forwarding_lines(peer, scheme, public_host)
        parts.append(forwarding)
    else:
        # The chain is only extended when the direct peer is a proxy we trust; anyone else could have
        # written any X-Forwarded-* they liked, so theirs are replaced.
        peer_b = peer.encode("latin-1") if peer else b"unknown"
        upstream_trusts = trusted.is_trusted(peer)
        if upstream_trusts and s.xff is not None:
            parts += (b"x-forwarded-for: ", s.xff, b", ", peer_b, b"\r\n")
        else:
            parts += (b"x-forwarded-for: ", peer_b, b"\r\n")
        proto = s.xfp if upstream_trusts and s.xfp is not None else scheme.encode("ascii")
        fhost = public_host or (s.xfh if upstream_trusts and s.xfh is not None else None)
        parts += (b"x-forwarded-proto: ", proto, b"\r\n")
        if fhost:
            parts += (b"x-forwarded-host: ", fhost, b"\r\n")
    if body is not None:
        parts.append(body)
    parts.append(b"\r\n")
    return b"".join(parts)


_FORWARDING: dict[tuple[str | None, str, bytes], bytes] = {}


def _forwarding_lines(peer: str | None, scheme: str, public_host: bytes) -> bytes:
    """``X-Forwarded-*`` for a request that came without any (what :func:`render_request_head` writes then)."""
    peer_b = peer.encode("latin-1") if peer else b"unknown"
    lines = b"x-forwarded-for: %b\r\nx-forwarded-proto: %b\r\n" % (peer_b, scheme.encode("ascii"))
    return lines + b"x-forwarded-host: %b\r\n" % public_host if public_host else lines


def filter_response_headers(
    headers: list[tuple[bytes, bytes]], cookie_name: bytes
) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Headers (lower-case names) fit for the browser, and whether a Content-Length was kept.

    What an answer to a session's request must also carry (``private``/``no-store``, ``Vary: Cookie``) is the
    admission pipeline's decoration, ``middleware.no_store``, applied after this.
    """
    # Most answers name none of the headers that need a decision beyond "drop it" (Connection, Transfer-Encoding,
    # Set-Cookie): then the names are compared in C, and the Python loop below runs only for the rest.
    found = _RESPONSE_LOOKED_AT.intersection(map(_name, headers))
    if found.isdisjoint(_RESPONSE_DECIDED):
        has_length = b"content-length" in found
        if not (found - _CONTENT_LENGTH):
            return list(headers), has_length
        return [pair for pair in headers if pair[0] not in _RESPONSE_DROP], has_length
    drop: set[bytes] | None = None
    chunked = False
    for name, value in headers:
        if name == b"connection":
            for token in value.lower().split(b","):
                token = token.strip()
                if token and token not in _KNOWN_CONNECTION_TOKENS:
                    drop = drop or set()
                    drop.add(token)
        elif name == b"transfer-encoding":
            chunked = True
    out: list[tuple[bytes, bytes]] = []
    has_length = False
    for name, value in headers:
        if name in _RESPONSE_DROP or (drop is not None and name in drop):
            continue
        if name == b"content-length":
            if chunked:  # both present: the length is the lie (RFC 9112 6.3)
                continue
            has_length = True
        elif name == b"set-cookie" and sets_cookie(value, cookie_name):
            continue  # an upstream must never overwrite the session cookie
        out.append((name, value))
    return out, has_length


def sets_cookie(set_cookie: bytes, name: bytes) -> bool:
    """Whether a ``Set-Cookie`` value would make the browser send ``name=...`` (or its device cookie) back.

    That is the cookie ``name`` itself or its device cookie (``name`` + ``-device``), or a nameless cookie
    (``=v``, or ``v`` with no ``=`` at all) whose value starts with ``name``: browsers send a nameless cookie as
    its bare value, so ``=__Host-frontdesk=x`` comes back as ``__Host-frontdesk=x`` without any of the
    ``__Host-`` prefix's guarantees. The prefix is compared without regard to case, as browsers do.
    """
    pair = set_cookie.split(b";", 1)[0]
    cookie, eq, value = pair.partition(b"=")
    cookie = cookie.strip()
    if eq and cookie:
        return cookie in (name, name + _DEVICE_SUFFIX)
    return (value if eq else pair).strip().lower().startswith(name.lower())


def replace_cookie(cookie: str | None, set_cookie: str, name: str) -> str:
    """The Cookie header the browser will send once it has applied ``set_cookie`` (a rotated refresh cookie).

    Used for the one forced re-mint after an upstream 401, so the engine sees the cookie it just issued
    rather than the one it rotated away a moment ago.
    """
    pair = set_cookie.split(";", 1)[0].strip()
    if pair.partition("=")[0].strip() != name:
        return cookie or ""
    others = strip_cookie_header(cookie or "", name)
    return f"{others}; {pair}" if others else pair
