"""50 concurrent requests of one session at access-token expiry: all succeed, one mint, one rotation.

Over HTTP against a real server the rotation is observed from outside (every new cookie carries the same
jti; the ``sessions`` row shows exactly one rotation). The mint count is not visible over HTTP (no body
carries a token), so the same burst also runs in-process against the real app on a real SQLite file, with
a manual clock, where the engine's counters can be read.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from live_gateway import GatewayProcess, in_process_gateway, jwt_claims, set_cookies

BURST = 50
ACCESS_TTL = 2.0


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    return gateway_factory(
        "burst",
        users={"dana": "dana-password-1"},
        tokens={"access_ttl": f"{ACCESS_TTL:g}s", "refresh_margin": "1s", "rotation_grace": "30s"},
    )


async def test_burst_at_access_token_expiry_rotates_once(gw: GatewayProcess) -> None:
    async with gw.async_client(max_connections=BURST) as client:
        login = await client.login("dana", "dana-password-1")
        assert login.status_code == 200
        logged_in = time.time()
        first = client.claims()
        token = client.cookie
        # The access token minted at login lives at most ACCESS_TTL: wait until it is certainly stale.
        await asyncio.sleep(max(0.0, logged_in + ACCESS_TTL + 0.3 - time.time()))

        responses = await asyncio.gather(
            *(client.request("GET", "/auth/session", cookie=token, follow=False) for _ in range(BURST))
        )

    assert [r.status_code for r in responses] == [200] * BURST, [r.text for r in responses if r.status_code != 200]
    new_cookies = [c for r in responses for c in set_cookies(r)]
    assert new_cookies, "the burst at expiry must rotate the refresh token"
    jtis = {c.claims()["jti"] for c in new_cookies}
    sids = {c.claims()["sid"] for c in new_cookies}
    assert len(jtis) == 1, f"{len(jtis)} different refresh tokens handed out: more than one rotation"
    assert sids == {first["sid"]}
    (new_jti,) = jtis
    assert new_jti != first["jti"]
    # The row: exactly one rotation, from the login token to the one every response carries.
    row = gw.session_row(first["sid"])
    assert row is not None and row["revoked_at"] is None
    assert (row["previous_jti"], row["current_jti"]) == (first["jti"], new_jti)
    # And the new cookie works.
    async with gw.async_client() as client:
        assert (await client.request("GET", "/auth/session", cookie=new_cookies[0].value)).status_code == 200


async def test_burst_at_expiry_mints_once_in_process(tmp_path: Path) -> None:
    """The real app (engine, SqliteStore on a file) with a manual clock: one mint, one rotation."""
    tokens = {"access_ttl": "2s", "refresh_margin": "1s", "rotation_grace": "30s"}
    async with in_process_gateway(tmp_path, users={"erin": "erin-password-1"}, tokens=tokens) as gw:
        async with gw.client() as client:
            assert (await client.login("erin", "erin-password-1")).status_code == 200
            token = client.cookie
            stats = gw.app.engine.stats
            before = dict(stats)
            gw.clock.advance(2.5)  # past the access token's expiry, well inside every other lifetime

            responses = await asyncio.gather(
                *(client.request("GET", "/auth/session", cookie=token, follow=False) for _ in range(BURST))
            )
        assert [r.status_code for r in responses] == [200] * BURST
        assert stats["mints"] - before["mints"] == 1
        assert stats["rotations"] - before["rotations"] == 1
        assert stats["reuse_detected"] == 0
        jtis = {jwt_claims(c.value)["jti"] for r in responses for c in set_cookies(r)}
        assert len(jtis) == 1 and jwt_claims(token or "")["jti"] not in jtis
