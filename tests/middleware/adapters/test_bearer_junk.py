"""Whatever arrives in the Authorization header, bearer mode answers with a FrontdeskError (401), never a crash."""

from __future__ import annotations

import base64
import json

import pytest
from mw_world import Keys

from frontdesk.middleware.bearer import BearerAuth, bearer_error_response
from frontdesk.middleware.errors import FrontdeskError


def seg(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


JUNK = [
    "Bearer",
    "Bearer ",
    "Bearer a.b.c",
    "Bearer ..",
    "Bearer ...",
    "Bearer " + "." * 5000,
    "Bearer \u00ff\u00fe.\u0000.x",
    "Bearer " + seg([1, 2]) + "." + seg({}) + ".x",
    "Bearer " + seg({"alg": "RS256", "typ": "at+jwt", "kid": ["list"]}) + "." + seg({}) + ".x",
    "Bearer " + seg({"alg": "RS256", "typ": 7, "kid": "k"}) + "." + seg({}) + ".x",
    "Bearer " + seg({"alg": "RS256", "typ": "at+jwt", "kid": "k"}) + "." + seg(b"not json") + ".x",
    "Bearer " + seg({"alg": "RS256", "typ": "at+jwt", "kid": "k"}) + "." + seg([]) + ".x",
    "Bearer " + seg({"alg": "RS256", "typ": "at+jwt", "kid": "k", "crit": ["exp"]}) + "." + seg({}) + ".x",
    "Bearer " + seg(b"\xff\xfe") + "." + seg({}) + ".x",
    "bearer    a    ",
    "Bearer a,Bearer b",
    "Token abc",
    "B" * 100_000,
]


@pytest.mark.parametrize("header", JUNK)
async def test_junk_is_a_clean_401(keys: Keys, header: str) -> None:
    auth = BearerAuth(keyring=keys.verifying_ring())
    with pytest.raises(FrontdeskError) as caught:
        await auth.authenticate("/x", header)
    response = bearer_error_response(caught.value)
    assert response.status == 401
    assert set(json.loads(response.body)) == {"error", "detail"}
