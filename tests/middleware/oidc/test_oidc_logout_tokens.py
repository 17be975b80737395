"""Back-channel logout tokens with locally generated keys (the real provider's back-channel logout is tested in
tests/gateway/test_oidc_logout.py): every way a logout token can be wrong is refused with the reason."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import BadLogoutToken
from frontdesk.middleware.oidc import IdTokenValidator
from frontdesk.middleware.oidc.logout_tokens import BACKCHANNEL_LOGOUT_EVENT, LogoutRequest, LogoutTokenValidator
from tests.middleware.oidc.test_oidc_id_tokens import (  # noqa: F401 (fixtures)
    CLIENT,
    EC_KEY,
    ISSUER,
    NOW,
    ROTATED_KEY,
    SECRET,
    clock,
    published,
    rs256,
    validator,
)

ALGS = ("RS256", "ES256")


@pytest.fixture
def logout_tokens(validator: IdTokenValidator) -> LogoutTokenValidator:  # noqa: F811
    return LogoutTokenValidator(validator)


def claims(**override: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER, "aud": CLIENT, "iat": NOW - 2, "jti": "jti-1", "sid": "idp-sid-1", "sub": "user-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }  # fmt: skip
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


async def refused(checker: LogoutTokenValidator, token: str, why: str, algs: tuple[str, ...] = ALGS) -> None:
    with pytest.raises(BadLogoutToken) as info:
        await checker.validate(token, algorithms=algs)
    assert why in info.value.detail
    assert info.value.status == 400


async def test_a_good_logout_token_names_the_session_and_the_user(logout_tokens: LogoutTokenValidator) -> None:
    assert await logout_tokens.validate(rs256(claims()), algorithms=ALGS) == LogoutRequest(
        jti="jti-1", iat=NOW - 2, sid="idp-sid-1", sub="user-1"
    )
    only_sub = jwt.encode(claims(sid=None), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    assert (await logout_tokens.validate(only_sub, algorithms=ALGS)).sid is None
    assert (await logout_tokens.validate(rs256(claims(sub=None, aud=[CLIENT, "x"])), algorithms=ALGS)).sub is None


async def test_a_nonce_is_refused_so_an_id_token_never_passes(logout_tokens: LogoutTokenValidator) -> None:
    await refused(logout_tokens, rs256(claims(nonce="n-1")), "must not have a nonce")


async def test_the_backchannel_event_is_required(logout_tokens: LogoutTokenValidator) -> None:
    await refused(logout_tokens, rs256(claims(events=None)), "events lack")
    await refused(logout_tokens, rs256(claims(events={"http://example.com/other": {}})), "events lack")
    await refused(logout_tokens, rs256(claims(events={BACKCHANNEL_LOGOUT_EVENT: "yes"})), "events lack")
    await refused(logout_tokens, rs256(claims(events=[BACKCHANNEL_LOGOUT_EVENT])), "events lack")


async def test_wrong_issuer_or_audience_is_refused(logout_tokens: LogoutTokenValidator) -> None:
    await refused(logout_tokens, rs256(claims(iss="https://evil.example.com")), "another issuer")
    await refused(logout_tokens, rs256(claims(aud="someone-else")), "not meant for this client")
    await refused(logout_tokens, rs256(claims(aud=None)), "not meant for this client")


async def test_alg_none_and_hmac_are_refused(logout_tokens: LogoutTokenValidator) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    await refused(logout_tokens, unsigned, "'none' is not accepted", algs=("RS256", "none"))
    forged = jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "rsa-1"})
    await refused(logout_tokens, forged, "'HS256' is not accepted", algs=("RS256", "HS256"))


async def test_a_key_the_provider_does_not_publish_is_refused(logout_tokens: LogoutTokenValidator) -> None:
    await refused(logout_tokens, rs256(claims(), kid="rsa-2", key=ROTATED_KEY), "does not publish")
    await refused(logout_tokens, rs256(claims(), key=ROTATED_KEY), "signature does not verify")
    await refused(logout_tokens, "not.a.jwt", "not a signed JWT")
    await refused(logout_tokens, "", "no usable logout_token")


async def test_sid_or_sub_and_jti_are_required(logout_tokens: LogoutTokenValidator) -> None:
    await refused(logout_tokens, rs256(claims(sid=None, sub=None)), "neither a sid nor a sub")
    await refused(logout_tokens, rs256(claims(sid=42)), "sid is not a usable identifier")
    await refused(logout_tokens, rs256(claims(jti=None)), "no usable jti")


async def test_iat_must_be_recent_and_exp_not_passed(logout_tokens: LogoutTokenValidator, clock: ManualClock) -> None:  # noqa: F811
    await refused(logout_tokens, rs256(claims(iat=None)), "iat (and exp) must be numbers")
    await refused(logout_tokens, rs256(claims(iat=NOW + 600)), "in the future")
    await refused(logout_tokens, rs256(claims(iat=NOW - 600)), "too long ago")
    await refused(logout_tokens, rs256(claims(exp=NOW - 600)), "has expired")
    token = rs256(claims())
    clock.advance(logout_tokens.replay_window)  # past the jti memory: refused as too old, not accepted again
    await refused(logout_tokens, token, "too long ago")
