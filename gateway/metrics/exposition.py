"""The metrics listener: one small HTTP server on ``[metrics] address``, apart from the gateway's own port.

``frontdesk serve`` starts it in its own (parent) process, so there is exactly one listener however many
workers run:

- one worker: the worker is the parent process, and the listener serves the gateway's registry directly;
- N workers: before any worker starts, the parent creates a private directory (mode 0700, empty: a fresh one
  per start, so nothing of an earlier run is ever counted) and names it in ``PROMETHEUS_MULTIPROC_DIR``. Every
  worker inherits it, so prometheus-client writes each worker's values to memory-mapped files there, and the
  listener merges them into one view. The directory is removed when the server stops.

A worker that died (and was replaced) leaves its files behind: its counters still count (they happened), and
its gauges of things open *now* are dropped at the next scrape.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, multiprocess, start_http_server
from prometheus_client.metrics_core import Metric

from ..errors import ConfigError
from .settings import MetricsSettings

__all__ = ["MULTIPROC_ENV", "multiprocess_metrics", "serve_metrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _LiveWorkers:
    """prometheus-client's multiprocess collector, minus the "live" gauges of workers that are gone."""

    def __init__(self, path: str) -> None:
        self._dir = path
        self._merge = multiprocess.MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for file in glob.glob(os.path.join(self._dir, "gauge_live*_*.db")):
            pid = os.path.basename(file)[: -len(".db")].rsplit("_", 1)[1]
            if pid.isdigit() and not _alive(int(pid)):
                multiprocess.mark_process_dead(int(pid), self._dir)  # type: ignore[no-untyped-call]
        metrics: Iterable[Metric] = self._merge.collect()  # type: ignore[no-untyped-call]
        return metrics


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listen(settings: MetricsSettings, registry: CollectorRegistry) -> WSGIServer:
    assert settings.port is not None
    try:
        server, _thread = start_http_server(settings.port, addr=settings.host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            [
                f"metrics.address {settings.address}: cannot listen there ({exc.strerror or exc}); choose a free "
                'port on an address of this machine, or set address = "" in [metrics] to turn metrics off'
            ]
        ) from None
    return server


@contextlib.contextmanager
def serve_metrics(settings: MetricsSettings, registry: CollectorRegistry | None) -> Iterator[None]:
    """Serve ``registry`` (the single worker's own) on the metrics address while the block runs."""
    if not settings.enabled or registry is None:
        yield
        return
    server = _listen(settings, registry)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def multiprocess_metrics(settings: MetricsSettings) -> Iterator[None]:
    """For ``--workers N``: the shared directory in the environment the workers inherit, and the one listener
    merging their files, while the block (which starts the workers) runs."""
    if not settings.enabled:
        yield
        return
    directory = tempfile.mkdtemp(prefix="frontdesk-metrics-")  # 0700, and empty: nothing stale is ever merged
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = directory
    try:
        registry = CollectorRegistry()
        registry.register(_LiveWorkers(directory))
        with serve_metrics(settings, registry):
            yield
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)
