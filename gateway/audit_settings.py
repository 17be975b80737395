"""The ``[audit]`` table: how long the audit trail keeps its rows (the purge removes older ones)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .validators import Problems, parse_duration

__all__ = ["AuditSettings", "parse_audit_settings"]


@dataclass(frozen=True, slots=True)
class AuditSettings:
    retention: float = 90 * 86400.0


def parse_audit_settings(table: Mapping[str, Any], problems: Problems) -> AuditSettings:
    return AuditSettings(
        retention=problems.get(table, "audit", "retention", AuditSettings().retention, parse_duration)
    )
