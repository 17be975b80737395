"""Measure the OIDC callback's latency: a real ``frontdesk serve`` and the real test provider on this machine,
N logins driven with httpx; only the callback request is timed (state check, code exchange at the provider,
ID-token validation, session start). Prints p50/p90/max; the first login (discovery + JWKS fetch) is reported
apart. Not a test: a number for the README or a report.

    .venv/bin/python -m tests.oidc.measure_callback_latency --logins 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))  # live_gateway, oidc_flow

from live_gateway import GatewayProcess, make_secrets, write_config
from oidc_flow import finish_login, gateway_tables, secrets_env, start_login

from tests.support.oidc_provider import provider_login, running_provider


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with running_provider(workdir) as provider:
            env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
            env.update(make_secrets(), **secrets_env(provider), PYTHONUNBUFFERED="1")
            config = write_config(workdir / "config.toml", **gateway_tables(provider))
            gw = GatewayProcess(workdir=workdir, config_path=config, env=env).start()
            try:
                timings = []
                with gw.client() as client:
                    for _ in range(args.logins + 1):
                        started = start_login(client)
                        back = provider_login(started.authorize_url, "alice")
                        began = time.perf_counter()
                        answer = finish_login(client, back, started.state_cookie.value)
                        timings.append((time.perf_counter() - began) * 1000)
                        assert answer.status_code == 302, answer.text
            finally:
                gw.stop()
    first, rest = timings[0], sorted(timings[1:])
    p90 = rest[max(0, int(len(rest) * 0.9) - 1)]
    print(f"callback latency over {len(rest)} logins (ms): p50 {statistics.median(rest):.1f}  p90 {p90:.1f}  "
          f"max {rest[-1]:.1f}; first login (discovery + JWKS) {first:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
