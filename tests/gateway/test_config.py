"""Configuration loading: defaults, secrets from env and .env, and every problem reported at once."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from frontdesk.gateway.config import SHIPPED_STATIC, GatewayConfig, config_path, load_config
from frontdesk.gateway.errors import ConfigError
from frontdesk.gateway.key_settings import KeySettings
from frontdesk.gateway.proxy.routes import Route
from frontdesk.gateway.proxy.settings import ProxySettings

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
        "tokens.bogus: unknown key",
        "[nonsense]: unknown table",
        "tokens.rotation_grace",
        "access_ttl must be shorter than tokens.refresh_ttl",
        'cookie.name \'frontdesk\' must start with "__Host-"',
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
        "server.trusted_proxies: 'not-an-ip' is not an IP address or network (CIDR)",
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


# One origin rule for both keys that list origins: (spelling, the origin it means, or None when refused).
ORIGIN_SPELLINGS: list[tuple[object, str | None]] = [
    ("https://app.example.com", "https://app.example.com"),
    ("HTTPS://App.Example.COM/", "https://app.example.com"),  # case and one trailing slash are normalised
    ("http://localhost:5173", "http://localhost:5173"),
    ("https://app.example.com:443", "https://app.example.com"),  # browsers never send the default port
    ("http://app.example.com:80", "http://app.example.com"),
    ("https://app.example.com:8443", "https://app.example.com:8443"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("https://[::1]:8443", "https://[::1]:8443"),
    ("app.example.com", None),  # no scheme
    ("ftp://app.example.com", None),
    ("https://", None),  # no host
    ("https:///", None),
    ("https://app.example.com/app", None),  # a path: never part of an Origin header
    ("https://app.example.com?x=1", None),
    ("https://app.example.com#top", None),
    ("https://user@app.example.com", None),
    ("https://*.example.com", None),  # no wildcards: it would read as allowing every subdomain
    (" https://app.example.com", None),  # stray space: would never match
    ("https://app.example.com ", None),
    ("https://app example.com", None),
    ("https://app.example.com:99999", None),
    ("https://app.example.com:0", None),
    ("null", None),
    (7, None),
]


def _origins_toml(table: str, key: str, value: object) -> str:
    item = f'"{value}"' if isinstance(value, str) else str(value)
    return f"[{table}]\n{key} = [{item}]\n"


@pytest.mark.parametrize(("table", "key"), [("server", "origins"), ("proxy", "allowed_origins")])
@pytest.mark.parametrize(("spelling", "meaning"), ORIGIN_SPELLINGS)
def test_both_origin_lists_follow_one_rule(
    tmp_path: Path, table: str, key: str, spelling: object, meaning: str | None
) -> None:
    path = write(tmp_path, _origins_toml(table, key, spelling))
    if meaning is None:
        found = problems(path)
        assert len(found) == 1 and found[0].startswith(f"{table}.{key}: "), found
        assert "https://app.example.com" in found[0]  # says what to write instead
        return
    config = load_config(path, env=GOOD_ENV)
    parsed = config.origins if table == "server" else config.proxy.allowed_origins
    assert parsed == (meaning,)


def test_every_bad_origin_is_named_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\norigins = ["https://ok.example", "example.com", "https://a.example/x"]\n')
    (found,) = problems(path)
    assert "'example.com'" in found and "'https://a.example/x'" in found and "ok.example" not in found


def test_the_config_is_parsed_into_typed_frozen_objects(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [server]
        origins = ["https://app.example.com"]
        [proxy]
        read_timeout = "1m"
        allowed_origins = ["https://admin.example.com"]
        [keys]
        reload_interval = "20s"
        publish_ahead = "0s"
        [[routes]]
        prefix = "/api/"
        upstream = "http://127.0.0.1:9000"
        """,
    )
    config = load_config(path, env=GOOD_ENV)
    (route,) = config.routes
    assert isinstance(route, Route) and route.prefix == "/api/" and route.audience == config.tokens.audience
    assert isinstance(config.proxy, ProxySettings) and config.proxy.read_timeout == 60.0
    assert isinstance(config.keys, KeySettings) and config.keys.reload_interval == 20.0
    assert config.keys.directory == tmp_path.resolve() / "keys"  # relative to the config file
    for frozen in (config, route, config.proxy, config.keys, config.login_capacity):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frozen, dataclasses.fields(frozen)[0].name, None)
    assert not any(name.startswith("raw_") for name in (f.name for f in dataclasses.fields(GatewayConfig)))


