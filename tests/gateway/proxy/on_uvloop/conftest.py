"""Everything in this folder runs on uvloop, the loop ``frontdesk serve`` uses (its transports differ)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop

# The scenarios are imported from the test modules one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"uvloop": uvloop.new_event_loop}
