"""IdP tokens sealed for the store: AES-GCM under keys from the environment, bound to their session."""

from __future__ import annotations

import pytest

from frontdesk.middleware.idp_tokens import IdpTokens, TokenSealer, UnsealableTokens

OLD, NEW = "o" * 40, "n" * 40
TOKENS = IdpTokens(
    access_token="at-secret", expires_at=1_800_000_060.0, refresh_token="rt-secret", id_token="id.t.k",
    subject="sub-1", idp_sid="idp-1",
)  # fmt: skip


def test_sealed_tokens_open_again_and_show_nothing_in_clear() -> None:
    sealer = TokenSealer([NEW])
    blob = sealer.seal(TOKENS, sid="s1")
    assert sealer.open(blob, sid="s1") == TOKENS
    assert not any(secret in blob for secret in ("at-secret", "rt-secret", "id.t.k", "sub-1"))
    assert sealer.seal(TOKENS, sid="s1") != blob  # a fresh nonce every time


def test_seal_with_the_newest_key_open_with_any() -> None:
    old_blob = TokenSealer([OLD]).seal(TOKENS, sid="s1")
    both = TokenSealer([OLD, NEW])  # itsdangerous order: the newest last
    assert both.open(old_blob, sid="s1") == TOKENS
    new_blob = both.seal(TOKENS, sid="s1")
    assert TokenSealer([NEW]).open(new_blob, sid="s1") == TOKENS
    with pytest.raises(UnsealableTokens):
        TokenSealer([OLD]).open(new_blob, sid="s1")
    with pytest.raises(UnsealableTokens):
        TokenSealer([NEW]).open(old_blob, sid="s1")  # the old key dropped too early


def test_a_blob_opens_only_for_its_own_session_and_unaltered() -> None:
    sealer = TokenSealer([NEW])
    blob = sealer.seal(TOKENS, sid="s1")
    with pytest.raises(UnsealableTokens):
        sealer.open(blob, sid="s2")  # copied onto another session's row
    flipped = blob[:-3] + ("A" if blob[-3] != "A" else "B") + blob[-2:]
    for bad in (flipped, "v2." + blob[3:], "v1.!!!", "v1.", ""):
        with pytest.raises(UnsealableTokens):
            sealer.open(bad, sid="s1")


def test_keys_must_be_long_and_present() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenSealer(["short"])
    with pytest.raises(ValueError, match="at least one"):
        TokenSealer([])