def test_route_proxy_and_key_problems_join_the_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [proxy]
        read_timeout = 5
        [keys]
        algorithm = "none"
        [[routes]]
        prefix = "api"
        upstream = "http://127.0.0.1:9000"
        [tokens]
        leeway = "1h"
        """,
    )
    text = "\n".join(problems(path))
    for expected in ("proxy.read_timeout", "keys.algorithm 'none'", "routes[0].prefix", "tokens.leeway"):
        assert expected in text, expected


def test_the_shipped_spa_is_served_when_no_static_folder_is_beside_the_config(tmp_path: Path) -> None:
    """Outside a checkout (a plain ``pip install``) there is no ./static: the default serves the SPA shipped in
    the package; a ./static beside the config, or any other directory named explicitly, still wins."""
    assert (SHIPPED_STATIC / "index.html").is_file() and (SHIPPED_STATIC / "frontdesk.js").is_file()
    config = load_config(write(tmp_path, ""), env=GOOD_ENV)
    assert config.static_dir == SHIPPED_STATIC
    config = load_config(write(tmp_path, '[static]\ndirectory = "static"\n'), env=GOOD_ENV)
    assert config.static_dir == SHIPPED_STATIC

    (tmp_path / "static").mkdir()
    config = load_config(write(tmp_path, ""), env=GOOD_ENV)
    assert config.static_dir == tmp_path / "static"
    config = load_config(write(tmp_path, '[static]\ndirectory = "web"\n'), env=GOOD_ENV)
    assert config.static_dir == tmp_path / "web"


def test_forward_auth_pass_token_is_a_checked_boolean_off_by_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env=GOOD_ENV).forward_auth_pass_token is False
    assert load_config(write(tmp_path, "[forward_auth]\npass_token = true\n"), env=GOOD_ENV).forward_auth_pass_token
    found = problems(write(tmp_path, '[forward_auth]\npass_token = "yes"\ncache = 1\n'))
    assert "forward_auth.pass_token: 'yes' must be true or false" in found
    assert any(p.startswith("forward_auth.cache: unknown key") for p in found)


def test_store_on_outage_fails_closed_by_default_and_is_checked(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env=GOOD_ENV).sessions.serve_cached_on_outage is False
    text = '[store]\non_outage = "serve_cached"\n'
    assert load_config(write(tmp_path, text), env=GOOD_ENV).sessions.serve_cached_on_outage is True
    found = problems(write(tmp_path, '[store]\non_outage = "serve_stale"\nbusy_timeout = "soon"\n'))
    assert any(p.startswith("store.on_outage: ") and "fail_closed" in p and "serve_cached" in p for p in found), found
    assert any(p.startswith("store.busy_timeout: ") for p in found), found


def test_log_and_audit_settings_default_and_parse(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env=GOOD_ENV)
    assert (config.log.format, config.log.level, config.log.access_log) == ("auto", "info", False)
    assert config.audit.retention == 90 * 86400
    text = '[log]\nformat = "json"\nlevel = "debug"\naccess_log = true\n[audit]\nretention = "30d"\n'
    config = load_config(write(tmp_path, text), env=GOOD_ENV)
    assert (config.log.format, config.log.level, config.log.access_log) == ("json", "debug", True)
    assert config.audit.retention == 30 * 86400


def test_bad_log_and_audit_settings_are_all_named_at_once(tmp_path: Path) -> None:
    text = '[log]\nformat = "xml"\nlevel = "loud"\nsyslog = true\n[audit]\nretention = "forever"\n'
    found = problems(write(tmp_path, text))
    assert any(p.startswith("log.format:") and '"json"' in p for p in found), found
    assert any(p.startswith("log.level:") and '"debug"' in p for p in found), found
    assert any(p.startswith("log.syslog: unknown key") for p in found), found
    assert any(p.startswith("audit.retention:") for p in found), found


def test_cookie_problems_are_the_librarys_with_the_cookie_key_in_front(tmp_path: Path) -> None:
    """One rule set (CookiePolicy's, checked when it is built); the gateway only names its table."""
    path = write(
        tmp_path,
        """
        [cookie]
        name = "__Host-a b"
        same_site = "lax"
        path = "/app"
        [server]
        port = 0
        """,
    )
    found = problems(path)
    assert [p for p in found if p.startswith("cookie.")] == [
        "cookie.name '__Host-a b' is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only)",
        "cookie.path must be \"/\" for a __Host- cookie, not '/app'",
        "cookie.same_site must be one of Strict, Lax, None, not 'lax' (did you mean 'Lax'?)",
    ]
    assert any(p.startswith("server.port") for p in found)  # and the rest of the file is still checked


# One misspelling per table the gateway reads, the key it should suggest, and the header of that table.
MISSPELT = [
    ("tokens", "acces_ttl", "access_ttl", "tokens.acces_ttl", "[tokens]"),
    ("store", "purge_intreval", "purge_interval", "store.purge_intreval", "[store]"),
    ("server", "trusted_proxy", "trusted_proxies", "server.trusted_proxy", "[server]"),
    ("cookie", "samesite", "same_site", "cookie.samesite", "[cookie]"),
    ("csrf", "headers", "header", "csrf.headers", "[csrf]"),
    ("login", "max_attempts_per_usr", "max_attempts_per_user", "login.max_attempts_per_usr", "[login]"),
    ("users", "databse", "database", "users.databse", "[users]"),
    ("static", "directroy", "directory", "static.directroy", "[static]"),
    ("keys", "algoritm", "algorithm", "keys.algoritm", "[keys]"),
    ("proxy", "read_timout", "read_timeout", "proxy.read_timout", "[proxy]"),
    ("[routes]", "upstrem", "upstream", "routes[0].upstrem", "[[routes]]"),
]
UNKNOWN_KEY = re.compile(
    r"^(?P<where>\S+): unknown key(?: \(did you mean (?P<hint>\w+)\?\))?; "
    r"known keys in (?P<table>\[\[?\w+\]\]?): (?P<known>\w+(?:, \w+)*)$"
)


def _with_key(section: str, key: str) -> str:
    if section == "[routes]":
        return f'[[routes]]\nprefix = "/api/"\nupstream = "http://127.0.0.1:9000"\n{key} = 1\n'
    return f"[{section}]\n{key} = 1\n"


@pytest.mark.parametrize(("section", "typo", "meant", "where", "table"), MISSPELT, ids=[m[0] for m in MISSPELT])
def test_every_table_names_an_unknown_key_in_one_format_with_a_suggestion(
    tmp_path: Path, section: str, typo: str, meant: str, where: str, table: str
) -> None:
    found = [p for p in problems(write(tmp_path, _with_key(section, typo))) if "unknown" in p]
    assert len(found) == 1, found
    match = UNKNOWN_KEY.match(found[0])
    assert match, found[0]
    assert (match["where"], match["hint"], match["table"]) == (where, meant, table)
    known = match["known"].split(", ")
    assert known == sorted(known) and meant in known


@pytest.mark.parametrize("section", [m[0] for m in MISSPELT])
def test_a_key_like_nothing_known_gets_no_suggestion(tmp_path: Path, section: str) -> None:
    found = [p for p in problems(write(tmp_path, _with_key(section, "zzz"))) if "unknown" in p]
    assert len(found) == 1 and UNKNOWN_KEY.match(found[0]), found
    assert "did you mean" not in found[0]


def test_an_unknown_table_is_named_the_same_way(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "[token]\naccess_ttl = 1\n[colours]\nx = 1\n"))
    known = "known tables: [audit], [cookie], [csrf]"
    assert found[0].startswith(f"[token]: unknown table (did you mean [tokens]?); {known}")
    assert found[1].startswith("[colours]: unknown table; known tables: ")


def test_shutdown_timeout_is_a_duration_defaulting_to_30s(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env=GOOD_ENV).shutdown_timeout == 30.0
    assert load_config(REPO / "config.toml", env=GOOD_ENV).shutdown_timeout == 30.0  # documented there
    assert load_config(write(tmp_path, '[server]\nshutdown_timeout = "90s"\n'), env=GOOD_ENV).shutdown_timeout == 90
    for bad in ("30", '"soon"', '"-5s"'):
        found = problems(write(tmp_path, f"[server]\nshutdown_timeout = {bad}\n"))
        assert len(found) == 1 and found[0].startswith("server.shutdown_timeout: "), found
