"""How `frontdesk serve` and `frontdesk demo` configure uvicorn."""

from __future__ import annotations

from pathlib import Path

from frontdesk.gateway.config import load_config
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
