"""Logout ends streams: a proxied SSE stream that never ends is cut within about a second of its session
ending, whether the session ends by logout (in this worker) or by a password change (another process, seen
through the store), against a real ``frontdesk serve`` and the real demo upstream (uvicorn both)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from live_gateway import AuthClient, GatewayProcess

from tests.support import ServerProcess, free_port

TICK = 0.05  # seconds between the demo clock's events
# The cut must come within 1 s of the session ending; at one event per TICK that is 20 events, plus slack
# for a loaded machine (the bound is what a stream that is never cut would exceed many times over).
MAX_EVENTS_AFTER_END = 40
PASSWORD = "alice-password-1"


@pytest.fixture(scope="module")
def demo_upstream(gateway_secrets: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update(gateway_secrets)
    command = [sys.executable, "-m", "frontdesk.gateway.demo_upstream", "--port", str(port)]
    command += ["--clock-interval", str(TICK)]
    log = tmp_path_factory.mktemp("demo-upstream") / "upstream.log"
    with ServerProcess(command, log, env=env, name="demo upstream") as upstream:
        upstream.wait_answers(f"http://127.0.0.1:{port}/api/me", status=401)
        yield port


def _routes(upstream_port: int) -> list[dict[str, Any]]:
    base = f"http://127.0.0.1:{upstream_port}"
    return [
        {"prefix": "/api/", "upstream": base},
        {"prefix": "/api/clock", "upstream": base, "methods": ["GET"], "csrf": False},
    ]


@pytest.fixture(scope="module")
def gw(gateway_factory: Callable[..., GatewayProcess], demo_upstream: int) -> GatewayProcess:
    return gateway_factory("streams", users={"alice": PASSWORD}, routes=_routes(demo_upstream))


@pytest.fixture(scope="module")
def gw2(gateway_factory: Callable[..., GatewayProcess], demo_upstream: int) -> GatewayProcess:
    return gateway_factory("streams2", workers=2, users={"alice": PASSWORD}, routes=_routes(demo_upstream))


@contextlib.contextmanager
def _clock(client: AuthClient) -> Iterator[httpx.Response]:
    """The demo's SSE clock through the gateway, on the client's own connection."""
    with client.http.stream("GET", "/api/clock", headers=client.headers(csrf=False), timeout=10.0) as r:
        assert r.status_code == 200
        yield r


def _events_after(client: AuthClient, end_session: Callable[[], None]) -> int:
    """Open the clock as ``client``, end the session (in a thread) once events flow, and count the events that
    still arrive after the ending call returned. Fails if the stream is never cut."""
    ended = threading.Event()
    ender = threading.Thread(target=lambda: (end_session(), ended.set()))
    after = 0
    with _clock(client) as response:
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                if not ender.is_alive() and not ended.is_set():
                    ender.start()  # the stream flows: now end its session
                elif ended.is_set():
                    after += 1
                    assert after <= MAX_EVENTS_AFTER_END, "the stream was not cut when its session ended"
        except httpx.RemoteProtocolError:
            pass  # a download would be cut mid-body; an event stream is ended cleanly
    ender.join()
    assert ended.is_set(), "ending the session failed (see the thread's traceback above)"
    return after


def test_sse_stream_is_cut_at_logout(gw: GatewayProcess) -> None:
    with gw.client() as client, gw.client() as tab:
        assert client.login("alice", PASSWORD).status_code == 200
        tab.cookie = client.cookie  # another tab of the same browser logs out

        def logout() -> None:
            assert tab.logout().status_code in (200, 204)

        _events_after(client, logout)


def test_sse_stream_is_cut_when_the_password_changes(gw: GatewayProcess) -> None:
    def passwd() -> None:
        # Another process (the CLI) writes the revocation to the store; this worker learns it from there.
        done = subprocess.run(
            [sys.executable, "-m", "frontdesk.gateway.cli", "users", "passwd", "alice", "--password-stdin",
             "--config", str(gw.config_path)],
            cwd=gw.workdir, env=gw.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    with gw.client() as client:
        assert client.login("alice", PASSWORD).status_code == 200
        _events_after(client, passwd)


def test_sse_stream_is_cut_when_another_worker_logs_out(gw2: GatewayProcess) -> None:
    clients = gw2.clients_per_worker(1)  # one pinned keep-alive connection per worker
    (pid_a, (a,)), (pid_b, (b,)) = sorted(clients.items())
    try:
        assert a.login("alice", PASSWORD).status_code == 200
        b.cookie = a.cookie

        def logout_on_b() -> None:
            out = b.logout()
            assert out.status_code in (200, 204)
            assert gw2.worker_of(out) == pid_b

        # a's one connection carries the stream, so it is served by worker A; the logout is answered by B
        _events_after(a, logout_on_b)
        assert gw2.worker_of(a.request("GET", "/healthz", csrf=False)) == pid_a
    finally:
        a.close()
        b.close()


def test_a_stream_of_a_live_session_keeps_flowing(gw: GatewayProcess) -> None:
    with gw.client() as client:
        assert client.login("alice", PASSWORD).status_code == 200
        with _clock(client) as response:
            events = 0
            for line in response.iter_lines():
                events += line.startswith("data:")
                if events == 2 * MAX_EVENTS_AFTER_END:  # well past where a wrongly watched stream would be cut
                    break
        assert events == 2 * MAX_EVENTS_AFTER_END


@pytest.mark.parametrize("how", ["delete", "everywhere"])
def test_sse_stream_is_cut_when_another_device_signs_it_out_on_another_worker(gw2: GatewayProcess, how: str) -> None:
    """Your devices: the laptop streams on worker A; the phone (another session of the same user, served by
    worker B) ends the laptop's session from the devices list, or signs out everywhere."""
    clients = gw2.clients_per_worker(1)
    (pid_a, (laptop,)), (pid_b, (phone,)) = sorted(clients.items())
    try:
        assert laptop.login("alice", PASSWORD).status_code == 200
        assert phone.login("alice", PASSWORD).status_code == 200
        laptop_sid = laptop.claims()["sid"]
        listed = phone.request("GET", "/auth/sessions")
        assert listed.status_code == 200 and laptop_sid in {s["id"] for s in listed.json()["sessions"]}

        def sign_out() -> None:
            if how == "delete":
                out = phone.request("DELETE", f"/auth/sessions/{laptop_sid}")
            else:
                out = phone.request("POST", "/auth/logout", json={"everywhere": True})
            assert out.status_code == 204, out.text
            assert gw2.worker_of(out) == pid_b

        _events_after(laptop, sign_out)
        assert gw2.worker_of(laptop.request("GET", "/healthz", csrf=False)) == pid_a  # the stream was on A
        assert laptop.session(follow=False).status_code == 401
        assert (phone.session(follow=False).status_code == 200) is (how == "delete")
    finally:
        laptop.close()
        phone.close()
