"""What one access line costs the gateway, measured alone: uvicorn's access record formatted by frontdesk's
logging config (request-id and query-string filters, JSON or text), written to a file, CPU time per line.

With the access log off (the default) a proxied request writes no line at all, whatever ``[log] format`` is:
this is the cost of turning ``[log] access_log`` on. Run by hand: ``python tests/bench/log_bench.py``.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from frontdesk.gateway.logs import log_config


def one_round(logger: logging.Logger, lines: int) -> float:
    started = time.process_time()
    for _ in range(lines):
        # uvicorn's access call: client address, method, full path, HTTP version, status
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:51234", "GET", "/api/me?page=2", "1.1", 200)
    return (time.process_time() - started) / lines * 1e6


def measure(json_lines: bool, lines: int, rounds: int, sink: Path) -> float:
    config = log_config("info", json_lines=json_lines)
    for handler in config["handlers"].values():  # to a file, as a collector's pipe would take it
        handler.pop("stream", None)
        handler["class"] = "logging.FileHandler"
        handler["filename"] = str(sink)
    logging.config.dictConfig(config)
    logger = logging.getLogger("uvicorn.access")
    one_round(logger, 1000)  # warm-up
    return statistics.median(one_round(logger, lines) for _ in range(rounds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sink = Path(tmp) / "log"
        text = measure(False, args.lines, args.rounds, sink)
        json_ = measure(True, args.lines, args.rounds, sink)
        print(f"# one access line, CPU time, median of {args.rounds} x {args.lines}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f}, Python {sys.version.split()[0]}")  # fmt: skip
        print(f"text: {text:6.2f} us per line")
        print(f"json: {json_:6.2f} us per line")


if __name__ == "__main__":
    main()
