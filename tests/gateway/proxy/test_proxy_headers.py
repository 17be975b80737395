"""Header hygiene as pure functions (the end-to-end versions live in test_proxy_app.py)."""

from __future__ import annotations

import pytest

from frontdesk.gateway.proxy.errors import BadFraming
from frontdesk.gateway.proxy.headers import (
    filter_response_headers,
    render_request_head,
    scan_request_headers,
    strip_cookie,
)


class Trust:
    def __init__(self, *hosts: str) -> None:
        self.hosts = set(hosts)

    def is_trusted(self, host: str | None) -> bool:
        return host in self.hosts


def _head(
    headers: list[tuple[bytes, bytes]],
    peer: str = "10.0.0.9",
    trusted: Trust | None = None,
    public_host: bytes = b"",
    request_id: bytes | None = None,
) -> dict:
    s = scan_request_headers(headers, b"x-csrf")
    raw = render_request_head(
        s,
        b"GET",
        b"/api/x",
        b"up:9000",
        bearer=b"TOKEN",
        cookie_name=b"__Host-frontdesk",
        peer=peer,
        scheme="https",
        trusted=trusted or Trust(),
        public_host=public_host,
        request_id=request_id,
    )
    assert raw.endswith(b"\r\n\r\n")
    lines = raw.split(b"\r\n")
    assert lines[0] == b"GET /api/x HTTP/1.1"
    out: dict[bytes, list[bytes]] = {}
    for line in lines[1:-2]:
        name, _, value = line.partition(b": ")
        out.setdefault(name, []).append(value)
    return out


def test_request_rules() -> None:
    h = _head(
        [
            (b"host", b"gw.example"),
            (b"connection", b"keep-alive, x-secret"),
            (b"x-secret", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"te", b"trailers"),
            (b"upgrade", b"h2c"),
            (b"proxy-authorization", b"Basic x"),
            (b"authorization", b"Bearer forged"),
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"x-forwarded-host", b"evil"),
            (b"x-forwarded-proto", b"gopher"),
            (b"forwarded", b"for=6.6.6.6"),
            (b"x-real-ip", b"6.6.6.6"),
            (b"x-frontdesk-user", b"admin"),
            (b"expect", b"100-continue"),
            (b"cookie", b"a=1; __Host-frontdesk=REFRESH; b=2"),
            (b"accept", b"application/json"),
            (b"x-csrf", b"1"),
        ]
    )
    assert h == {
        b"host": [b"up:9000"],
        b"accept": [b"application/json"],
        b"x-csrf": [b"1"],
        b"cookie": [b"a=1; b=2"],
        b"authorization": [b"Bearer TOKEN"],
        b"x-forwarded-for": [b"10.0.0.9"],
        b"x-forwarded-proto": [b"https"],
    }  # no x-forwarded-host: the client's Host is whatever the client wrote


@pytest.mark.parametrize("peer", ["203.0.113.9", "10.0.0.9"])
def test_the_request_id_upstream_is_the_gateways_never_the_clients(peer: str) -> None:
    forged = [(b"host", b"gw"), (b"x-request-id", b"forged-1"), (b"x-request-id", b"forged-2")]
    # The id the gateway chose (a trusted proxy's, when believed) replaces whatever the request carried...
    assert _head(forged, peer=peer, trusted=Trust("10.0.0.9"), request_id=b"chosen-id")[b"x-request-id"] == [
        b"chosen-id"
    ]
    # ... and with no id to give (a ProxyApp without the gateway's edge layer), none is passed on at all.
    assert b"x-request-id" not in _head(forged, peer=peer, trusted=Trust("10.0.0.9"))


def test_forwarded_chain_from_trusted_peer() -> None:
    headers = [
        (b"host", b"gw"),
        (b"x-forwarded-for", b"1.2.3.4"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"app.example"),
    ]
    h = _head(headers, peer="10.0.0.1", trusted=Trust("10.0.0.1"))
    assert h[b"x-forwarded-for"] == [b"1.2.3.4, 10.0.0.1"]
    assert h[b"x-forwarded-host"] == [b"app.example"]
    h = _head(headers, peer="10.0.0.2", trusted=Trust("10.0.0.1"))
    assert h[b"x-forwarded-for"] == [b"10.0.0.2"]
    assert b"x-forwarded-host" not in h


