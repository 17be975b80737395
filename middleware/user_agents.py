"""A short, bounded summary of a ``User-Agent`` header ("Chrome 131 on Linux") for the "your devices" list.

The session keeps this summary, never the raw header: the raw header is long, attacker-chosen text that would be
stored for weeks and shown back to the user, while the summary is made only of known names, a version number and
a bounded fallback, so it is short, printable and tells a user which of their devices a session is.
"""

from __future__ import annotations

import re

__all__ = ["MAX_SUMMARY", "summarize_user_agent"]

MAX_SUMMARY = 64
"""The longest summary kept (characters)."""

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari", and every browser says "Mozilla".
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\bOPR/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"\b(?:HeadlessChrome|Chrome|Chromium|CriOS)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)(?:\.\d+)*.*\bSafari/")),
)
_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
)
# A non-browser client names itself first: "curl/8.5.0", "python-httpx/0.27.0".
_PRODUCT = re.compile(r"^([A-Za-z][A-Za-z0-9._-]{0,31})(?:/(\d{1,6}(?:\.\d{1,6}){0,2}))?")


def summarize_user_agent(header: str | None) -> str | None:
    """The summary, e.g. "Chrome 131 on Linux", "Firefox 133 on Windows", "curl 8.5.0"; None without a header.

    At most :data:`MAX_SUMMARY` printable ASCII characters, whatever the header holds.
    """
    if not header:
        return None
    text = header[:1024]  # a header is bounded by the server, but the regexes need not see more than this
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), None)
    for name, pattern in _BROWSERS:
        found = pattern.search(text)
        if found:
            browser = f"{name} {found.group(1)}"
            return _bounded(f"{browser} on {system}" if system else browser)
    product = _PRODUCT.match(text.strip())
    if product is None:
        return "Unknown browser"
    name, version = product.group(1), product.group(2)
    if name == "Mozilla":  # a browser we do not know by name
        return _bounded(f"Browser on {system}" if system else "Unknown browser")
    return _bounded(f"{name} {version}" if version else name)


def _bounded(text: str) -> str:
    printable = "".join(c for c in text if " " <= c <= "~")
    return printable[:MAX_SUMMARY]
