"""Prometheus metrics for the gateway: definitions, the hooks that feed them, and the separate listener.

See the README's "Metrics" section for the list. ``create_app`` builds an :class:`Instrumentation` when
``[metrics] address`` is set; ``frontdesk serve`` serves it (``exposition.py``).
"""

from __future__ import annotations

from .definitions import GatewayMetrics
from .exposition import MULTIPROC_ENV, multiprocess_metrics, serve_metrics
from .instrumentation import Instrumentation
from .settings import DEFAULT_ADDRESS, MetricsSettings, parse_metrics_settings

__all__ = [
    "DEFAULT_ADDRESS",
    "GatewayMetrics",
    "Instrumentation",
    "MULTIPROC_ENV",
    "MetricsSettings",
    "multiprocess_metrics",
    "parse_metrics_settings",
    "serve_metrics",
]
