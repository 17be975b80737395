"""The same scenarios on uvloop, the loop ``frontdesk serve`` runs (its transports differ from asyncio's)."""

from __future__ import annotations

import asyncio

import uvloop
from test_proxy_app import (  # noqa: F401 (collected again here, under uvloop)
    test_browser_leaving_a_stream_ends_it_upstream,
    test_chunked_request_body_and_head,
    test_keep_alive_reuse,
    test_large_download_and_upload,
    test_nothing_leaks_under_errors,
    test_request_header_rules,
    test_sse_first_event_before_upstream_finishes,
    test_upstream_reset_mid_stream_closes_browser_connection,
)
from test_proxy_upstream import (  # noqa: F401
    raw_gateway,
    test_head_interim_responses_and_eof_delimited_bodies,
    test_stale_pooled_connection_is_retried_for_idempotent_requests_only,
)
from test_proxy_websocket import test_closed_when_the_session_is_logged_out  # noqa: F401

# on_uvloop/conftest.py runs everything in this folder on uvloop.


async def test_the_loop_is_uvloop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
