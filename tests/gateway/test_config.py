"""Configuration loading: defaults, secrets from env and .env, and every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import config_path, load_config
from middleware.errors import ConfigError

GOOD_ENV = {"FRONTDESK_ACCESS_SECRET": "a" * 32, "FRONTDESK_REFRESH_SECRET": "b" * 32}
REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env if env is not None else GOOD_ENV)
    return info.value.problems


def test_the_shipped_demo_config_has_the_documented_defaults() -> None:
    config = load_config(REPO / "config.toml", env=GOOD_ENV)
    s = config.sessions
    assert (s.access_ttl, s.refresh_ttl, s.remember_ttl, s.max_session_age, s.rotation_grace) == (
        900,
        7 * 86400,
        30 * 86400,
        30 * 86400,
        30,
    )
    assert config.tokens.issuer == "frontdesk" and config.tokens.audience == "frontdesk-api"
    assert config.store_url == "sqlite:///" + str(REPO / "frontdesk.db")
    assert config.cookie.name.startswith("__Host-")


def test_an_empty_config_means_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env=GOOD_ENV)
    assert config.sessions.access_ttl == 900 and config.csrf_header == "x-csrf"
    assert config.store_url == "sqlite:///" + str(tmp_path / "frontdesk.db")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [tokens]
        access_ttl = "1h"
        refresh_ttl = "30m"
        rotation_grace = "soon"
        bogus = 1
        [cookie]
        name = "frontdesk"
        secure = false
        domain = "example.com"
        [nonsense]
        x = 1
        """,
    )
    found = problems(path, {"FRONTDESK_ACCESS_SECRET": "short", "FRONTDESK_REFRESH_SECRET": ""})
    text = "\n".join(found)
    for expected in (
        "FRONTDESK_ACCESS_SECRET is shorter than 32 bytes",
        "FRONTDESK_REFRESH_SECRET is not set",
        "unknown key tokens.bogus",
        "unknown table [nonsense]",
        "tokens.rotation_grace",
        "access_ttl must be shorter than tokens.refresh_ttl",
        'must start with "__Host-"',
        "cookie.secure must be true",
        "cookie.domain must not be set",
    ):
        assert expected in text, expected
    assert len(found) >= 9


def test_identical_secrets_are_refused(tmp_path: Path) -> None:
    same = {"FRONTDESK_ACCESS_SECRET": "s" * 40, "FRONTDESK_REFRESH_SECRET": "s" * 40}
    assert any("must be different" in p for p in problems(write(tmp_path, ""), same))


def test_secrets_come_from_a_dotenv_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# generated\nFRONTDESK_ACCESS_SECRET='" + "x" * 40 + "'\nexport FRONTDESK_REFRESH_SECRET=" + "y" * 40 + "\n"
    )
    config = load_config(write(tmp_path, ""), env={})
    assert config.tokens.access_secret == "x" * 40 and config.tokens.refresh_secret == "y" * 40


def test_bad_durations_types_and_addresses(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [tokens]
        access_ttl = 15
        [server]
        trusted_proxies = ["10.0.0.0/8", "not-an-ip"]
        port = 70000
        origins = ["example.com"]
        [login]
        window = "-5m"
        max_attempts_per_user = 0
        [store]
        url = "postgres://x"
        """,
    )
    text = "\n".join(problems(path))
    for expected in (
        "tokens.access_ttl",
        "not-an-ip",
        "70000",
        "example.com",
        "login.window",
        "login.max_attempts_per_user",
        "store.url",
    ):
        assert expected in text, expected


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", env=GOOD_ENV)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[tokens\n"), env=GOOD_ENV)


def test_config_path_precedence() -> None:
    assert config_path("a.toml", {"FRONTDESK_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, {"FRONTDESK_CONFIG": "b.toml"}) == Path("b.toml")
    assert config_path(None, {}) == Path("config.toml")


def test_asymmetric_keys_need_no_access_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env in the working directory may supply the secret
    path = write(tmp_path, '[keys]\nalgorithm = "EdDSA"\ndirectory = "keys"\n')
    found = problems(path, {"FRONTDESK_REFRESH_SECRET": "b" * 32})
    assert not any("FRONTDESK_ACCESS_SECRET" in p for p in found)
    assert any("frontdesk keys rotate" in p for p in found)  # the empty key directory is still reported
    hs = problems(write(tmp_path, ""), {"FRONTDESK_REFRESH_SECRET": "b" * 32})
    assert any("FRONTDESK_ACCESS_SECRET is not set" in p for p in hs)
