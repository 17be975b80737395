"""One table of token cases, run against every adapter: ASGI bearer, ASGI session, WSGI bearer, WSGI session.

Bearer adapters get each case as ``Authorization: Bearer``; session adapters as the refresh cookie (the token
a session-mode app actually receives). The forged tokens are the same attacks for both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from mw_support import forge, public_pem, unsigned
from mw_world import (
    COOKIE,
    ISSUER,
    REFRESH_SECRET,
    Adapter,
    Keys,
    access_claims,
    sign_access,
)

from frontdesk.middleware.keys import signing_key_from_private
from frontdesk.middleware.tokens import SigningKey


@dataclass
class Ctx:
    """Valid material of the adapter's own kind, and the means to re-sign it with one thing wrong."""

    adapter: Adapter
    keys: Keys
    token: str  # a valid token (bearer: access token; session: refresh cookie of a live session)
    claims: dict[str, Any]
    header: dict[str, Any]

    @property
    def is_session(self) -> bool:
        return self.adapter.is_session

    def resign(self, claims: dict[str, Any] | None = None, **header: Any) -> str:
        """The same token kind, signed with the legitimate key, with changed claims and/or header fields."""
        merged = {k: v for k, v in {**self.header, **header}.items() if v is not None}  # None: leave it out
        payload = {**self.claims, **(claims or {})}
        if self.is_session:
            return jwt.encode(payload, REFRESH_SECRET, algorithm="HS256", headers=merged)
        return jwt.encode(payload, self.keys.access.sign_key, algorithm="RS256", headers=merged)

    def other_kind(self) -> str:
        """Bearer: a refresh token; session: an access token."""
        if self.is_session:
            return sign_access(self.keys, access_claims(sub=self.claims["sub"], sid=self.claims["sid"]))
        refresh = SigningKey.from_secret(REFRESH_SECRET)
        claims = {**self.claims, "aud": ISSUER}
        return jwt.encode(claims, REFRESH_SECRET, algorithm="HS256", headers={"typ": "rt+jwt", "kid": refresh.kid})

    def attacker_signed(self, **header: Any) -> str:
        key = signing_key_from_private(self.keys.attacker)
        merged = {**self.header, "kid": key.kid, **header}
        return jwt.encode(self.claims, self.keys.attacker, algorithm="RS256", headers=merged)

    def revoked(self) -> str:
        if self.is_session:
            token = self.adapter.login()
            with self.adapter.client() as client:
                response = client.post("/auth/logout", headers={"x-csrf": "1", **self.adapter.present(token)})
            assert response.status_code == 204
            return token
        claims = access_claims()
        _run(self.adapter.store.revoke_session(claims["sid"], now=time.time(), reason="test"))
        return sign_access(self.keys, claims)


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def make_ctx(adapter: Adapter, keys: Keys) -> Ctx:
    if adapter.is_session:
        token = adapter.login()
        claims = jwt.decode(token, REFRESH_SECRET, algorithms=["HS256"], audience=ISSUER)
    else:
        claims = access_claims()
        token = sign_access(keys, claims)
    header = jwt.get_unverified_header(token)
    return Ctx(adapter, keys, token, claims, {k: v for k, v in header.items() if k not in ("alg",)})


Present = dict[str, str]
Case = Callable[[Ctx], Present]
now = int(time.time())


def token_case(build: Callable[[Ctx], str]) -> Case:
    return lambda ctx: ctx.adapter.present(build(ctx))


def jwk_of(ctx: Ctx) -> dict[str, Any]:
    from frontdesk.middleware.keys import public_jwk

    return public_jwk(signing_key_from_private(ctx.keys.attacker))


def confusion(ctx: Ctx, key: Any, kid: str) -> str:
    """HS256 keyed with the PEM of a public key we trust for RS/ES: the classic algorithm-confusion forgery."""
    return forge({**ctx.header, "alg": "HS256", "kid": kid}, ctx.claims, public_pem(key))


def malformed_bearer_alone(ctx: Ctx) -> Present:
    if ctx.is_session:
        return {"cookie": COOKIE, "x-csrf": "1"}  # the cookie name with no value
    return {"authorization": "Bearer"}


