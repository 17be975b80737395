"""Nothing secret is ever a static file (issue 8, item 8): a ``[static] directory`` that would expose the
config, the ``.env``, the database or the signing keys refuses to start, in plain words; a live gateway
answers dotfiles and dot-directories with the same 404 as a missing file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_gateway import GatewayProcess, make_secrets, write_config

from frontdesk.gateway.config import load_config
from frontdesk.gateway.errors import ConfigError
from tests.support import free_port

GOOD_ENV = {"FRONTDESK_ACCESS_SECRET": "a" * 32, "FRONTDESK_REFRESH_SECRET": "b" * 32}


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=GOOD_ENV)
    return info.value.problems


def static_problems(path: Path) -> list[str]:
    return [p for p in problems(path) if p.startswith("static.directory")]


def test_the_config_directory_itself_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FRONTDESK_REFRESH_SECRET=" + "s" * 40)
    path = tmp_path / "config.toml"
    path.write_text('[static]\ndirectory = "."\n')
    found = static_problems(path)
    text = "\n".join(found)
    assert "config file" in text and str(tmp_path / "config.toml") in text
    assert ".env" in text and "frontdesk.db" in text
    assert all("point [static] directory at a folder" in p for p in found), found


def test_a_parent_of_the_config_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "config.toml"
    path.write_text('[static]\ndirectory = ".."\n[store]\nurl = "memory://"\n[users]\ndatabase = "/var/tmp/u.db"\n')
    found = static_problems(path)
    assert len(found) == 1 and "config file" in found[0], found


def test_the_database_and_the_key_directory_inside_it_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[static]\ndirectory = "site"\n[store]\nurl = "sqlite:///site/data/frontdesk.db"\n'
        '[keys]\nalgorithm = "EdDSA"\ndirectory = "site/keys"\n'
    )
    text = "\n".join(static_problems(path))
    assert "database" in text and str(tmp_path / "site" / "data" / "frontdesk.db") in text
    assert "key directory" in text and str(tmp_path / "site" / "keys") in text


def test_a_dotenv_in_the_working_directory_inside_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / ".env").write_text("# secrets")
    monkeypatch.chdir(tmp_path / "site")
    path = tmp_path / "config.toml"
    path.write_text('[static]\ndirectory = "site"\n')
    found = static_problems(path)
    assert len(found) == 1 and str(tmp_path / "site" / ".env") in found[0], found


def test_a_static_folder_beside_the_secrets_is_fine(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# secrets")
    (tmp_path / "static").mkdir()  # (without it, "static" means the SPA shipped in the package)
    path = tmp_path / "config.toml"
    path.write_text('[static]\ndirectory = "static"\n[keys]\nalgorithm = "HS256"\n')
    assert load_config(path, env=GOOD_ENV).static_dir == tmp_path / "static"


def test_serve_refuses_to_start_on_the_config_directory(tmp_path: Path) -> None:
    write_config(tmp_path / "config.toml", static={"directory": "."})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")} | make_secrets()
    config = str(tmp_path / "config.toml")
    args = [sys.executable, "-m", "frontdesk.gateway.cli", "serve", "--config", config, "--port", str(free_port())]
    try:
        result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("frontdesk serve started with the config directory as its static directory")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "frontdesk cannot start" in result.stderr
    assert "static.directory" in result.stderr and "config file" in result.stderr


@pytest.fixture(scope="module")
def gw(gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory("static-secrets", static={"directory": "site"}, start=False)
    site = gw.workdir / "site"
    (site / ".git").mkdir(parents=True)
    (site / ".git" / "config").write_text("[remote] url = https://secret-token@example.com/x.git")
    (site / ".env").write_text("FRONTDESK_REFRESH_SECRET=secret")
    (site / "index.html").write_text("<!doctype html><title>app</title>")
    (site / "app.js").write_text("export {};")
    return gw.start()


@pytest.mark.parametrize("path", ["/.git/config", "/.env", "/.git/", "/%2egit/config", "/x/../.env"])
def test_a_live_gateway_never_serves_dotfiles(gw: GatewayProcess, path: str) -> None:
    missing = httpx.get(gw.url + "/no-such-file.js")
    r = httpx.get(gw.url + path)
    assert r.status_code == 404 and missing.status_code == 404, (path, r.text)
    assert r.content == missing.content
    assert b"secret" not in r.content
    assert httpx.get(gw.url + "/app.js").status_code == 200
