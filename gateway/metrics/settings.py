"""``[metrics]``: where the Prometheus exposition listens, parsed once at start-up.

The default is loopback, port 9464 (the OpenTelemetry Prometheus exporter's): the metrics never share the
gateway's own port, so nothing a browser can reach ever shows them. An empty address turns metrics off
entirely (no recording, no listener).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..validators import unknown_key

__all__ = ["DEFAULT_ADDRESS", "MetricsSettings", "parse_metrics_settings"]

DEFAULT_ADDRESS = "127.0.0.1:9464"
_KEYS = frozenset({"address"})
_EXAMPLE = '"127.0.0.1:9464" (an IP address and a port; "[::1]:9464" for IPv6), or "" to turn metrics off'


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    host: str = "127.0.0.1"
    port: int | None = 9464  # None: metrics off

    @property
    def enabled(self) -> bool:
        return self.port is not None

    @property
    def address(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}" if self.port is not None else ""


def _parse_address(value: object) -> MetricsSettings:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an address; write {_EXAMPLE}")
    text = value.strip()
    if not text:
        return MetricsSettings(port=None)
    host, sep, port_text = text.rpartition(":")
    if not sep or (text.startswith("[") and not host.endswith("]")):
        raise ValueError(f"{value!r} has no port; write {_EXAMPLE}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address without brackets: its port cannot be told apart
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # An IP literal only: a name could resolve to an interface the operator did not mean to expose.
        raise ValueError(f"{value!r} is not an address; write {_EXAMPLE}") from None
    if not sep or not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError(f"{value!r} has no port number 1-65535; write {_EXAMPLE}")
    return MetricsSettings(host=host, port=int(port_text))


def parse_metrics_settings(raw: Mapping[str, Any] | None) -> tuple[MetricsSettings, list[str]]:
    """``[metrics]`` (``None`` when absent) -> settings and plain-word problems (never raises)."""
    problems: list[str] = []
    table = raw or {}
    for key in table:
        if key not in _KEYS:
            problems.append(unknown_key("metrics", key, _KEYS, table="[metrics]"))
    try:
        settings = _parse_address(table.get("address", DEFAULT_ADDRESS))
    except ValueError as exc:
        problems.append(f"metrics.address: {exc}")
        settings = MetricsSettings(port=None)
    return settings, problems