def malformed_two_tokens(ctx: Ctx) -> Present:
    if ctx.is_session:
        other = ctx.resign({"jti": "another"})
        return {"cookie": f"{COOKIE}={ctx.token}; {COOKIE}={other}", "x-csrf": "1"}
    return {"authorization": f"Bearer {ctx.token} {ctx.token}"}


def malformed_garbage(ctx: Ctx) -> Present:
    garbage = "A" * (1024 * 1024)
    if ctx.is_session:
        return {"cookie": f"{COOKIE}={garbage}", "x-csrf": "1"}
    return {"authorization": f"Bearer {garbage}"}


CASES: dict[str, Case] = {
    "expired": token_case(lambda c: c.resign({"iat": now - 7200, "exp": now - 3600})),
    "not yet valid (nbf)": token_case(lambda c: c.resign({"nbf": now + 3600})),
    "issued in the future": token_case(lambda c: c.resign({"iat": now + 3600})),
    "wrong issuer": token_case(lambda c: c.resign({"iss": "https://evil.example"})),
    "wrong audience": token_case(lambda c: c.resign({"aud": "some-other-api"})),
    "other token type (refresh as access / access as refresh)": token_case(lambda c: c.other_kind()),
    "typ of the other kind, right key": token_case(lambda c: c.resign(typ="at+jwt" if c.is_session else "rt+jwt")),
    "no typ": token_case(lambda c: c.resign(typ=None)),
    "alg none": token_case(lambda c: unsigned(c.header, c.claims)),
    "HS256 keyed with the RSA public key": token_case(lambda c: confusion(c, c.keys.rsa_key, c.keys.access.kid)),
    "HS256 keyed with the EC public key": token_case(lambda c: confusion(c, c.keys.ec_key, c.keys.ec_access.kid)),
    "embedded jwk (attacker key, own kid)": token_case(lambda c: c.attacker_signed(jwk=jwk_of(c))),
    "embedded jwk (attacker key, trusted kid)": token_case(
        lambda c: c.attacker_signed(jwk=jwk_of(c), kid=c.header["kid"])
    ),
    "jku pointing elsewhere": token_case(lambda c: c.attacker_signed(jku="http://127.0.0.1:9/jwks.json")),
    "x5u pointing elsewhere": token_case(lambda c: c.attacker_signed(x5u="http://127.0.0.1:9/cert.pem")),
    "unknown kid": token_case(lambda c: c.resign(kid="no-such-key")),
    "no kid": token_case(lambda c: c.resign(kid=None)),
    "bad signature": token_case(lambda c: c.token[:-4] + ("AAAA" if not c.token.endswith("AAAA") else "BBBB")),
    "revoked session": token_case(lambda c: c.revoked()),
    "malformed: Bearer alone": malformed_bearer_alone,
    "malformed: two tokens": malformed_two_tokens,
    "malformed: 1 MB of garbage": malformed_garbage,
    "missing": lambda c: {"x-csrf": "1"} if c.is_session else {},
    "another scheme": lambda c: {"x-csrf": "1"} if c.is_session else {"authorization": "Basic dXNlcjpwYXNz"},
}


def test_valid_token_reaches_the_app_with_the_user(adapter: Adapter, keys: Keys) -> None:
    ctx = make_ctx(adapter, keys)
    with adapter.client() as client:
        response = client.get("/whoami", headers=adapter.present(ctx.token))
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["authenticated"] is True
    assert seen["id"] == ctx.claims["sub"]
    assert seen["sub"] == ctx.claims["sub"]
    assert seen["username"] == ctx.claims["sub"].removeprefix("id-")
    if adapter.is_session:
        assert seen["cookie"] == "theme=dark"  # the refresh cookie is not the app's business


@pytest.mark.parametrize("case", list(CASES))
def test_bad_token_is_refused_with_json(adapter: Adapter, keys: Keys, case: str) -> None:
    ctx = make_ctx(adapter, keys)
    headers = CASES[case](ctx)
    with adapter.client() as client:
        response = client.get("/whoami", headers=headers)
    assert response.status_code == 401, f"{adapter.name} {case}: {response.status_code} {response.text[:200]}"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert ctx.token not in response.text
    if adapter.is_session:
        return
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="frontdesk"')
    if case != "missing":
        assert 'error="invalid_token"' in challenge
