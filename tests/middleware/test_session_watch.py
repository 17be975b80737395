"""SessionWatch: one liveness poll per watched session and tick, streams ended once their session is gone,
nothing polled for what closed before its delay, and a store blip is not a logout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from frontdesk.middleware.errors import StoreError
from frontdesk.middleware.session_watch import SessionWatch
from tests.support import wait_until_async

TICK = 0.01


class Engine:
    def __init__(self) -> None:
        self.ended: set[str] = set()
        self.failing = False
        self.calls: list[str] = []

    async def is_active(self, sid: str) -> bool:
        self.calls.append(sid)
        if self.failing:
            raise StoreError("the store is unreachable")
        return sid not in self.ended


async def _until(condition: Callable[[], object]) -> None:
    await wait_until_async(condition, interval=TICK)


async def test_every_stream_of_an_ended_session_is_ended_once() -> None:
    engine = Engine()
    watch = SessionWatch(engine, interval=TICK)
    ended: list[str] = []
    a1 = watch.watch("a", lambda: ended.append("a1"), socket=True)
    watch.watch("a", lambda: ended.append("a2"))
    watch.watch("b", lambda: ended.append("b"))
    assert watch.open_sockets("a") == 1 and watch.open_sockets("b") == 0
    await _until(lambda: len(engine.calls) >= 4)
    assert ended == []
    engine.ended.add("a")
    await _until(lambda: len(ended) == 2)
    assert sorted(ended) == ["a1", "a2"]
    assert watch.open_sockets("a") == 0
    a1.close()  # closing after the end is harmless
    await asyncio.sleep(TICK * 5)
    assert sorted(ended) == ["a1", "a2"]  # once each, and b lives on
    await watch.aclose()


async def test_one_check_per_session_and_tick_however_many_streams() -> None:
    engine = Engine()
    watch = SessionWatch(engine, interval=0.05)
    held = [watch.watch("a", lambda: None) for _ in range(50)]
    await _until(lambda: len(engine.calls) >= 2)
    assert set(engine.calls) == {"a"} and len(engine.calls) < 10
    for w in held:
        w.close()
    await watch.aclose()


async def test_a_stream_closed_before_its_delay_is_never_polled() -> None:
    engine = Engine()
    watch = SessionWatch(engine, interval=TICK)
    watch.watch("a", lambda: None, delay=0.2).close()
    await asyncio.sleep(0.3)
    assert engine.calls == []


async def test_the_poll_stops_when_nothing_is_watched() -> None:
    engine = Engine()
    watch = SessionWatch(engine, interval=TICK)
    w = watch.watch("a", lambda: None)
    await _until(lambda: engine.calls)
    w.close()
    await asyncio.sleep(TICK * 5)
    calls = len(engine.calls)
    await asyncio.sleep(TICK * 5)
    assert len(engine.calls) == calls
    watch.watch("a", lambda: None)  # and starts again with the next watch
    await _until(lambda: len(engine.calls) > calls)
    await watch.aclose()


async def test_a_store_error_is_not_a_logout() -> None:
    engine = Engine()
    engine.failing = True
    watch = SessionWatch(engine, interval=TICK)
    ended: list[str] = []
    watch.watch("a", lambda: ended.append("a"))
    await _until(lambda: len(engine.calls) >= 3)
    assert ended == []
    engine.failing = False
    engine.ended.add("a")
    await _until(lambda: ended == ["a"])
    await watch.aclose()


async def test_shut_down_stops_what_asked_to_be_stopped_now_and_later_once_each() -> None:
    engine = Engine()
    watch = SessionWatch(engine, interval=TICK)
    stopped: list[str] = []
    watch.watch("a", lambda: None, on_shutdown=lambda: stopped.append("a"), socket=True)
    watch.watch(None, lambda: None, on_shutdown=lambda: stopped.append("sessionless"))  # never polled
    watch.watch("b", lambda: None)  # no on_shutdown: a request left to finish
    late = watch.watch("c", lambda: None, delay=TICK * 3, on_shutdown=lambda: stopped.append("late"))
    closed = watch.watch(None, lambda: None, on_shutdown=lambda: stopped.append("closed"))
    closed.close()
    watch.shut_down()
    assert sorted(stopped) == ["a", "sessionless"]
    await _until(lambda: "late" in stopped)  # registered after the stop began: stopped as it registers
    watch.watch(None, lambda: None, on_shutdown=lambda: stopped.append("new"))
    watch.shut_down()  # again: nothing is stopped twice
    assert sorted(stopped) == ["a", "late", "new", "sessionless"]
    assert None not in engine.calls
    late.close()
    await watch.aclose()
