"""The identity provider's tokens kept with the session, against a real OpenID Provider (npm oidc-provider) and a
real ``frontdesk serve --workers 2``: ``token = "idp"`` routes get the provider's access token, refreshed once per
session across both workers under 20 concurrent requests; ``invalid_grant`` ends the session; ``/auth/session``
shows the allowed claims; logout revokes the refresh token and hands back the RP-initiated logout URL; the
provider's back-channel logout ends the session on both workers."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from live_gateway import AuthClient, GatewayProcess, write_config
from oidc_flow import finish_login, provider_table, start_login

from frontdesk.middleware.idp_tokens import IdpTokens, TokenSealer
from tests.support import wait_until
from tests.support.live_server import serve_in_thread
from tests.support.oidc_provider import (
    TEST_TOKEN_KEY,
    OidcClient,
    OidcProvider,
    loopback_uris,
    provider_login,
    running_provider,
    sign_out_at_provider,
)

pytestmark = pytest.mark.slow

IDP_ACCESS_TTL = 8  # seconds: the provider's access tokens; refreshed when less than a quarter is left
BURST = 20
LOGOUT_DEADLINE = 10.0  # generous for a loaded machine; the measured time is printed (the design bound is 1 s)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def echo_upstream(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Answers every request with a digest of the Bearer token it received (never the token: the live gateway
    harness checks that no answer carries one) and, for a JWT, its unverified issuer and session."""
    if scope["type"] != "http":
        return
    auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    answer = {"bearer_sha256": digest(token) if token else None, "iss": claims.get("iss"), "sid": claims.get("sid")}
    body = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@dataclass
class World:
    gw: GatewayProcess
    provider: OidcProvider


