"""Parse human durations such as ``"15m"`` or ``"7d"`` into seconds, and byte sizes such as ``"10MB"``."""

from __future__ import annotations

import re

__all__ = ["parse_duration", "parse_size"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Return seconds for ``"30s"``, ``"15m"``, ``"2h"``, ``"7d"`` (or ``"250ms"``).

    Bare numbers are refused on purpose: ``ttl = 15`` is ambiguous and has bitten people before.
    ``allow_zero`` is for allowances such as a clock-skew leeway, where "0s" is meaningful.
    """
    if not isinstance(value, str):
        raise ValueError(f'{value!r} is not a duration; write it as a string such as "15m" (units s, m, h, d)')
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f'{value!r} is not a duration; use a number and a unit s, m, h or d, such as "15m"')
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds == 0 and allow_zero:
        return 0.0
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return seconds


def parse_size(value: object) -> int:
    """Return bytes for ``"10MB"``, ``"512KiB"``, ``"1GB"`` or a plain integer."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f'{value!r} is not a size; write it as "10MB" or a number of bytes')
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size; use a number and a unit B, KB, MB, GB, KiB, MiB or GiB")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
