"""Every value check the configuration uses, in one place: durations, sizes, numbers, strings, hosts, origins.

Each parser takes a raw TOML value and returns the typed value, or raises ``ValueError`` whose message says,
in plain words, what is wrong and what to write instead; the caller prefixes the key (``proxy.read_timeout:
...``) and collects every problem, so one start-up error lists them all. No parser reads a file or the
environment.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from frontdesk.middleware.forwarded import Network, trusted_network

__all__ = [
    "Problems",
    "allowance",
    "boolean",
    "count",
    "host",
    "non_empty_string",
    "one_of",
    "origin",
    "origins",
    "parse_duration",
    "parse_each",
    "parse_size",
    "parse_trusted_proxies",
    "positive_int",
    "positive_size",
    "string",
    "string_list",
    "unknown_key",
    "unknown_table",
]

T = TypeVar("T")


class Problems:
    """Every problem found so far, in plain words; ``get`` parses one key and records its problem, if any."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def get(self, table: Mapping[str, Any], section: str, key: str, default: T, parse: Callable[[Any], T]) -> T:
        """``table[key]`` parsed, or ``default`` when absent or bad (then ``section.key: why`` is recorded)."""
        if key not in table:
            return default
        try:
            return parse(table[key])
        except (ValueError, TypeError) as exc:
            self.add(f"{section}.{key}: {exc}")
            return default


def unknown_key(where: str, key: str, known: Collection[str], *, table: str) -> str:
    """The one message for a key no parser reads, in every table:
    ``tokens.acces_ttl: unknown key (did you mean access_ttl?); known keys in [tokens]: ...``.

    ``where`` is how the key is named elsewhere in the error (``tokens``, ``routes[2]``), ``table`` the header
    a user sees in the file (``[tokens]``, ``[[routes]]``)."""
    return f"{where}.{key}: unknown key{_did_you_mean(key, known)}; known keys in {table}: {', '.join(sorted(known))}"


def unknown_table(name: str, known: Mapping[str, str]) -> str:
    """``[token]: unknown table (did you mean [tokens]?); known tables: [cookie], ...``; ``known`` maps each
    table's name to its header (``[[routes]]`` is an array of tables)."""
    listed = ", ".join(known[k] for k in sorted(known))
    hint = _did_you_mean(name, known, lambda close: known[close])
    return f"[{name}]: unknown table{hint}; known tables: {listed}"


def _did_you_mean(name: str, known: Iterable[str], show: Callable[[str], str] = str) -> str:
    # difflib's default cutoff (0.6) catches a dropped, doubled or swapped letter and a missing underscore
    # without suggesting something unrelated, as oauth2-proxy's option validation does.
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {show(close[0])}?)" if close else ""


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


def allowance(value: object) -> float:
    """A duration that may be zero (``"0s"``): a clock-skew leeway, a publish-ahead delay."""
    return parse_duration(value, allow_zero=True)


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


def positive_size(value: object) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"{value!r} must be larger than zero")
    return size


def positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{value!r} must be a whole number above zero")
    return value


def count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} must be a whole number, zero or more")
    return value


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} must be true or false")
    return value


def string(value: object) -> str:
    """Any string, empty included (where empty means "not set", as ``proxy.tls_ca_file``)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} must be a string")
    return value


def non_empty_string(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} must be a non-empty string")
    return value


def one_of(*choices: str) -> Callable[[object], str]:
    """A parser accepting exactly one of ``choices`` (case-insensitive), returned in lower case."""
    allowed = " or ".join(f'"{c}"' for c in choices)

    def parse(value: object) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ValueError(f"{value!r} is not one of the choices: write {allowed}")
        return value.strip().lower()

    return parse


def string_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{value!r} must be a list of strings")
    return value


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}(?::(?P<port>[0-9]{{1,5}}))?")
_IPV6_HOST = re.compile(r"\[[0-9a-f:.]+\](?::(?P<port>[0-9]{1,5}))?")


def _host_or_none(text: str) -> str | None:
    """``text`` lower-cased when it is a host name or address with an optional port 1-65535, else None."""
    text = text.lower()
    match = _HOST.fullmatch(text) or _IPV6_HOST.fullmatch(text)
    if match is None:
        return None
    port = match.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        return None
    return text


def host(value: object) -> str:
    """A host name or address with an optional port, as in a Host header: ``app.example.com:8443``."""
    found = _host_or_none(value.strip()) if isinstance(value, str) else None
    if not found:
        raise ValueError(f'{value!r} is not a host name such as "app.example.com" (no scheme, no path)')
    return found


_DEFAULT_PORT = {"http": ":80", "https": ":443"}
_ORIGIN_EXAMPLE = '"https://app.example.com" (a scheme and a host, an optional port, nothing after)'


def origin(value: object) -> str:
    """An origin exactly as a browser sends it in ``Origin``, e.g. ``https://app.example.com``.

    Lower-cased, one trailing ``/`` and the scheme's default port dropped (browsers send neither). Anything
    else is refused rather than kept: an entry with a path, query, user name, wildcard or stray space can
    never equal an ``Origin`` header, so it would silently allow nothing, or read as allowing more than it does.
    """
    text = value.lower().removesuffix("/") if isinstance(value, str) else ""
    scheme, sep, rest = text.partition("://")
    found = _host_or_none(rest) if sep and scheme in _DEFAULT_PORT else None
    if not found:
        raise ValueError(f"{value!r} is not an origin such as {_ORIGIN_EXAMPLE}")
    return f"{scheme}://{found.removesuffix(_DEFAULT_PORT[scheme])}"


def origins(value: object) -> tuple[str, ...]:
    """A list of origins (see :func:`origin`), normalised, duplicates dropped; every bad entry is named."""
    if not isinstance(value, list):
        raise ValueError(f'{value!r} is not a list of origins such as ["https://app.example.com"]')
    good, bad = parse_each(value, origin)
    if bad:
        raise ValueError("; ".join(bad))
    return tuple(dict.fromkeys(good))


def parse_trusted_proxies(raw: Iterable[object]) -> tuple[list[Network], list[str]]:
    """``server.trusted_proxies``: the networks, and every entry's problem (the library's words, with the key)."""
    networks, bad = parse_each(raw, trusted_network)
    return networks, [f"server.trusted_proxies: {problem}" for problem in bad]


def parse_each(items: Iterable[object], parse: Callable[[object], T]) -> tuple[list[T], list[str]]:
    """Every entry of a list parsed: the good values, and each bad entry's problem (so one error names them
    all rather than stopping at the first)."""
    good: list[T] = []
    bad: list[str] = []
    for item in items:
        try:
            good.append(parse(item))
        except ValueError as exc:
            bad.append(str(exc))
    return good, bad
