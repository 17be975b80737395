"""The "your devices" summary of a User-Agent header: known names, a major version, bounded and printable."""

from __future__ import annotations

import pytest

from frontdesk.middleware.user_agents import MAX_SUMMARY, summarize_user_agent

CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


@pytest.mark.parametrize(
    ("header", "summary"),
    [
        (CHROME_LINUX, "Chrome 131 on Linux"),
        (CHROME_LINUX.replace("Chrome/", "HeadlessChrome/"), "Chrome 131 on Linux"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox 133 on Windows"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Safari/537.36 Edg/131.0.2903.86",
            "Edge 131 on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.1 Safari/605.1.15",
            "Safari 18 on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari 18 on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Mobile Safari/537.36",
            "Chrome 131 on Android",
        ),
        ("curl/8.5.0", "curl 8.5.0"),
        ("python-httpx/0.27.0", "python-httpx 0.27.0"),
        ("Mozilla/5.0 (X11; Linux x86_64) SomethingNew/1", "Browser on Linux"),
        ("\x00\x01<script>", "Unknown browser"),
        (None, None),
        ("", None),
    ],
)
def test_summaries(header: str | None, summary: str | None) -> None:
    assert summarize_user_agent(header) == summary


def test_a_hostile_header_gives_a_short_printable_summary() -> None:
    for header in ("A" * 10_000, "x/" + "9" * 5000, "Mozilla/5.0 (" + "\u202e" * 500 + "Linux) Chrome/1" + "1" * 900):
        summary = summarize_user_agent(header)
        assert summary is not None and len(summary) <= MAX_SUMMARY
        assert all(" " <= c <= "~" for c in summary)
