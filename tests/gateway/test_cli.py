"""The ``frontdesk`` command, run as a real subprocess: keygen, users add/list/remove, refusing a bad config
(every problem listed at once, no traceback), and purge."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import select
import shutil
import sqlite3
import stat
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_gateway import AuthClient, GatewayProcess, make_secrets, run_in_thread, write_config

from frontdesk.gateway.config import load_config
from tests.support import ServerProcess, free_port, wait_until

SECRET_LINE = re.compile(r"^(FRONTDESK_ACCESS_SECRET|FRONTDESK_REFRESH_SECRET|FRONTDESK_OIDC_TOKEN_KEY)=(\S+)$")
KEYGEN_NAMES = {"FRONTDESK_ACCESS_SECRET", "FRONTDESK_REFRESH_SECRET", "FRONTDESK_OIDC_TOKEN_KEY"}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update(extra)
    return env


def frontdesk(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frontdesk.gateway.cli", *args],
        cwd=cwd,
        env=clean_env() if env is None else env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr


# --- keygen --------------------------------------------------------------------------------------


def parse_env_lines(text: str, count: int = 3) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == count, text
    found = {}
    for line in lines:
        match = SECRET_LINE.match(line)
        assert match, f"not a KEY=value .env line: {line!r}"
        found[match.group(1)] = match.group(2)
    return found


def test_keygen_prints_three_distinct_long_secrets_in_env_form(tmp_path: Path) -> None:
    result = frontdesk("keygen", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first = parse_env_lines(result.stdout)
    assert set(first) == KEYGEN_NAMES  # the two token secrets and the key that seals IdP tokens ([[oidc]])
    access, refresh = first["FRONTDESK_ACCESS_SECRET"], first["FRONTDESK_REFRESH_SECRET"]
    assert len(set(first.values())) == 3
    assert all(len(value.encode()) >= 32 for value in first.values())
    # Fresh every time.
    again = parse_env_lines(frontdesk("keygen", cwd=tmp_path).stdout)
    assert set(again.values()).isdisjoint(first.values())
    # And usable as is: a .env beside the config satisfies the secret checks.
    (tmp_path / ".env").write_text(result.stdout)
    write_config(tmp_path / "config.toml")
    config = load_config(tmp_path / "config.toml", env={})
    assert (config.tokens.access_secret, config.tokens.refresh_secret) == (access, refresh)


def test_keygen_write_creates_the_file_0600_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    # umask 022 is the common default: a plain open() would leave the secrets readable by everyone.
    result = subprocess.run(
        [sys.executable, "-m", "frontdesk.gateway.cli", "keygen", "--write", str(target)],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120, umask=0o022,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    written = parse_env_lines(target.read_text())
    assert not any(secret in result.stdout + result.stderr for secret in written.values())  # never printed
    assert str(target) in result.stdout

    # An existing file is never replaced (its secrets would be lost and every session with them).
    again = frontdesk("keygen", "--write", str(target), cwd=tmp_path)
    assert again.returncode != 0
    assert_no_traceback(again)
    assert "exists" in again.stderr
    assert parse_env_lines(target.read_text()) == written


def test_keygen_write_adds_only_what_an_existing_env_file_lacks(tmp_path: Path) -> None:
    """A .env made before [[oidc]] existed (two secrets, and too open): keygen --write adds the IdP token key,
    leaves every existing line alone, makes the file 0600, and then has nothing more to add."""
    target = tmp_path / ".env"
    before = "# mine\nFRONTDESK_ACCESS_SECRET=" + "a" * 40 + "\nexport FRONTDESK_REFRESH_SECRET='" + "r" * 40 + "'"
    target.write_text(before)  # no trailing newline: the added line must still be a line of its own
    target.chmod(0o644)
    result = frontdesk("keygen", "--write", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "FRONTDESK_OIDC_TOKEN_KEY" in result.stdout and str(target) in result.stdout
    text = target.read_text()
    assert text.startswith(before + "\n")
    (added,) = text[len(before) + 1 :].splitlines()
    name, _, key = added.partition("=")
    assert name == "FRONTDESK_OIDC_TOKEN_KEY" and len(key.encode()) >= 32
    assert key not in result.stdout + result.stderr  # never printed
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # A config with [[oidc]] now loads from that .env: the key is what it asked for.
    write_config(tmp_path / "config.toml", oidc=[{"name": "corp", "issuer": "https://idp.example", "client_id": "c"}])
    config = load_config(tmp_path / "config.toml", env={"FRONTDESK_OIDC_CORP_CLIENT_SECRET": "s" * 40})
    assert config.oidc_token_keys == (key,)

    again = frontdesk("keygen", "--write", str(target), cwd=tmp_path)
    assert again.returncode != 0 and "exists" in again.stderr
    assert_no_traceback(again)
    assert target.read_text() == text


def test_the_demo_creates_its_env_file_private_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from frontdesk.gateway.demo import ensure_secrets

    def no_chmod(*args: object, **kwargs: object) -> None:
        raise AssertionError("a secrets file must be created 0600, not loosened by the umask and chmod-ed after")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    monkeypatch.delenv("FRONTDESK_ACCESS_SECRET", raising=False)
    monkeypatch.delenv("FRONTDESK_REFRESH_SECRET", raising=False)
    previous = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.env"
        ensure_secrets(fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
        assert set(parse_env_lines(fresh.read_text(), 2)) == {"FRONTDESK_ACCESS_SECRET", "FRONTDESK_REFRESH_SECRET"}

        # An existing, world-readable .env that lacks a secret is made private before the secret goes in.
        loose = tmp_path / "loose.env"
        loose.write_text("OTHER=1")
        assert stat.S_IMODE(loose.stat().st_mode) == 0o644
        ensure_secrets(loose)
        assert stat.S_IMODE(loose.stat().st_mode) == 0o600
        lines = loose.read_text().splitlines()
        assert lines[0] == "OTHER=1" and len(lines) == 3
    finally:
        os.umask(previous)


def test_the_demo_writes_the_shipped_config_when_there_is_none(tmp_path: Path) -> None:
    """After a plain ``pip install`` there is no config.toml: the demo writes the repository's one (shipped in
    the package) and then loads it like any other; an existing file is never replaced."""
    from frontdesk.gateway.demo import SHIPPED_CONFIG, ensure_config

    target = tmp_path / "config.toml"
    ensure_config(target)
    assert target.read_text() == (REPO / "config.toml").read_text() == SHIPPED_CONFIG.read_text()
    target.write_text("# mine\n")
    ensure_config(target)
    assert target.read_text() == "# mine\n"


def test_the_console_script_is_installed(tmp_path: Path) -> None:
    script = shutil.which("frontdesk")
    if script is None:
        pytest.skip("the frontdesk console script is not on PATH (pip install -e .)")
    result = subprocess.run([script, "keygen"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 0
    parse_env_lines(result.stdout)


# --- demo ----------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
DEMO_CREDENTIALS = re.compile(r"sign in as\s+(\S+)\s+/\s+(\S+)")


def test_demo_routes_api_calls_to_the_upstream_it_started(tmp_path: Path) -> None:
    """``frontdesk demo --port P --upstream-port U`` with the repository's own config.toml, unchanged but for
    the static directory: /api/* must reach the upstream on U, not the config's port 9000."""
    demo_config = (REPO / "config.toml").read_text()
    assert 'upstream = "http://127.0.0.1:9000"' in demo_config  # what the demo must re-point
    config = tmp_path / "config.toml"
    config.write_text(demo_config.replace('directory = "static"', f'directory = "{(REPO / "static").as_posix()}"'))
    command = [sys.executable, "-m", "frontdesk.gateway.cli", "demo", "--config", str(config)]
    with _demo(command, tmp_path) as (url, username, password, log):
        assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
        with AuthClient(url) as client:
            assert client.login(username, password).status_code == 200
            me = client.request("GET", "/api/me")
            assert me.status_code == 200, (me.status_code, me.text, log.read_text())
            assert me.json()["claims"]["sub"]
            added = client.request("POST", "/api/items", json={"text": "routed"})
            assert added.status_code in (200, 201), added.text
            assert client.request("GET", "/api/items").status_code == 200


@pytest.mark.slow
def test_the_demo_runs_from_a_built_wheel_outside_the_checkout(
    frontdesk_wheel: Path, fresh_venv: Callable[..., Path], tmp_path: Path
) -> None:
    """``pip install 'frontdesk[gateway]' && frontdesk demo`` in an empty folder: the config, the SPA and
    frontdesk.js all come from the installed package (a fresh venv that cannot see the checkout)."""
    python = fresh_venv(f"{frontdesk_wheel}[gateway]")
    site = Path(subprocess.check_output([python, "-c", "import frontdesk; print(frontdesk.__file__)"], text=True,
                                        cwd=tmp_path).strip()).parent  # fmt: skip
    assert site.is_relative_to(python.parent.parent), site  # the wheel's copy, not the checkout
    shipped_js = (site / "static" / "frontdesk.js").read_bytes()
    workdir = tmp_path / "empty"
    workdir.mkdir()
    with _demo([str(python.parent / "frontdesk"), "demo"], workdir) as (url, username, password, log):
        assert (workdir / "config.toml").read_text() == (REPO / "config.toml").read_text()  # written by the demo
        assert not (workdir / "static").exists()
        spa = httpx.get(url + "/", timeout=10)
        assert spa.status_code == 200 and "text/html" in spa.headers["content-type"], spa.text
        title = re.search(r"<title>.*</title>", (site / "static" / "index.html").read_text())
        assert title and title.group(0) in spa.text  # the shipped page (the gateway fills in its client settings)
        script = httpx.get(url + "/frontdesk.js", timeout=10)
        assert script.status_code == 200 and script.content == shipped_js
        with AuthClient(url) as client:
            assert client.login(username, password).status_code == 200
            me = client.request("GET", "/api/me")
            assert me.status_code == 200, (me.status_code, me.text, log.read_text())


@contextmanager
def _demo(command: list[str], cwd: Path) -> Iterator[tuple[str, str, str, Path]]:
    """Run ``frontdesk demo`` on free ports until the gateway answers; yields its URL, the printed user name
    and password, and the log."""
    port, upstream_port = free_port(), free_port()
    args = [*command, "--port", str(port), "--upstream-port", str(upstream_port)]
    env = clean_env(PYTHONUNBUFFERED="1")
    with ServerProcess(args, cwd / "demo.log", cwd=cwd, env=env, name="frontdesk demo") as demo:
        found = demo.wait_until(lambda: DEMO_CREDENTIALS.search(demo.log()), timeout=60, what="the demo's credentials")
        demo.wait_answers(f"http://127.0.0.1:{port}/healthz", status=200, timeout=60)
        yield f"http://127.0.0.1:{port}", found.group(1), found.group(2), demo.log_path


# --- users ---------------------------------------------------------------------------------------


def test_users_add_list_remove_and_the_server_sees_them(gateway_factory: Any) -> None:
    gw: GatewayProcess = gateway_factory("cli-users", start=False)
    cfg, cwd = str(gw.config_path), gw.workdir
    env = clean_env()  # users commands never need the secrets

    added = frontdesk(
        "users", "add", "jules", "--password-stdin", "--config", cfg, cwd=cwd, env=env, stdin="jules-pw-1\n"
    )
    assert added.returncode == 0, added.stderr
    assert "jules" in added.stdout
    assert (
        frontdesk("users", "add", "kim", "--password-stdin", "--config", cfg, cwd=cwd, stdin="kim-pw-22\n").returncode
        == 0
    )

    # Refusals are plain messages with a non-zero exit, never a traceback.
    for name, password in (
        ("jules", "another-pw-1\n"),
        ("JULES", "another-pw-1\n"),
        ("lee", "short\n"),
        ("bad name", "long-enough-1\n"),
    ):
        refused = frontdesk("users", "add", name, "--password-stdin", "--config", cfg, cwd=cwd, stdin=password)
        assert refused.returncode != 0, (name, refused.stdout)
        assert refused.stderr.strip()
        assert_no_traceback(refused)

    listed = frontdesk("users", "list", "--config", cfg, cwd=cwd)
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["jules", "kim"]
    # The hash is argon2id, never the password.
    (stored,) = gw.query("SELECT password_hash FROM users WHERE username = 'jules'")
    assert stored[0].startswith("$argon2id$") and "jules-pw-1" not in stored[0]

    # The server uses the same table.
    gw.start()
    with gw.client() as client, gw.client() as kims:
        assert client.login("jules", "jules-pw-1").status_code == 200
        assert kims.login("kim", "kim-pw-22").status_code == 200
        assert kims.session().status_code == 200

        removed = frontdesk("users", "remove", "kim", "--config", cfg, cwd=cwd)
        assert removed.returncode == 0, removed.stderr
        assert "ended 1 session" in removed.stdout
        listed = frontdesk("users", "list", "--config", cfg, cwd=cwd)
        assert [line.split()[0] for line in listed.stdout.splitlines()] == ["jules"]
        assert client.login("kim", "kim-pw-22").status_code == 401
        # A removed user's live session ends too (the server re-reads the row within a second).
        wait_until(lambda: kims.session().status_code == 401, what="removed user's session to end")

        # A changed password ends the user's sessions as well; the new password works.
        assert client.login("jules", "jules-pw-1").status_code == 200
        changed = frontdesk(
            "users", "passwd", "jules", "--password-stdin", "--config", cfg, cwd=cwd, stdin="jules-pw-2\n"
        )
        assert changed.returncode == 0, changed.stderr
        wait_until(lambda: client.session().status_code == 401, what="session to end after passwd")
        assert client.login("jules", "jules-pw-1").status_code == 401
        assert client.login("jules", "jules-pw-2").status_code == 200

    missing = frontdesk("users", "remove", "kim", "--config", cfg, cwd=cwd)
    assert missing.returncode != 0 and "kim" in missing.stderr
    assert_no_traceback(missing)
    gw.stop()


def test_sessions_list_and_revoke_one_or_every_session_of_a_user(gateway_factory: Any) -> None:
    gw: GatewayProcess = gateway_factory("cli-sessions", users={"mia": "mia-password-1", "ned": "ned-password-2"})
    cfg, cwd = str(gw.config_path), gw.workdir

    def sessions(*args: str) -> subprocess.CompletedProcess[str]:
        done = frontdesk("sessions", *args, "--config", cfg, cwd=cwd, env=gw.env)
        assert_no_traceback(done)
        return done

    def rows(done: subprocess.CompletedProcess[str]) -> list[list[str]]:
        assert done.returncode == 0, done.stderr
        header, *lines = done.stdout.splitlines()
        assert header.split("\t") == ["id", "user", "created", "last_seen", "address", "user_agent", "remember"]
        return [line.split("\t") for line in lines]

    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    with gw.client() as laptop, gw.client(local_address="127.0.0.9") as phone, gw.client() as ned:
        assert laptop.login("mia", "mia-password-1", headers={"User-Agent": firefox}).status_code == 200
        assert phone.login("mia", "mia-password-1", remember=True).status_code == 200
        assert ned.login("ned", "ned-password-2").status_code == 200
        laptop_sid, phone_sid = laptop.claims()["sid"], phone.claims()["sid"]

        everyone = rows(sessions("list"))
        assert sorted(row[1] for row in everyone) == ["mia", "mia", "ned"]
        mias = {row[0]: row for row in rows(sessions("list", "--user", "mia"))}
        assert set(mias) == {laptop_sid, phone_sid}
        assert mias[laptop_sid][4:] == ["127.0.0.1", "Firefox 133 on Windows", "no"]
        assert mias[phone_sid][4] == "127.0.0.9" and mias[phone_sid][5].startswith("python-httpx ")
        assert mias[phone_sid][6] == "yes"

        ended = sessions("revoke", laptop_sid)
        assert ended.returncode == 0 and laptop_sid in ended.stdout
        wait_until(lambda: laptop.session(follow=False).status_code == 401, what="the revoked session to end")
        assert phone.session().status_code == 200
        again = sessions("revoke", laptop_sid)  # no longer live: said plainly
        assert again.returncode == 1 and "no live session" in again.stderr

        everything = sessions("revoke", "--user", "mia")
        assert everything.returncode == 0 and "ended 1 session(s) of mia" in everything.stdout
        wait_until(lambda: phone.session(follow=False).status_code == 401, what="mia's last session to end")
        assert ned.session().status_code == 200
        assert [row[1] for row in rows(sessions("list"))] == ["ned"]

    for args, status in ((("revoke",), 2), (("revoke", "x", "--user", "mia"), 2), (("list", "--user", "zed"), 1)):
        refused = sessions(*args)
        assert refused.returncode == status and refused.stderr.strip(), args


# --- what serve tells the operator ----------------------------------------------------------------


def test_serve_warns_when_the_env_file_is_readable_by_others(
    gateway_factory: Any, gateway_secrets: dict[str, str]
) -> None:
    gw: GatewayProcess = gateway_factory("env-perms", start=False, env={})  # secrets only from the .env
    dotenv = gw.workdir / ".env"
    dotenv.write_text("".join(f"{name}={value}\n" for name, value in gateway_secrets.items()))
    dotenv.chmod(0o644)
    gw.start()
    warning = [line for line in gw.log_path.read_text().splitlines() if str(dotenv) in line]
    assert len(warning) == 1, gw.log()
    assert "warning" in warning[0] and "0644" in warning[0] and f"chmod 600 {dotenv}" in warning[0]
    gw.stop()

    dotenv.chmod(0o600)
    gw.start()
    assert str(dotenv) not in gw.log_path.read_text()
    gw.stop()


def test_serve_emits_frontdesk_info_logs_and_refused_websockets_log_no_error(gateway_factory: Any) -> None:
    gw: GatewayProcess = gateway_factory(
        "logs",
        start=False,
        workers=2,  # the log set-up must reach uvicorn's spawned workers too
        store={"purge_interval": "1s"},
        routes=[{"prefix": "/ws/", "upstream": "http://127.0.0.1:9", "websocket": True}],
        log={"format": "text"},  # the lines an operator reads (not a terminal here, so "auto" would be JSON)
    )
    gw.log_level = "info"
    gw.start()
    # frontdesk's own INFO lines (here the periodic purge) reach the log, named and levelled.
    wait_until(lambda: re.search(r"INFO.*frontdesk\S*: purged \d+ expired rows", gw.log()), what="a purge log line")

    own = f"http://127.0.0.1:{gw.port}"
    refusals = [
        ("/ws/socket", {"Origin": own}, 401),  # no session cookie
        ("/ws/socket", {"Origin": "https://evil.example"}, 403),
        ("/ws/socket", {}, 403),  # no Origin at all
        ("/not-a-route", {"Origin": own}, 403),  # no route takes the upgrade: the static files refuse it
    ]

    async def knock() -> list[int]:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        statuses = []
        for path, headers, _ in refusals * 3:
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"ws://127.0.0.1:{gw.port}{path}", additional_headers=headers):
                    pass
            statuses.append(info.value.response.status_code)
        return statuses

    assert run_in_thread(lambda: asyncio.run(knock())) == [status for *_, status in refusals] * 3
    gw.stop()  # every line flushed
    log = gw.log()
    assert log.count('"WebSocket /ws/socket" 401') == 3, log  # the refusals did reach the server
    assert "ERROR" not in log and "Traceback" not in log, log


# --- refusing a bad config -----------------------------------------------------------------------

BAD_CONFIG = """
[tokens]
access_ttl = "2h"
refresh_ttl = "7 weeks"
remember_ttl = "1h"
acces_ttl = "15m"

[cookie]
name = "frontdesk"
domain = "example.com"

[server]
trusted_proxies = ["not-an-address"]

[colours]
theme = "dark"
"""


def serve(cwd: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    # --port 1: it must never get as far as binding anything.
    return frontdesk("serve", "--config", str(cwd / "config.toml"), "--port", "1", *extra, cwd=cwd, env=env)


def test_a_bad_config_refuses_to_start_and_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(BAD_CONFIG)
    env = clean_env(FRONTDESK_ACCESS_SECRET="too-short")  # and the refresh secret is missing
    result = serve(tmp_path, env)
    assert result.returncode != 0
    assert_no_traceback(result)
    err = result.stderr
    expected = [
        "refresh_ttl",  # a bad duration
        "acces_ttl",  # an unknown key
        "access_ttl must be shorter than tokens.remember_ttl",
        "__Host-",  # cookie name breaks the prefix rules
        "cookie.domain",
        "not-an-address",
        "[colours]",  # an unknown table
        "FRONTDESK_ACCESS_SECRET is shorter than 32 bytes",
        "FRONTDESK_REFRESH_SECRET is not set",
    ]
    missing = [item for item in expected if item not in err]
    assert not missing, f"not reported: {missing}\n--- stderr ---\n{err}"
    # One message, one problem per line.
    assert err.count("frontdesk cannot start") == 1
    assert len([line for line in err.splitlines() if line.lstrip().startswith("- ")]) >= len(expected)


def test_identical_secrets_are_refused(tmp_path: Path) -> None:
    write_config(tmp_path / "config.toml")
    same = "x" * 40
    result = serve(tmp_path, clean_env(FRONTDESK_ACCESS_SECRET=same, FRONTDESK_REFRESH_SECRET=same))
    assert result.returncode != 0
    assert_no_traceback(result)
    assert "must be different" in result.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "not found"), ("[tokens\naccess_ttl = 1", "not valid TOML")],
    ids=["missing-file", "invalid-toml"],
)
def test_an_unreadable_config_is_refused_plainly(tmp_path: Path, content: str | None, needle: str) -> None:
    if content is not None:
        (tmp_path / "config.toml").write_text(content)
    result = serve(tmp_path, clean_env(**make_secrets()))
    assert result.returncode != 0
    assert_no_traceback(result)
    assert needle in result.stderr


# --- purge ---------------------------------------------------------------------------------------


def test_purge_deletes_only_what_has_expired(tmp_path: Path) -> None:
    write_config(tmp_path / "config.toml")
    cfg = str(tmp_path / "config.toml")
    first = frontdesk("purge", "--config", cfg, cwd=tmp_path)  # creates and migrates the store; no secrets needed
    assert first.returncode == 0, first.stderr
    assert "purged 0" in first.stdout

    now = time.time()
    past, future = now - 3600, now + 3600
    db = sqlite3.connect(tmp_path / "frontdesk.db")
    with db:
        session = (
            "INSERT INTO sessions (sid, user_id, username, created_at, last_seen, expires_at, idle_expires_at,"
            " remember, current_jti, previous_jti, rotated_at, revoked_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        db.execute(session, ("live", "u", "mo", past, now, future, future, 0, "j1", None, now, None))
        db.execute(session, ("capped", "u", "mo", past - 9e5, past, past, future, 0, "j2", None, past, None))
        db.execute(session, ("idle", "u", "mo", past, past, future, past, 0, "j3", None, past, None))
        revocation = "INSERT INTO revocations (id, kind, reason, revoked_at, expires_at) VALUES (?,?,?,?,?)"
        db.execute(revocation, ("live-rev", "session", "logout", now, future))
        db.execute(revocation, ("old-rev", "session", "logout", past - 9e5, past))
        attempt = "INSERT INTO attempts (key, window_start, window_end, count) VALUES (?,?,?,?)"
        db.execute(attempt, ("login:user:mo", now - 10, future, 2))
        db.execute(attempt, ("login:user:old", past - 600, past, 9))
    db.close()

    result = frontdesk("purge", "--config", cfg, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert "purged 4" in result.stdout, result.stdout
    db = sqlite3.connect(tmp_path / "frontdesk.db")
    try:
        assert db.execute("SELECT sid FROM sessions").fetchall() == [("live",)]
        assert db.execute("SELECT id FROM revocations").fetchall() == [("live-rev",)]
        assert db.execute("SELECT key FROM attempts").fetchall() == [("login:user:mo",)]
    finally:
        db.close()


# --- the password prompt on a real terminal ------------------------------------------------------

PROMPT_TIMEOUT = 30.0  # generous: only a deadline for a hung process, never a speed assertion


def _take_the_terminal() -> None:
    # In the child, after setsid(): make the pty (already fd 0) our controlling terminal, so that getpass
    # opens it as /dev/tty and the line discipline turns \x03 into SIGINT for this process.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``frontdesk`` running on a real pseudo-terminal, as a user types into it."""

    def __init__(self, *args: str, cwd: Path) -> None:
        master, slave = os.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "frontdesk.gateway.cli", *args],
            cwd=cwd,
            env=clean_env(),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_the_terminal,
        )
        os.close(slave)
        self.output = b""

    def _read(self, timeout: float) -> bytes | None:
        """The next chunk of output; None if nothing came within ``timeout``; b"" once the terminal is closed."""
        if not select.select([self.master], [], [], timeout)[0]:
            return None
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: every process holding the terminal has exited
            return b""
        self.output += chunk
        return chunk

    def wait_for_output(self, needle: bytes) -> None:
        deadline = time.monotonic() + PROMPT_TIMEOUT
        while needle not in self.output:
            assert time.monotonic() < deadline, f"never printed {needle!r}: {self.output!r}"
            assert self._read(0.2) != b"", f"exited before printing {needle!r}: {self.output!r}"

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self) -> tuple[int, str]:
        """Wait for the exit (failing, and killing it, if it does not come) and return (code, output)."""
        try:
            code = self.proc.wait(timeout=PROMPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"still running after the keystroke; output so far: {self.output!r}")
        while self._read(0.5):  # drain what it wrote before exiting
            pass
        os.close(self.master)
        return code, self.output.decode(errors="replace")


def _after_prompt(output: str) -> list[str]:
    tail = re.split(r"[Pp]assword: ", output)[-1]  # after the last prompt, "Password: " or "Repeat password: "
    return [line.strip() for line in tail.replace("\r", "\n").split("\n") if line.strip()]


@pytest.mark.parametrize("command", ["add", "passwd"])
def test_one_ctrl_c_at_the_password_prompt_exits_cleanly(tmp_path: Path, command: str) -> None:
    write_config(tmp_path / "config.toml")
    cfg = str(tmp_path / "config.toml")
    if command == "passwd":
        made = frontdesk("users", "add", "ada", "--password-stdin", "--config", cfg, cwd=tmp_path, stdin="ada-pw-123\n")
        assert made.returncode == 0, made.stderr
    term = Terminal("users", command, "ada", "--config", cfg, cwd=tmp_path)
    term.wait_for_output(b"Password: ")
    term.type(b"\x03")  # one Ctrl-C: the terminal sends SIGINT
    code, output = term.finish()
    assert code == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert len(_after_prompt(output)) == 1, output
    # Nothing was changed.
    listed = frontdesk("users", "list", "--config", cfg, cwd=tmp_path)
    assert listed.stdout.split() == ([] if command == "add" else ["ada", listed.stdout.split()[1]])


@pytest.mark.parametrize("at", ["first", "repeat"])
def test_ctrl_d_at_the_password_prompt_prints_one_clean_line(tmp_path: Path, at: str) -> None:
    write_config(tmp_path / "config.toml")
    term = Terminal("users", "add", "ada", "--config", str(tmp_path / "config.toml"), cwd=tmp_path)
    term.wait_for_output(b"Password: ")
    if at == "repeat":
        term.type(b"ada-pw-123\r")
        term.wait_for_output(b"Repeat password: ")
    term.type(b"\x04")  # Ctrl-D on an empty line: end of input
    code, output = term.finish()
    assert code not in (0, 130), output
    assert "Traceback" not in output and "EOFError" not in output, output
    lines = _after_prompt(output)
    assert len(lines) == 1 and lines[0].startswith("frontdesk: "), output


@pytest.mark.parametrize("piped", [None, "ada-pw-123\n"], ids=["devnull", "pipe"])
def test_no_terminal_and_no_password_stdin_prints_one_clean_line(tmp_path: Path, piped: str | None) -> None:
    config = str(write_config(tmp_path / "config.toml"))
    result = subprocess.run(
        [sys.executable, "-m", "frontdesk.gateway.cli", "users", "add", "ada", "--config", config],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL if piped is None else None,
        input=piped,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # no controlling terminal at all, as under cron or CI
    )
    assert result.returncode != 0
    assert_no_traceback(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--password-stdin" in lines[0], result.stderr
    assert result.stdout == ""
