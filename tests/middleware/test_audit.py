"""The audit trail: a sink on the events that keeps the security events (not mints or rotations), writes them to
the store off the request path, logs each one, and forgets them after the retention."""

from __future__ import annotations

import asyncio
import logging

import pytest

from frontdesk.middleware.audit import AUDITED, AuditTrail
from frontdesk.middleware.clock import ManualClock
from frontdesk.middleware.events import Event, Events, Kind
from frontdesk.middleware.purge import Purger
from frontdesk.middleware.store import MemoryStore, Store

DAY = 86400.0


async def wait_for_rows(store: Store, count: int) -> list[Event]:
    for _ in range(200):
        rows = await store.audit()
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} audit rows never arrived; got {await store.audit()}")


async def test_security_events_reach_the_store_and_the_log_mints_and_rotations_do_not(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    trail = AuditTrail(store, retention=90 * DAY, clock=clock)
    events = Events([trail])
    trail.start()
    try:
        with caplog.at_level(logging.INFO, logger="frontdesk.audit"):
            events.emit(Event(Kind.LOGIN_OK, clock(), "alice", "s1", "10.0.0.9", "curl/8"))
            events.emit(Event(Kind.ACCESS_MINTED, clock(), "alice", "s1"))
            events.emit(Event(Kind.REFRESH_ROTATED, clock(), "alice", "s1"))
            events.emit(Event(Kind.LOGOUT, clock(), "alice", "s1", "10.0.0.9", "curl/8", reason="logout", actor="user"))
            rows = await wait_for_rows(store, 2)
    finally:
        await trail.stop()
    assert [r.kind for r in rows] == [Kind.LOGIN_OK, Kind.LOGOUT]
    assert rows[1].address == "10.0.0.9" and rows[1].user_agent == "curl/8" and rows[1].actor == "user"
    logged = [r for r in caplog.records if r.name == "frontdesk.audit"]
    assert [r.audit["kind"] for r in logged] == [Kind.LOGIN_OK, Kind.LOGOUT]  # type: ignore[attr-defined]
    assert Kind.ACCESS_MINTED not in AUDITED and Kind.REFRESH_ROTATED not in AUDITED


async def test_a_huge_user_agent_is_cut_before_it_is_stored() -> None:
    store = MemoryStore()
    trail = AuditTrail(store, retention=DAY, clock=ManualClock())
    trail.emit(Event(Kind.LOGIN_FAILED, 1.0, "alice", user_agent="x" * 100_000, reason="bad_credentials"))
    await trail.flush()
    (row,) = await store.audit()
    assert row.user_agent is not None and len(row.user_agent) <= 256


async def test_when_the_queue_is_full_the_row_is_dropped_counted_and_still_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    trail = AuditTrail(store, retention=DAY, clock=ManualClock(), queue_size=2)
    with caplog.at_level(logging.INFO, logger="frontdesk.audit"):
        for user in ("a", "b", "c"):
            trail.emit(Event(Kind.LOGIN_FAILED, 1.0, user, reason="bad_credentials"))
        await trail.flush()
    assert [r.user for r in await store.audit()] == ["a", "b"]
    assert trail.dropped == 1
    assert sum(1 for r in caplog.records if getattr(r, "audit", None)) == 3  # the log has all three
    assert any("dropped 1 audit" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_retention_is_judged_on_the_injected_clock_by_the_one_purger(store: Store) -> None:
    clock = ManualClock()
    trail = AuditTrail(store, retention=90 * DAY, clock=clock)
    trail.emit(Event(Kind.LOGIN_OK, clock(), "old"))
    clock.advance(10 * DAY)
    trail.emit(Event(Kind.LOGIN_OK, clock(), "young"))
    await trail.flush()

    class NoSessions:
        async def purge(self) -> int:
            return 0

    purger = Purger(NoSessions(), 3600, clock, also=[trail])
    clock.advance(85 * DAY)  # "old" is 95 days old, "young" 85
    await purger.purge_once()
    assert [r.user for r in await store.audit()] == ["young"]
    clock.advance(5 * DAY + 1)
    await purger.purge_once()
    assert await store.audit() == []


async def test_a_flood_of_refused_logins_keeps_one_row_per_address_and_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A refused login costs the attacker nothing (no hash); without this, each one would cost 90 days of disk.
    store, clock = MemoryStore(), ManualClock()
    trail = AuditTrail(store, retention=DAY, clock=clock)
    with caplog.at_level(logging.INFO, logger="frontdesk.audit"):
        for i in range(500):
            for kind, reason in ((Kind.LOGIN_FAILED, "rate_limited"), (Kind.RATE_LIMITED, "login_attempts")):
                trail.emit(Event(kind, clock(), f"user{i}", address="198.51.100.7", reason=reason))
            trail.emit(Event(Kind.RATE_LIMITED, clock(), "bob", address="198.51.100.8", reason="login_attempts"))
            clock.advance(0.1)  # 50 s in all
        clock.advance(11)
        trail.emit(Event(Kind.RATE_LIMITED, clock(), "eve", address="198.51.100.7", reason="login_attempts"))
        trail.emit(Event(Kind.LOGIN_FAILED, clock(), "eve", address="198.51.100.7", reason="bad_credentials"))
        await trail.flush()
    rows = [(r.kind, r.user, r.address) for r in await store.audit()]
    assert rows == [
        (Kind.LOGIN_FAILED, "user0", "198.51.100.7"),
        (Kind.RATE_LIMITED, "user0", "198.51.100.7"),
        (Kind.RATE_LIMITED, "bob", "198.51.100.8"),
        (Kind.RATE_LIMITED, "eve", "198.51.100.7"),  # a minute later: recorded again
        (Kind.LOGIN_FAILED, "eve", "198.51.100.7"),  # a wrong password is always recorded
    ]
    assert sum(1 for r in caplog.records if getattr(r, "audit", None)) == 1502  # the log has every one
