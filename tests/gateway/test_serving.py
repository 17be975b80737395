"""How `frontdesk serve` and `frontdesk demo` configure uvicorn."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from frontdesk.gateway.config import load_config
from frontdesk.gateway.logs import JsonFormatter
from frontdesk.gateway.serving import DenialCompletesHandshake, uvicorn_options

GOOD_ENV = {"FRONTDESK_ACCESS_SECRET": "a" * 32, "FRONTDESK_REFRESH_SECRET": "b" * 32}


def options_for(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return uvicorn_options(load_config(path, env=GOOD_ENV), log_level="info")


def test_uvicorn_reads_no_websocket_message_larger_than_the_proxy_forwards(tmp_path: Path) -> None:
    # uvicorn buffers a whole message before the app sees it (16 MiB by default): without this, the proxy's
    # limit would refuse a 15 MiB message only after uvicorn had already held it in memory.
    assert options_for(tmp_path, "")["ws_max_size"] == 1024 * 1024
    assert options_for(tmp_path, '[proxy]\nmax_websocket_message_size = "64KiB"\n')["ws_max_size"] == 64 * 1024


def test_refused_upgrades_complete_the_handshake_and_frontdesk_logs_have_a_handler(tmp_path: Path) -> None:
    options = options_for(tmp_path, "")
    assert options["ws"] is DenialCompletesHandshake
    log_config = options["log_config"]
    assert isinstance(log_config, dict) and log_config["loggers"]["frontdesk"]["handlers"] == ["frontdesk"]


def test_the_log_format_is_text_on_a_terminal_and_json_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def formatter(options: dict[str, object]) -> object:
        config = options["log_config"]
        assert isinstance(config, dict)
        return config["formatters"]["frontdesk"].get("()")

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert formatter(options_for(tmp_path, "")) is JsonFormatter  # systemd, Docker: a collector reads it
    assert formatter(options_for(tmp_path, '[log]\nformat = "text"\n')) is not JsonFormatter
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert formatter(options_for(tmp_path, "")) is not JsonFormatter  # a person reads it
    assert formatter(options_for(tmp_path, '[log]\nformat = "json"\n')) is JsonFormatter


def test_the_log_table_sets_the_levels_and_the_access_log_and_flags_win(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[log]\nlevel = "warning"\naccess_log = true\n')
    config = load_config(path, env=GOOD_ENV)
    options = uvicorn_options(config)
    assert (options["log_level"], options["access_log"]) == ("warning", True)
    options = uvicorn_options(config, log_level="debug", access_log=False)
    assert (options["log_level"], options["access_log"]) == ("debug", False)
    log_config = options["log_config"]
    assert isinstance(log_config, dict) and log_config["loggers"]["frontdesk"]["level"] == "DEBUG"
    assert log_config["root"]["level"] == "WARNING"  # other libraries' debug output stays out
