"""Asymmetric keys: kid thumbprints, JWKS in and out, the rotating key directory, [keys] config, the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from frontdesk.gateway.cli import main as cli_main
from frontdesk.gateway.config import load_config
from frontdesk.gateway.errors import ConfigError
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.errors import InvalidToken, UnknownKey
from frontdesk.middleware.key_directory import DirectoryKeyRing, KeyDirectory
from frontdesk.middleware.keys import (
    ASYMMETRIC_ALGORITHMS,
    generate_private_key,
    jwks_document,
    keyring_from_jwks,
    public_jwk,
    signing_key_from_private,
    thumbprint,
)
from frontdesk.middleware.tokens import ACCESS_TYP, KeyRing, TokenCodec

SECRETS = {
    "FRONTDESK_ACCESS_SECRET": "a" * 40,
    "FRONTDESK_REFRESH_SECRET": "r" * 40,
}


def test_thumbprint_matches_rfc7638_example() -> None:
    # The RSA key of RFC 7638 section 3.1 and its published thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
        "ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"
        "kEgU8awapJzKnqDKgw"
    )
    rsa_public = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps({"kty": "RSA", "n": n, "e": "AQAB"}))
    assert isinstance(rsa_public, rsa.RSAPublicKey)
    assert thumbprint(rsa_public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", ASYMMETRIC_ALGORITHMS)
def test_sign_publish_and_verify_through_jwks(algorithm: str) -> None:
    clock = ManualClock()
    signer = KeyRing([signing_key_from_private(generate_private_key(algorithm))])
    document = json.loads(json.dumps(jwks_document(signer, clock())))  # as it travels
    assert [k["alg"] for k in document["keys"]] == [algorithm]
    assert "d" not in document["keys"][0]  # never the private part
    verifier = keyring_from_jwks(document)
    mint = TokenCodec(signer, typ=ACCESS_TYP, issuer="i", audience="a", clock=clock)
    check = TokenCodec(verifier, typ=ACCESS_TYP, issuer="i", audience="a", clock=clock)
    now = int(clock())
    token = mint.encode({"sub": "u", "sid": "s", "jti": "j", "iat": now, "exp": now + 60})
    assert check.decode(token)["sub"] == "u"


def test_jwks_entries_that_cannot_be_trusted_are_skipped() -> None:
    good = signing_key_from_private(generate_private_key("ES256"))
    rsa_key = signing_key_from_private(generate_private_key("RS256"))
    document = {
        "keys": [
            public_jwk(good),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"},  # a shared secret must never come from a URL
            {**public_jwk(rsa_key), "alg": "HS256"},  # alg disagrees with the key type
            {**public_jwk(rsa_key), "kid": ""},
            {**public_jwk(rsa_key), "use": "enc"},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},  # not a point on the curve
            {**public_jwk(rsa_key), "kid": "pinned-wrong", "alg": "ES384"},  # an RSA key "for" an EC algorithm
            "not an object",
        ]
    }
    ring = keyring_from_jwks(document)
    assert [k.kid for k in ring.keys] == [good.kid]
    assert all(not k.can_sign for k in ring.keys)
    with pytest.raises(ValueError, match="JWKS"):
        keyring_from_jwks({"nokeys": []})


@pytest.mark.parametrize(("curve", "alg"), [(ec.SECP384R1(), "ES384"), (ec.SECP521R1(), "ES512"), (None, "PS256")])
def test_a_jwks_key_of_the_wider_verification_set_checks_its_own_algorithm_only(curve: object, alg: str) -> None:
    """Someone else's JWKS (a provider's) may hold P-384/P-521 keys and RSA keys used for PS*: they verify,
    each with the algorithms of its type; an RSA key naming no alg takes RS*/PS*, never HS256."""
    clock = ManualClock()
    private = rsa.generate_private_key(65537, 2048) if curve is None else ec.generate_private_key(curve)  # type: ignore[arg-type]
    entry = json.loads(
        (jwt.algorithms.RSAAlgorithm if curve is None else jwt.algorithms.ECAlgorithm).to_jwk(private.public_key())
    )
    ring = keyring_from_jwks({"keys": [{**entry, "kid": "theirs"}]})
    check = TokenCodec(ring, typ=ACCESS_TYP, issuer="i", audience="a", clock=clock)
    now = int(clock())
    claims = {"sub": "u", "sid": "s", "jti": "j", "iat": now, "exp": now + 60, "iss": "i", "aud": "a"}
    token = jwt.encode(claims, private, algorithm=alg, headers={"kid": "theirs", "typ": ACCESS_TYP})
    assert check.decode(token)["sub"] == "u"
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "kid": "theirs", "typ": ACCESS_TYP}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    forged = f"{signing_input}.{_b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"
    with pytest.raises(InvalidToken):
        check.decode(forged)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_key_directory_rotation_signs_with_newest_and_retires_after_the_overlap(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "keys", overlap=3600)
    t0 = 1_800_000_000
    first = directory.rotate("EdDSA", now=t0).added
    second = directory.rotate("EdDSA", now=t0 + 100).added
    assert oct(first.path.stat().st_mode & 0o777) == "0o600"
    ring = directory.keyring(t0 + 200)
    assert ring.signing_key().kid == second.kid
    assert ring.lookup(first.kid, t0 + 200).can_sign is False  # still verifies inside the overlap
    assert ring.lookup(first.kid, t0 + 100 + 3600).kid == first.kid
    later = directory.keyring(t0 + 100 + 3601)
    with pytest.raises(UnknownKey):
        later.lookup(first.kid, t0 + 100 + 3601)
    with pytest.raises(InvalidToken, match="retired"):
        ring.lookup(first.kid, t0 + 100 + 3601)  # a ring loaded earlier stops trusting it too
    third = directory.rotate("ES256", now=t0 + 100 + 3601)
    assert third.retired == [first.path]
    assert [f.kid for f in directory.files()] == [third.added.kid, second.kid]


def test_rotations_within_one_second_stay_ordered(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path, overlap=60)
    kids = [directory.rotate("EdDSA", now=1_800_000_000).added.kid for _ in range(3)]
    assert directory.keyring(1_800_000_000).signing_key().kid == kids[-1]


def test_key_directory_refuses_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "mykey.pem").write_text("hello")
    with pytest.raises(ValueError, match="name must look like"):
        KeyDirectory(tmp_path, overlap=60).files()
    (tmp_path / "mykey.pem").unlink()
    (tmp_path / "key-20260101T000000Z-abc.pem").write_text("not a key")
    with pytest.raises(ValueError, match="not an unencrypted PEM"):
        KeyDirectory(tmp_path, overlap=60).files()


def test_directory_ring_reloads_after_a_rotation_and_survives_a_broken_file(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path, overlap=60)
    first = directory.rotate("EdDSA").added
    ring = DirectoryKeyRing.load(directory)
    assert ring.reload() is False
    second = directory.rotate("EdDSA").added
    assert ring.reload() is True
    assert ring.signing_key().kid == second.kid and ring.lookup(first.kid, time.time()).kid == first.kid
    (tmp_path / "key-20990101T000000Z-broken.pem").write_text("half a key")
    assert ring.reload() is False
    assert ring.signing_key().kid == second.kid


def test_a_new_key_is_published_at_once_and_signs_publish_ahead_later(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path, overlap=3600, publish_ahead=60)
    t0 = 1_800_000_000
    first = directory.rotate("EdDSA", now=t0).added
    assert first.signs_from is None  # the only key signs at once
    clock = ManualClock(start=t0 + 100)
    ring = DirectoryKeyRing.load(directory, clock=clock)
    second = directory.rotate("EdDSA", now=t0 + 100).added
    assert second.signs_from == t0 + 160
    assert ring.reload() is True
    assert {k["kid"] for k in jwks_document(ring, clock())["keys"]} == {first.kid, second.kid}  # published
    assert ring.signing_key().kid == first.kid
    clock.advance(59)
    assert ring.signing_key().kid == first.kid
    clock.advance(1)
    assert ring.signing_key().kid == second.kid  # no reload needed: the ring knows when the switch is due
    # The replaced key verifies for the overlap counted from when its successor began to sign.
    assert directory.files()[1].not_after == t0 + 160 + 3600
    assert ring.lookup(first.kid, t0 + 160 + 3600).kid == first.kid
    with pytest.raises(InvalidToken, match="retired"):
        ring.lookup(first.kid, t0 + 160 + 3601)


def test_cli_list_shows_the_signing_key_and_when_a_pending_key_signs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, 'algorithm = "EdDSA"\npublish_ahead = "10m"')
    assert cli_main(["keys", "rotate", "--config", str(path)]) == 0
    assert "it signs from now on" in capsys.readouterr().out
    assert cli_main(["keys", "rotate", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "signs with it from" in out and "keys.publish_ahead = 600s" in out
    assert cli_main(["keys", "list", "--config", str(path)]) == 0
    pending, signing = capsys.readouterr().out.splitlines()
    newest = KeyDirectory(tmp_path / "keys", overlap=86400, publish_ahead=600).files()[0]
    assert "published, not signing yet; signs from" in pending
    assert time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(newest.created_at + 600)) in pending
    assert "\tsigning until" in signing and "then verifies until" in signing


def test_publish_ahead_must_outlast_the_reload_interval(tmp_path: Path) -> None:
    path = _config(tmp_path, 'algorithm = "EdDSA"\npublish_ahead = "5s"\nreload_interval = "10s"')
    assert cli_main(["keys", "rotate", "--config", str(path)]) == 2
    path = _config(tmp_path, 'algorithm = "EdDSA"\npublish_ahead = "5s"')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=SECRETS)
    assert "keys.publish_ahead (5s) must be longer than keys.reload_interval (10s)" in str(caught.value)
    path = _config(tmp_path, 'algorithm = "EdDSA"\npublish_ahead = "0s"')  # sign at once: allowed
    assert cli_main(["keys", "rotate", "--config", str(path)]) == 0
    assert load_config(path, env=SECRETS).keys.publish_ahead == 0.0


def _config(tmp_path: Path, keys: str, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nurl = "memory://"\n{extra}\n[keys]\n{keys}\n')
    return path


def test_keys_config_problems_are_reported_together(tmp_path: Path) -> None:
    path = _config(tmp_path, 'algorithm = "RS512"\noverlap = "soon"\nsize = 1', extra='[tokens]\naccess_ttl = "1"')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=SECRETS)
    text = str(caught.value)
    assert "keys.algorithm 'RS512'" in text
    assert "keys.overlap" in text
    assert "keys.size: unknown key" in text
    assert "tokens.access_ttl" in text  # and the other tables' problems in the same message


def test_keys_config_needs_a_key_and_a_long_enough_overlap(tmp_path: Path) -> None:
    path = _config(tmp_path, 'algorithm = "EdDSA"\noverlap = "1m"')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=SECRETS)
    assert "frontdesk keys rotate" in str(caught.value)
    assert "keys.overlap" in str(caught.value)


def test_cli_rotate_then_list_then_gateway_config_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, 'algorithm = "ES256"\ndirectory = "signing"\noverlap = "1d"')
    assert cli_main(["keys", "rotate", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "added ES256 key" in out
    assert len(list((tmp_path / "signing").glob("key-*.pem"))) == 1
    assert os.stat(tmp_path / "signing").st_mode & 0o077 == 0
    config = load_config(path, env=SECRETS)
    assert config.keys.algorithm == "ES256" and config.keys.directory == tmp_path.resolve() / "signing"
    assert cli_main(["keys", "rotate", "--config", str(path)]) == 0
    assert "still verifies until" in capsys.readouterr().out
    assert cli_main(["keys", "list", "--config", str(path)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2 and "signing" in listing[0] and "verifies until" in listing[1]


def test_cli_rotate_refuses_hs256_without_an_algorithm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, "")
    assert cli_main(["keys", "rotate", "--config", str(path)]) == 2
    assert "FRONTDESK_ACCESS_SECRET_PREVIOUS" in capsys.readouterr().err