@pytest.mark.parametrize("host", [b"evil.example", b"a b", b"gw.example:8443"])
def test_x_forwarded_host_never_comes_from_the_clients_host(host: bytes) -> None:
    forged = [(b"host", host), (b"x-forwarded-host", b"evil.example")]
    assert b"x-forwarded-host" not in _head(forged)
    assert _head(forged, public_host=b"app.example.com")[b"x-forwarded-host"] == [b"app.example.com"]
    # A trusted proxy is believed when no public host is configured; a configured one always wins.
    proxied = [(b"host", host), (b"x-forwarded-host", b"app.example.com")]
    assert _head(proxied, peer="10.0.0.1", trusted=Trust("10.0.0.1"))[b"x-forwarded-host"] == [b"app.example.com"]
    pinned = _head(forged, peer="10.0.0.1", trusted=Trust("10.0.0.1"), public_host=b"app.example.com")
    assert pinned[b"x-forwarded-host"] == [b"app.example.com"]


def test_only_frontdesk_cookie_leaves() -> None:
    assert _head([(b"cookie", b"__Host-frontdesk=R")]).get(b"cookie") is None
    assert strip_cookie(b"a=1;__Host-frontdesk=R;b=2", b"__Host-frontdesk") == b"a=1;b=2"
    assert strip_cookie(b"x__Host-frontdesk=1", b"__Host-frontdesk") == b"x__Host-frontdesk=1"
    assert strip_cookie(b"a=1;__Host-frontdesk-device=D;b=2", b"__Host-frontdesk") == b"a=1;b=2"
    assert strip_cookie(b"__Host-frontdesk-other=1", b"__Host-frontdesk") == b"__Host-frontdesk-other=1"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
        [(b"content-length", b"5"), (b"content-length", b"5")],
        [(b"content-length", b"+5")],
        [(b"content-length", b"5, 5")],
        [(b"content-length", b"0x5")],
        [(b"transfer-encoding", b"chunked, identity")],
        [(b"transfer-encoding", b"xchunked")],
        [(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")],
    ],
)
def test_smuggling_shapes(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(BadFraming):
        scan_request_headers(headers, b"x-csrf")


def test_response_rules() -> None:
    out, has_length = filter_response_headers(
        [
            (b"connection", b"close, x-hop"),
            (b"x-hop", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"transfer-encoding", b"chunked"),
            (b"content-length", b"10"),
            (b"date", b"yesterday"),
            (b"server", b"secret/1.0"),
            (b"set-cookie", b"__Host-frontdesk=evil; Path=/"),
            (b"set-cookie", b"theme=dark; Path=/"),
            (b"content-type", b"text/plain"),
        ],
        b"__Host-frontdesk",
    )
    assert out == [(b"set-cookie", b"theme=dark; Path=/"), (b"content-type", b"text/plain")]
    assert has_length is False
    out, has_length = filter_response_headers([(b"content-length", b"3")], b"c")
    assert out == [(b"content-length", b"3")] and has_length


@pytest.mark.parametrize(
    ("headers", "kept", "length"),
    [
        ([(b"content-type", b"a/b"), (b"x-app", b"1")], [(b"content-type", b"a/b"), (b"x-app", b"1")], False),
        (
            [(b"date", b"now"), (b"content-length", b"2"), (b"server", b"up/1"), (b"keep-alive", b"5"), (b"x", b"1")],
            [(b"content-length", b"2"), (b"x", b"1")],
            True,
        ),
        ([(b"proxy-authenticate", b"Basic"), (b"trailer", b"x"), (b"upgrade", b"h2c")], [], False),
        ([], [], False),
    ],
)
def test_an_answer_without_connection_transfer_encoding_or_set_cookie_loses_only_the_dropped_names(
    headers: list[tuple[bytes, bytes]], kept: list[tuple[bytes, bytes]], length: bool
) -> None:
    """The common answer's headers are sorted in C (proxy/headers.py): the same rules as the full walk."""
    out, has_length = filter_response_headers(headers, b"__Host-frontdesk")
    assert out == kept and has_length is length
    assert out is not headers  # a list of its own: the decorations that follow append to it


@pytest.mark.parametrize(
    "set_cookie",
    [
        b"=__Host-frontdesk=evil; Path=/; Secure",  # an empty name: the browser sends "__Host-frontdesk=evil"
        b"__Host-frontdesk; Path=/",  # no "=": the whole pair is the value of a nameless cookie
        b"__Host-frontdesk=evil; Path=/",  # the cookie itself, as before
        b" = __Host-frontdesk=evil",
        b"=__host-FRONTDESK=evil",  # the __Host- prefix is matched without regard to case by browsers
        b"__Host-frontdesk-device=evil; Path=/",  # the login device cookie is ours too
    ],
)
def test_an_upstream_cannot_plant_the_session_cookie_by_any_name(set_cookie: bytes) -> None:
    out, _ = filter_response_headers([(b"set-cookie", set_cookie), (b"set-cookie", b"theme=dark")], b"__Host-frontdesk")
    assert out == [(b"set-cookie", b"theme=dark")]


@pytest.mark.parametrize(
    "set_cookie", [b"=other=1; Path=/", b"flag; Path=/", b"x__Host-frontdesk=1", b"a=__Host-frontdesk"]
)
def test_other_cookies_still_pass(set_cookie: bytes) -> None:
    out, _ = filter_response_headers([(b"set-cookie", set_cookie)], b"__Host-frontdesk")
    assert out == [(b"set-cookie", set_cookie)]


def test_public_host_is_validated() -> None:
    from frontdesk.gateway.proxy.settings import parse_proxy_settings

    for good, norm in (("App.Example.com", "app.example.com"), ("gw:8443", "gw:8443"), ("[::1]:8000", "[::1]:8000")):
        settings, problems = parse_proxy_settings({"public_host": good})
        assert problems == [] and settings.public_host == norm
    for bad in ("https://app.example.com", "a b", "app.example.com/x", "", 7, "evil.example\r\nx-admin: 1"):
        _, problems = parse_proxy_settings({"public_host": bad})
        assert len(problems) == 1 and problems[0].startswith("proxy.public_host:"), (bad, problems)


def _render(headers: list[tuple[bytes, bytes]]) -> bytes:
    s = scan_request_headers(iter(headers), b"x-csrf")  # a one-shot iterator: the headers are walked once
    return render_request_head(
        s,
        b"GET",
        b"/api/x",
        b"up:9000",
        bearer=b"TOKEN",
        cookie_name=b"__Host-frontdesk",
        peer="10.0.0.9",
        scheme="https",
        trusted=Trust(),
        public_host=b"",
    )


def test_the_head_keeps_the_clients_order_and_repeats_in_one_walk() -> None:
    head = _render(
        [
            (b"accept", b"application/json"),
            (b"x-thing", b"1"),
            (b"host", b"gw.example"),
            (b"x-thing", b"2"),
            (b"authorization", b"Bearer forged"),
            (b"cookie", b"a=1; __Host-frontdesk=secret"),
            (b"x-frontdesk-user", b"admin"),
            (b"accept-language", b"fr"),
        ]
    )
    assert head == (
        b"GET /api/x HTTP/1.1\r\nhost: up:9000\r\n"
        b"accept: application/json\r\nx-thing: 1\r\nx-thing: 2\r\naccept-language: fr\r\n"
        b"cookie: a=1\r\nauthorization: Bearer TOKEN\r\n"
        b"x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: https\r\n\r\n"
    )


@pytest.mark.parametrize("connection_first", [True, False], ids=["connection-first", "connection-last"])
def test_a_header_named_in_connection_goes_wherever_it_stands(connection_first: bool) -> None:
    named = [(b"x-hop", b"1"), (b"keep", b"yes"), (b"x-other-hop", b"2"), (b"x-hop", b"3")]
    connection = [(b"connection", b"keep-alive, X-Hop, x-other-hop")]
    head = _render(connection + named if connection_first else named + connection)
    assert b"x-hop" not in head and b"x-other-hop" not in head and b"connection" not in head
    assert b"\r\nkeep: yes\r\n" in head