@pytest.fixture(scope="module")
def world(gateway_factory: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # The provider must know the gateway's back-channel URL and the gateway the provider's issuer: make the
    # gateway (its port) first, start the provider, then write the gateway's config and start it.
    gw = gateway_factory("idp-tokens", workers=2, start=False)
    client = OidcClient(
        client_id="frontdesk",
        redirect_uris=loopback_uris("/auth/oidc/corp/callback"),
        post_logout_redirect_uris=loopback_uris("/"),
        backchannel_logout_uri=f"{gw.url}/auth/oidc/corp/backchannel",
    )
    workdir = tmp_path_factory.mktemp("idp-provider")
    with serve_in_thread(echo_upstream) as upstream, running_provider(
        workdir, clients=[client], ttl={"AccessToken": IDP_ACCESS_TTL}
    ) as provider:
        write_config(
            gw.config_path,
            oidc=[provider_table(provider, "corp", "frontdesk", session_claims=["email", "groups"])],
            routes=[
                {"prefix": "/idp-api/", "upstream": f"{upstream}/", "token": "idp"},
                {"prefix": "/api/", "upstream": f"{upstream}/"},
            ],
        )
        gw.env.update(provider.secret_env("corp"))
        gw.start()
        yield World(gw, provider)


def sign_in(gw: GatewayProcess, client: AuthClient, login: str, browser: httpx.Client) -> None:
    started = start_login(client, "corp", "/")
    back = provider_login(started.authorize_url, login, browser=browser)
    done = finish_login(client, back, started.state_cookie.value)
    assert done.status_code == 302, done.text


def sealed_tokens(gw: GatewayProcess, sid: str) -> IdpTokens | None:
    """What the store holds for ``sid``, opened with the test key (as a worker would)."""
    db = sqlite3.connect(gw.db_path, timeout=10)
    try:
        row = db.execute("SELECT sealed FROM idp_tokens WHERE sid = ?", (sid,)).fetchone()
    finally:
        db.close()
    return None if row is None else TokenSealer([TEST_TOKEN_KEY]).open(row[0], sid=sid)


def bearer(response: httpx.Response) -> str:
    """The digest of the Bearer token the upstream received."""
    assert response.status_code == 200, response.text
    sent = response.json()["bearer_sha256"]
    assert sent, "the upstream received no Bearer token"
    return str(sent)


def refreshes(provider: OidcProvider) -> int:
    return int(provider.counts()["grants"].get("refresh_token", 0))


def test_the_tokens_are_sealed_and_session_shows_only_allowed_claims(world: World) -> None:
    gw = world.gw
    with gw.client() as client, httpx.Client(timeout=30) as browser:
        sign_in(gw, client, "alice", browser)
        body = client.session().json()
        assert body["claims"] == {"email": "alice@example.com", "groups": ["staff"]}
        assert "token" not in json.dumps(body).lower().replace("_token", "")  # no token of any kind
        sid = client.claims()["sid"]
        db = sqlite3.connect(gw.db_path, timeout=10)
        (provider, subject, idp_sid, sealed) = db.execute(
            "SELECT provider, subject, idp_sid, sealed FROM idp_tokens WHERE sid = ?", (sid,)
        ).fetchone()
        db.close()
        tokens = sealed_tokens(gw, sid)
        assert tokens is not None and (provider, subject, idp_sid) == ("corp", "alice", tokens.idp_sid)
        assert tokens.access_token not in sealed and tokens.refresh_token and tokens.refresh_token not in sealed
        # The upstream of a token = "idp" route gets the provider's token; the other route frontdesk's own.
        assert bearer(client.request("GET", "/idp-api/me")) == digest(tokens.access_token)
        own = client.request("GET", "/api/me")
        assert bearer(own) != digest(tokens.access_token)
        assert (own.json()["iss"], own.json()["sid"]) == ("frontdesk", sid)


def test_one_refresh_at_the_provider_for_a_burst_across_both_workers(world: World) -> None:
    gw, provider = world.gw, world.provider
    with gw.client() as client, httpx.Client(timeout=30) as browser:
        sign_in(gw, client, "alice", browser)
        cookie, sid = client.cookie, client.claims()["sid"]
    before = sealed_tokens(gw, sid)
    assert before is not None
    # Let the provider's access token come due; then connections to both workers, half the burst each (opened
    # after the wait: uvicorn closes keep-alive connections idle for 5 s).
    due = before.expires_at - before.lifetime / 4 + 0.2
    wait_until(lambda: time.time() > due, timeout=IDP_ACCESS_TTL + 5, interval=0.05, what="the IdP token due")
    clients = gw.clients_per_worker(BURST // 2, timeout=90)
    everyone = [c for cs in clients.values() for c in cs]
    try:
        counted = refreshes(provider)
        barrier = threading.Barrier(len(everyone))

        def one(c: AuthClient) -> httpx.Response:
            barrier.wait(timeout=60)
            return c.request("GET", "/idp-api/orders", cookie=cookie, follow=False)

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(everyone)) as pool:
            results = list(pool.map(one, everyone))
        elapsed = time.perf_counter() - started
        assert [r.status_code for r in results] == [200] * BURST, [r.text for r in results if r.status_code != 200]
        assert {gw.worker_of(r) for r in results} == set(clients), "both workers must serve part of the burst"
        assert refreshes(provider) - counted == 1, "exactly one refresh at the provider for the whole burst"
        after = sealed_tokens(gw, sid)
        assert after is not None and after.access_token != before.access_token
        assert {bearer(r) for r in results} == {digest(after.access_token)}, "everyone got the one new token"
        assert after.refresh_token != before.refresh_token  # the provider rotated it; the new one is kept
        print(f"burst of {BURST} across the refresh: {elapsed * 1000:.0f} ms")
    finally:
        for c in everyone:
            c.close()


def test_invalid_grant_ends_the_session(world: World) -> None:
    gw, provider = world.gw, world.provider
    meta = provider.metadata()
    with gw.client() as client, httpx.Client(timeout=30) as browser:
        sign_in(gw, client, "bob", browser)
        sid = client.claims()["sid"]
        tokens = sealed_tokens(gw, sid)
        assert tokens is not None and tokens.refresh_token is not None
        # The grant ends at the provider (an admin revoked it): the next refresh answers invalid_grant.
        secret = provider.client("frontdesk").client_secret
        revoked = httpx.post(
            meta["revocation_endpoint"], data={"token": tokens.refresh_token}, auth=("frontdesk", secret), timeout=10
        )
        assert revoked.status_code == 200
        due = tokens.expires_at - tokens.lifetime / 4 + 0.2
        wait_until(lambda: time.time() > due, timeout=IDP_ACCESS_TTL + 5, interval=0.05, what="the IdP token due")
        ended = client.request("GET", "/idp-api/orders", follow=False)
        assert ended.status_code == 401 and ended.json()["error"] == "session_revoked", ended.text
        assert client.session(follow=False).status_code == 401  # the frontdesk session is over, not just the route
        assert sealed_tokens(gw, sid) is None  # and its IdP tokens are gone with it


def test_logout_revokes_the_refresh_token_and_round_trips_through_the_provider(world: World) -> None:
    gw, provider = world.gw, world.provider
    meta = provider.metadata()
    with gw.client() as client, httpx.Client(timeout=30) as browser:
        sign_in(gw, client, "alice", browser)
        tokens = sealed_tokens(gw, client.claims()["sid"])
        assert tokens is not None and tokens.refresh_token is not None
        out = client.logout()  # the harness checks: no token in the answer (the ID token included)
        assert out.status_code == 200, out.text
        assert out.headers["clear-site-data"] == '"cookies"'
        link = out.json()["logout_url"]
        assert link.startswith("/auth/oidc/corp/end-session?ticket=")
        # The browser navigates there (top level): the gateway redirects it to the provider with the hint.
        hop = httpx.get(f"{gw.url}{link}", timeout=10)
        assert hop.status_code == 302 and hop.headers["x-content-type-options"] == "nosniff"
        url = hop.headers["location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert url.startswith(meta["end_session_endpoint"] + "?")
        assert query["id_token_hint"] == tokens.id_token and query["client_id"] == "frontdesk"
        assert query["post_logout_redirect_uri"] == f"{gw.url}/" and len(query["state"]) >= 16
        tampered = httpx.get(f"{gw.url}{link[:-4]}AAAA", timeout=10)
        assert tampered.status_code == 400 and tampered.json()["error"] == "bad_request"
        # The refresh token no longer works at the provider.
        secret = provider.client("frontdesk").client_secret
        refused = httpx.post(
            meta["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
            auth=("frontdesk", secret),
            timeout=10,
        )
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        # The browser follows the URL: the provider signs the user out and sends it back with the state.
        back = sign_out_at_provider(browser, url)
        assert back.is_redirect, back.text
        location = back.headers["location"]
        assert location.startswith(f"{gw.url}/") and parse_qs(urlsplit(location).query)["state"] == [query["state"]]


def test_a_bad_logout_token_is_refused_with_400_json(world: World) -> None:
    gw = world.gw
    forged = jwt.encode({"iss": world.provider.issuer, "aud": "frontdesk", "sub": "alice"}, None, algorithm="none")
    with gw.client() as client:
        for data in ({"logout_token": forged}, {"logout_token": "x"}, {}):
            r = client.request("POST", "/auth/oidc/corp/backchannel", csrf=False, data=data, follow=False)
            assert r.status_code == 400 and r.json()["error"] == "invalid_logout_token", r.text
            assert r.headers["x-content-type-options"] == "nosniff"
        assert client.request("GET", "/auth/oidc/corp/backchannel", csrf=False).status_code == 405


def test_backchannel_logout_from_the_provider_ends_the_session_on_both_workers(world: World) -> None:
    gw, provider = world.gw, world.provider
    clients = gw.clients_per_worker(1, timeout=90)
    (pid_a, (a,)), (pid_b, (b,)) = sorted(clients.items())
    try:
        with httpx.Client(timeout=30) as browser:
            sign_in(gw, a, "alice", browser)
            token = a.cookie
            b.cookie = token
            for c, pid in ((a, pid_a), (b, pid_b)):  # both workers honour (and cache) the session
                r = c.request("GET", "/auth/session", cookie=token)
                assert r.status_code == 200 and gw.worker_of(r) == pid, r.text
            token = b.cookie  # one browser, one cookie (a rotation may have happened)
            sent = provider.counts()["backchannel_logout"]
            # The user signs out at the provider (its own end-session page): it calls the back-channel URL.
            end_session = f"{provider.metadata()['end_session_endpoint']}?client_id=frontdesk"
            sign_out_at_provider(browser, end_session)
            started = time.monotonic()
            assert provider.counts()["backchannel_logout"] == sent + 1
        for c, pid in ((a, pid_a), (b, pid_b)):

            def refused(c: AuthClient = c, pid: int = pid) -> httpx.Response | None:
                r = c.request("GET", "/auth/session", cookie=token, follow=False)
                assert gw.worker_of(r) == pid and r.status_code in (200, 401), r.text
                return r if r.status_code == 401 else None

            r = wait_until(refused, timeout=LOGOUT_DEADLINE, interval=0.02, what=f"worker {pid} to end the session")
            assert r.json()["error"] == "session_revoked"
        print(f"back-channel logout honoured by both workers {time.monotonic() - started:.3f} s after the provider")
        assert provider.counts()["backchannel_logout_errors"] == 0
    finally:
        a.close()
        b.close()



def introspect(provider: OidcProvider, token: str) -> bool:
    """Whether the provider still honours ``token`` (RFC 7662; asking does not use the token up)."""
    secret = provider.client("frontdesk").client_secret
    endpoint = provider.metadata()["introspection_endpoint"]
    answer = httpx.post(endpoint, data={"token": token}, auth=("frontdesk", secret), timeout=10)
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["active"])


def test_logout_everywhere_revokes_the_refresh_token_of_every_session_at_the_provider(world: World) -> None:
    """Three devices signed in at the provider (three grants); "logout everywhere" from one of them ends all
    three here and revokes all three refresh tokens there, not only the current one's."""
    gw, provider = world.gw, world.provider
    devices = [gw.client() for _ in range(3)]
    try:
        refresh_tokens = []
        for device in devices:
            with httpx.Client(timeout=30) as browser:  # each device its own provider session and grant
                sign_in(gw, device, "bob", browser)
            tokens = sealed_tokens(gw, device.claims()["sid"])
            assert tokens is not None and tokens.refresh_token is not None
            assert introspect(provider, tokens.refresh_token)
            refresh_tokens.append(tokens.refresh_token)
        out = devices[0].logout(json={"everywhere": True})
        assert out.status_code == 200, out.text  # with the RP-initiated logout link of the current session
        for device in devices:  # on both workers within the usual revocation delay
            ended = wait_until(
                lambda d=device: d.session(follow=False).status_code == 401,
                timeout=LOGOUT_DEADLINE, interval=0.05, what="every device signed out",
            )  # fmt: skip
            assert ended
        # Best effort in the background (the answer does not wait on the provider), done within seconds.
        wait_until(
            lambda: not any(introspect(provider, token) for token in refresh_tokens),
            timeout=LOGOUT_DEADLINE,
            interval=0.1,
            what="every device's refresh token revoked at the provider",
        )
    finally:
        for device in devices:
            device.close()
